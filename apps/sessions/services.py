from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser

from apps.policies.services import policy_resolve
from apps.sessions.models import Session


def session_create(*, owner: AbstractBaseUser, name: str, policy: str | None = None) -> Session:
    """A session bound to `policy` (a policy id or a preset's name; GOVERNANCE_POLICY if none)."""
    session = Session(owner=owner, name=name, policy=policy_resolve(policy))
    session.full_clean()
    session.save()
    return session
