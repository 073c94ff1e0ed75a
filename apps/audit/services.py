"""The audit log: every governance decision, append-only and hash-chained like provenance."""

from __future__ import annotations

import json
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.audit.models import AUDIT_CHAIN_ID, AuditEntry, AuditHead
from apps.core.hashchain import GENESIS_HASH, ChainVerification, canonical_json, entry_hash, verify_chain


def _head() -> AuditHead:
    head = AuditHead.objects.select_for_update().filter(pk=1).first()
    if head is None:
        AuditHead.objects.get_or_create(pk=1)
        head = AuditHead.objects.select_for_update().get(pk=1)
    return head


def audit_append(*, actor: str, action: str, data: dict[str, Any]) -> AuditEntry:
    """Append one decision. Serialised by a lock on the chain's head row."""
    with transaction.atomic():
        head = _head()
        seq = head.entry_count + 1
        created_at = timezone.now()
        data = json.loads(canonical_json(data))  # what the database gives back is what is hashed
        digest = entry_hash(
            prev_hash=head.head_hash,
            chain_id=AUDIT_CHAIN_ID,
            seq=seq,
            actor=actor,
            action=action,
            data=data,
            created_at=created_at,
        )
        entry = AuditEntry.objects.create(
            seq=seq,
            actor=actor,
            action=action,
            data=data,
            created_at=created_at,
            prev_hash=head.head_hash,
            hash=digest,
        )
        AuditHead.objects.filter(pk=1).update(head_hash=digest, entry_count=seq)
    return entry


def audit_verify() -> ChainVerification:
    """Recompute the chain; name the first entry (by seq) that does not hold."""
    head = AuditHead.objects.filter(pk=1).first()
    return verify_chain(
        AuditEntry.objects.order_by("seq", "id").iterator(),
        chain_id=AUDIT_CHAIN_ID,
        head_hash=head.head_hash if head else GENESIS_HASH,
        entry_count=head.entry_count if head else 0,
    )
