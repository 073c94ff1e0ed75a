from __future__ import annotations

import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from apps.policies.presets import NEVER


class Policy(models.Model):
    """A named governance policy; what it says is its active version."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    active_version = models.ForeignKey(
        "PolicyVersion", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "policies"

    def __str__(self) -> str:
        return self.name


class VersionState(models.TextChoices):
    DRAFT = "draft"
    APPROVED = "approved"


def _severity(**kwargs: object) -> models.PositiveSmallIntegerField:
    return models.PositiveSmallIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(NEVER)], **kwargs
    )


class PolicyVersion(models.Model):
    """One version of a policy's settings. A draft is edited; approved, it never changes.

    Every flag and decision records the version that produced it.
    """

    policy = models.ForeignKey(Policy, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    state = models.CharField(max_length=16, choices=VersionState.choices, default=VersionState.DRAFT)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    auto_quarantine = models.BooleanField()
    quarantine_severity = _severity(
        help_text="Findings at or over this quarantine the trace (with auto_quarantine)."
    )
    block_severity = _severity(help_text="Input findings at or over this block the run (11: never).")
    merge_max_severity = _severity(help_text="Open flags over this block a merge.")
    blocked_flags = models.JSONField(
        default=list, blank=True, help_text="Flag types that block whatever their severity."
    )
    require_human_review = models.BooleanField(
        help_text="Every flagged trace waits for a reviewer before merge."
    )
    max_anomaly_severity = _severity(help_text="Metric anomalies over this quarantine the trace.")
    scan_outputs = models.BooleanField()
    scan_inputs_model = models.BooleanField(
        default=False,
        help_text="Inputs also get the full scan (rules and the embedding model) on the inference "
        "queue: the run is held until it is done, then queued, blocked or held for a reviewer.",
    )

    class Meta:
        ordering = ["policy", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["policy", "number"], name="policy_version_unique_number")
        ]

    def __str__(self) -> str:
        return f"{self.policy.name} v{self.number} ({self.state})"

    @property
    def label(self) -> str:
        return f"{self.policy.name}@v{self.number}"
