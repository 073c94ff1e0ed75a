from __future__ import annotations

import uuid
from typing import Any, NoReturn

from django.db import models

from apps.core.append_only import AppendOnlyQuerySet
from apps.core.hashchain import GENESIS_HASH


class Trace(models.Model):
    """What a run (or a client) did, with an append-only provenance chain.

    `head_hash` and `entry_count` anchor the chain's end, so removing the last
    entries is detected too; appends lock this row to keep `seq` gapless.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    session = models.ForeignKey("compute_sessions.Session", on_delete=models.CASCADE, related_name="traces")
    run = models.OneToOneField(
        "runs.Run", on_delete=models.SET_NULL, null=True, blank=True, related_name="trace"
    )
    inputs = models.JSONField(default=dict, blank=True)
    outputs = models.JSONField(default=dict, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    merged = models.BooleanField(default=False)
    head_hash = models.CharField(max_length=64, default=GENESIS_HASH)
    entry_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return str(self.id)


class ProvenanceEntry(models.Model):
    """One link of a trace's hash chain: hash = SHA-256(prev_hash ‖ canonical JSON)."""

    # indexed by provenance_unique_seq (trace, seq)
    trace = models.ForeignKey(Trace, on_delete=models.CASCADE, related_name="provenance", db_index=False)
    seq = models.PositiveIntegerField()
    actor = models.CharField(max_length=150)
    action = models.CharField(max_length=100)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["trace", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["trace", "seq"], name="provenance_unique_seq"),
        ]
        verbose_name_plural = "provenance entries"

    def __str__(self) -> str:
        return f"{self.trace_id}#{self.seq} {self.action}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise TypeError("Provenance entries are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError("Provenance entries are append-only.")
