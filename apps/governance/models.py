from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from apps.policies.presets import FLAG_TYPES


class FlagState(models.TextChoices):
    OPEN = "open"
    RELEASED = "released"
    REJECTED = "rejected"


class FlagSource(models.TextChoices):
    INPUT = "input"
    OUTPUT = "output"
    METRIC = "metric"
    MANUAL = "manual"


class Flag(models.Model):
    """A finding on a trace, by a detector or a person, under the policy version in force."""

    trace = models.ForeignKey("traces.Trace", on_delete=models.CASCADE, related_name="flags")
    type = models.CharField(max_length=16, choices=[(name, name) for name in FLAG_TYPES])
    severity = models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(10)])
    risk = models.FloatField(default=0.0, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)])
    reason = models.TextField()
    detector = models.CharField(max_length=100, blank=True, default="")
    source = models.CharField(max_length=16, choices=FlagSource.choices)
    # Where it matched: {"field": "payload.prompt", "start": 10, "end": 42} (offsets into that text).
    span = models.JSONField(null=True, blank=True)
    auto_detected = models.BooleanField(default=True)
    raised_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    policy_version = models.ForeignKey("policies.PolicyVersion", on_delete=models.PROTECT, related_name="+")
    state = models.CharField(max_length=16, choices=FlagState.choices, default=FlagState.OPEN)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-severity", "created_at"]
        indexes = [models.Index(fields=["trace", "state"], name="flag_trace_state_idx")]

    def __str__(self) -> str:
        return f"{self.type} {self.severity} on {self.trace_id}"


class ReviewState(models.TextChoices):
    QUARANTINED = "quarantined"  # held out of the session's history until a reviewer decides
    PENDING = "pending"  # flagged under a policy that requires a person to look before merge
    RELEASED = "released"
    REJECTED = "rejected"


OPEN_REVIEW_STATES = (ReviewState.QUARANTINED, ReviewState.PENDING)


class TraceReview(models.Model):
    """A trace's place in the review queue and the decision taken on it."""

    trace = models.OneToOneField("traces.Trace", on_delete=models.CASCADE, related_name="review")
    state = models.CharField(max_length=16, choices=ReviewState.choices)
    reason = models.TextField(blank=True, default="")
    severity = models.PositiveSmallIntegerField(default=0, help_text="The highest open flag's severity.")
    policy_version = models.ForeignKey("policies.PolicyVersion", on_delete=models.PROTECT, related_name="+")
    opened_at = models.DateTimeField(auto_now_add=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    note = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-severity", "opened_at"]
        indexes = [models.Index(fields=["state", "-severity", "opened_at"], name="review_queue_idx")]

    def __str__(self) -> str:
        return f"{self.trace_id} ({self.state})"

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_REVIEW_STATES
