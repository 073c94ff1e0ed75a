from __future__ import annotations

from uuid import UUID

from django.contrib.auth.models import AbstractBaseUser

from apps.core.exceptions import NotFound
from apps.policies.services import policy_resolve
from apps.sessions.models import Session
from apps.sessions.selectors import session_get_for_user


def session_create(*, owner: AbstractBaseUser, name: str, policy: str | None = None) -> Session:
    """A session bound to `policy` (a policy id or a preset's name; GOVERNANCE_POLICY if none)."""
    session = Session(owner=owner, name=name, policy=policy_resolve(policy))
    session.full_clean()
    session.save()
    return session


def session_delete(*, user: AbstractBaseUser, session_id: UUID | str) -> None:
    """Delete one of the user's sessions with its runs, traces and artifacts (cascade);
    its workspace goes once the deletion commits (apps.sessions.receivers)."""
    session = session_get_for_user(user=user, session_id=session_id)
    if session is None:
        raise NotFound("Session not found.")
    session.delete()
