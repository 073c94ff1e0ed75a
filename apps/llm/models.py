"""Token usage per session and the per-provider concurrency slots of remote LLM calls."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class LlmUsage(models.Model):
    """Tokens a session's `llm` runs spent with one provider's model (each run's own figures
    are in its result's `usage`), added to after every model call, so the calls of runs that
    later failed count too; `runs` counts the runs that made at least one call."""

    session = models.ForeignKey(
        "compute_sessions.Session", on_delete=models.CASCADE, related_name="llm_usage"
    )
    provider = models.CharField(max_length=100)
    model = models.CharField(max_length=200)
    input_tokens = models.PositiveBigIntegerField(default=0)
    output_tokens = models.PositiveBigIntegerField(default=0)
    runs = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["provider", "model"]
        constraints = [
            models.UniqueConstraint(
                fields=["session", "provider", "model"], name="llm_usage_unique_per_session_model"
            )
        ]

    def __str__(self) -> str:
        return f"{self.provider}/{self.model} in {self.session_id}"


class ProviderSlot(models.Model):
    """One of a provider's `concurrency` slots: a model call holds one while it is in flight.
    A slot whose holder died frees itself when `expires_at` passes (the holder renews it)."""

    provider = models.CharField(max_length=100)
    slot = models.PositiveIntegerField()
    run_id = models.UUIDField(null=True, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["provider", "slot"]
        constraints = [
            models.UniqueConstraint(fields=["provider", "slot"], name="provider_slot_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.provider}[{self.slot}]"
