from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class Session(models.Model):
    """A unit of isolation owned by one user: its runs and traces never leak out."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="compute_sessions"
    )
    name = models.CharField(max_length=200)
    # The governance policy its runs are checked against (its active version at the time).
    policy = models.ForeignKey("policies.Policy", on_delete=models.PROTECT, related_name="sessions")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name
