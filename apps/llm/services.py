"""Writes of the remote LLM runs: session token usage, and the provider concurrency slots.

A slot is taken under row locks on all of the provider's slots (one transaction), so two
workers never take the same one and a user's count is exact: at most `user_concurrency` of a
provider's `concurrency` calls in flight are one user's, so no user can take every slot.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from apps.llm.models import LlmUsage, ProviderSlot
from apps.llm.providers import Provider
from apps.sessions.models import Session


def llm_usage_record(
    *,
    session: Session,
    provider: str,
    model: str,
    input_tokens: int,
    output_tokens: int,
    new_run: bool = True,
) -> None:
    """Add one model call's tokens to its session's figures, at once, whatever the run's end
    (spent tokens stay spent when a later call fails); `new_run` when it is the run's first."""
    usage, _ = LlmUsage.objects.get_or_create(session=session, provider=provider, model=model)
    LlmUsage.objects.filter(pk=usage.pk).update(
        input_tokens=F("input_tokens") + max(0, int(input_tokens)),
        output_tokens=F("output_tokens") + max(0, int(output_tokens)),
        runs=F("runs") + int(new_run),
        updated_at=timezone.now(),
    )


def provider_slot_acquire(*, provider: Provider, run_id: UUID | str, user: Any, ttl_seconds: float) -> bool:
    """Take a free slot of the provider for this run (or renew the one it holds); False when
    every slot is taken or the user holds `user_concurrency` of them already."""
    now = timezone.now()
    ProviderSlot.objects.bulk_create(
        [ProviderSlot(provider=provider.name, slot=index) for index in range(provider.concurrency)],
        ignore_conflicts=True,
    )
    with transaction.atomic():
        slots = list(
            ProviderSlot.objects.select_for_update()
            .filter(provider=provider.name, slot__lt=provider.concurrency)
            .order_by("slot")
        )
        live = [
            slot for slot in slots if slot.run_id is not None and slot.expires_at and slot.expires_at > now
        ]
        expires = now + timedelta(seconds=ttl_seconds)
        mine = next((slot for slot in live if str(slot.run_id) == str(run_id)), None)
        if mine is not None:
            ProviderSlot.objects.filter(pk=mine.pk).update(expires_at=expires)
            return True
        if sum(1 for slot in live if slot.user_id == user.pk) >= provider.user_concurrency:
            return False
        free = next((slot for slot in slots if slot not in live), None)
        if free is None:
            return False
        ProviderSlot.objects.filter(pk=free.pk).update(run_id=run_id, user=user, expires_at=expires)
        return True


def provider_slot_release(*, provider: Provider, run_id: UUID | str) -> None:
    ProviderSlot.objects.filter(provider=provider.name, run_id=run_id).update(
        run_id=None, user=None, expires_at=None
    )
