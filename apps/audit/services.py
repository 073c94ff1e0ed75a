"""The audit log: every governance decision, append-only and hash-chained like provenance."""

from __future__ import annotations

import json
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.audit.models import AUDIT_CHAIN_ID, AuditEntry, AuditHead
from apps.core.hashchain import GENESIS_HASH, ChainVerification, canonical_json, entry_hash


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
    prev_hash, count = GENESIS_HASH, 0
    for expected_seq, entry in enumerate(AuditEntry.objects.order_by("seq", "id").iterator(), start=1):
        count = expected_seq
        if entry.seq != expected_seq:
            reason = f"entry {expected_seq} is missing or renumbered"
            return ChainVerification(False, expected_seq, reason, count)
        if entry.prev_hash != prev_hash:
            return ChainVerification(False, entry.seq, "prev_hash does not match the previous entry", count)
        recomputed = entry_hash(
            prev_hash=entry.prev_hash,
            chain_id=AUDIT_CHAIN_ID,
            seq=entry.seq,
            actor=entry.actor,
            action=entry.action,
            data=entry.data,
            created_at=entry.created_at,
        )
        if recomputed != entry.hash:
            return ChainVerification(False, entry.seq, "hash does not match the entry's content", count)
        prev_hash = entry.hash
    expected_count = head.entry_count if head else 0
    expected_head = head.head_hash if head else GENESIS_HASH
    if count != expected_count or prev_hash != expected_head:
        return ChainVerification(False, count + 1, "entries after this point were removed", count)
    return ChainVerification(True, None, None, count)
