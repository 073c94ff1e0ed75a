"""A session's conversation with a model: the context a `generate` run (or a remote LLM
call) continues from. Stored with the session, so no worker keeps it between runs."""

from __future__ import annotations

import uuid

from django.db import models


class Conversation(models.Model):
    """One per (session, key): the key names the model or provider the turns were made with,
    since token counts and prompt formats belong to it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    session = models.ForeignKey(
        "compute_sessions.Session", on_delete=models.CASCADE, related_name="conversations"
    )
    key = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["key"]
        constraints = [
            models.UniqueConstraint(fields=["session", "key"], name="conversation_unique_key_per_session")
        ]

    def __str__(self) -> str:
        return f"{self.key} in {self.session_id}"


class TurnRole(models.TextChoices):
    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"


class Turn(models.Model):
    """A message; `tokens` is its length for the conversation's model, what trimming counts."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="turns")
    role = models.CharField(max_length=16, choices=TurnRole.choices)
    content = models.TextField()
    tokens = models.PositiveIntegerField()
    # The run that produced it (no foreign key: runs sit above conversations in the layers).
    run_id = models.UUIDField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["conversation", "id"], name="turn_conversation_order_idx")]

    def __str__(self) -> str:
        return f"{self.role}: {self.content[:40]}"
