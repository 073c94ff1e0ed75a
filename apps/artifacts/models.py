from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.db import models

NAME_MAX_LENGTH = 255
CONTENT_TYPE_MAX_LENGTH = 255


class Artifact(models.Model):
    """Bytes too large for a JSON column, kept in the "artifacts" storage under `storage_key`.

    The row is the index: who owns the bytes, where they came from (session, run) and what
    they are (size, SHA-256); the storage holds the bytes themselves.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="artifacts")
    session = models.ForeignKey(
        "compute_sessions.Session", on_delete=models.CASCADE, related_name="artifacts"
    )
    # An artifact outlives its run's row: a deleted run must not take the session's data with it.
    run = models.ForeignKey(
        "runs.Run", on_delete=models.SET_NULL, null=True, blank=True, related_name="artifacts"
    )
    name = models.CharField(max_length=NAME_MAX_LENGTH)
    content_type = models.CharField(max_length=CONTENT_TYPE_MAX_LENGTH, default="application/octet-stream")
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    storage_key = models.CharField(max_length=512, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["owner", "-created_at"], name="artifact_owner_created_idx"),
            models.Index(fields=["session", "-created_at"], name="artifact_session_created_idx"),
            models.Index(fields=["run"], name="artifact_run_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.size} bytes)"

    def as_reference(self) -> dict[str, Any]:
        """What a run's result or payload keeps of an artifact: enough to fetch and check it."""
        return {
            "artifact": str(self.id),
            "name": self.name,
            "content_type": self.content_type,
            "size": self.size,
            "sha256": self.sha256,
        }
