from __future__ import annotations

from django.db import models

from apps.core.append_only import AppendOnlyModel
from apps.core.hashchain import GENESIS_HASH

AUDIT_CHAIN_ID = "audit"


class AuditHead(models.Model):
    """The end of the chain (one row): appends lock it, so `seq` never forks, and removing
    the last entries is detected."""

    head_hash = models.CharField(max_length=64, default=GENESIS_HASH)
    entry_count = models.PositiveIntegerField(default=0)


class AuditEntry(AppendOnlyModel):
    """One governance decision, hash-chained to the one before (apps.core.hashchain)."""

    seq = models.PositiveIntegerField(unique=True)
    actor = models.CharField(max_length=150)
    action = models.CharField(max_length=100, db_index=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["seq"]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} by {self.actor}"
