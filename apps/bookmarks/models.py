from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

NAME_MAX_LENGTH = 200
TAG_MAX_LENGTH = 64
MAX_TAGS = 20


class SavedRun(models.Model):
    """A run to submit again by name: a kind and a payload (and optionally a session and a
    priority), with tags; how often it ran and its last run are kept."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_runs")
    name = models.CharField(max_length=NAME_MAX_LENGTH)
    kind = models.CharField(max_length=64)
    payload = models.JSONField(default=dict, blank=True)
    # Where its runs go unless a run names another; a deleted session leaves the saved run.
    session = models.ForeignKey(
        "compute_sessions.Session", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    priority = models.PositiveSmallIntegerField(default=0)
    usage_count = models.PositiveIntegerField(default=0)
    last_run = models.ForeignKey(
        "runs.Run", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    last_run_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "name"], name="saved_run_unique_name_per_owner")
        ]

    def __str__(self) -> str:
        return self.name


class SavedRunTag(models.Model):
    saved_run = models.ForeignKey(SavedRun, on_delete=models.CASCADE, related_name="tags")
    name = models.CharField(max_length=TAG_MAX_LENGTH, db_index=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["saved_run", "name"], name="saved_run_tag_unique")]

    def __str__(self) -> str:
        return self.name
