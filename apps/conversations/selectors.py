from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from django.contrib.auth.models import AbstractBaseUser

from apps.conversations.models import Conversation, Turn
from apps.core.exceptions import NotFound
from apps.sessions.selectors import session_get_for_user


@dataclass(frozen=True)
class HistoryTurn:
    role: str
    content: str
    tokens: int


def conversation_history(*, session_id: UUID | str, key: str, max_tokens: int) -> list[HistoryTurn]:
    """The newest turns of a session's conversation whose tokens add up to at most
    `max_tokens`, oldest first: what a prompt continues from. Only this session's turns:
    the session id is the whole scope (the caller is the run's own worker)."""
    turns = Turn.objects.filter(conversation__session_id=session_id, conversation__key=key).order_by("-id")
    kept: list[HistoryTurn] = []
    total = 0
    for role, content, tokens in turns.values_list("role", "content", "tokens").iterator(chunk_size=100):
        if total + tokens > max_tokens:
            break
        total += tokens
        kept.append(HistoryTurn(role, content, tokens))
    kept.reverse()
    return kept


def conversation_list_for_user(*, user: AbstractBaseUser, session_id: UUID | str) -> list[Conversation]:
    """A session's conversations with their turns; NotFound if the user may not see the session."""
    session = session_get_for_user(user=user, session_id=session_id)
    if session is None:
        raise NotFound("Session not found.")
    return list(Conversation.objects.filter(session=session).prefetch_related("turns"))
