"""Writes on conversations: append a turn, record an exchange, trim to a token bound, clear.

The turn store the `generate` run kind and the remote LLM runner share: callers read a
prompt's history with `conversation_history` (selectors) and record what was said with
`conversation_record_exchange`, which trims the oldest turns past the bound.
"""

from __future__ import annotations

from uuid import UUID

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Sum

from apps.conversations.models import Conversation, Turn, TurnRole
from apps.core.exceptions import NotFound, ValidationFailed
from apps.sessions.models import Session
from apps.sessions.selectors import session_get_for_user


def _conversation(session: Session, key: str) -> Conversation:
    conversation, _ = Conversation.objects.get_or_create(session=session, key=key)
    return conversation


def conversation_append(
    *,
    session: Session,
    key: str,
    role: str,
    content: str,
    tokens: int,
    run_id: UUID | str | None = None,
) -> Turn:
    if role not in TurnRole.values:
        raise ValidationFailed(fields={"role": [f"Must be one of {', '.join(TurnRole.values)}."]})
    if tokens < 0:
        raise ValidationFailed(fields={"tokens": ["Must be >= 0."]})
    conversation = _conversation(session, key)
    turn = Turn.objects.create(
        conversation=conversation, role=role, content=content, tokens=tokens, run_id=run_id
    )
    conversation.save(update_fields=["updated_at"])
    return turn


def conversation_trim(*, session: Session, key: str, max_tokens: int) -> int:
    """Drop the oldest turns until the conversation holds at most `max_tokens`; returns how many."""
    turns = Turn.objects.filter(conversation__session=session, conversation__key=key)
    total = turns.aggregate(total=Sum("tokens"))["total"] or 0
    doomed: list[int] = []
    for turn_id, tokens in turns.order_by("id").values_list("id", "tokens"):
        if total <= max_tokens:
            break
        total -= tokens
        doomed.append(turn_id)
    if doomed:
        Turn.objects.filter(pk__in=doomed).delete()
    return len(doomed)


def conversation_record_exchange(
    *,
    session: Session,
    key: str,
    prompt: str,
    prompt_tokens: int,
    reply: str,
    reply_tokens: int,
    max_tokens: int,
    run_id: UUID | str | None = None,
) -> None:
    """A user message and the reply to it, then trim: one transaction."""
    with transaction.atomic():
        # one conversation row at a time per (session, key): concurrent exchanges append in turn
        Session.objects.select_for_update().filter(pk=session.pk).first()
        conversation_append(
            session=session, key=key, role=TurnRole.USER, content=prompt, tokens=prompt_tokens, run_id=run_id
        )
        conversation_append(
            session=session,
            key=key,
            role=TurnRole.ASSISTANT,
            content=reply,
            tokens=reply_tokens,
            run_id=run_id,
        )
        conversation_trim(session=session, key=key, max_tokens=max_tokens)


def conversation_clear(*, user: AbstractBaseUser, session_id: UUID | str, key: str | None = None) -> int:
    """Forget a session's conversations (or the one for `key`); returns the turns removed."""
    session = session_get_for_user(user=user, session_id=session_id)
    if session is None:
        raise NotFound("Session not found.")
    turns = Turn.objects.filter(conversation__session=session)
    conversations = Conversation.objects.filter(session=session)
    if key is not None:
        turns, conversations = turns.filter(conversation__key=key), conversations.filter(key=key)
    removed = turns.count()
    conversations.delete()
    return removed
