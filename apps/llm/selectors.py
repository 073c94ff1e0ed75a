from __future__ import annotations

from uuid import UUID

from django.contrib.auth.models import AbstractBaseUser

from apps.core.exceptions import NotFound
from apps.llm.models import LlmUsage
from apps.sessions.selectors import session_get_for_user


def llm_usage_for_user(*, user: AbstractBaseUser, session_id: UUID | str) -> list[LlmUsage]:
    """A session's token usage by provider and model; NotFound if the user may not see it."""
    session = session_get_for_user(user=user, session_id=session_id)
    if session is None:
        raise NotFound("Session not found.")
    return list(LlmUsage.objects.filter(session=session))
