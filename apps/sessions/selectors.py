from __future__ import annotations

from typing import Any
from uuid import UUID

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from apps.core.bulk import PreparedRead
from apps.core.generation_cache import GenerationCache, instance_of, row_values
from apps.policies.models import Policy, PolicyVersion
from apps.sessions.models import Session


def session_list_for_user(*, user: AbstractBaseUser) -> QuerySet[Session]:
    # The policy's active version is read by every submission's input checks.
    sessions = Session.objects.select_related("owner", "policy__active_version")
    return sessions if user.is_staff else sessions.filter(owner=user)


# Every submission reads its session: compiled once, not by the ORM on each request.
_ANY_SESSION = PreparedRead(
    lambda pk: Session.objects.select_related("owner", "policy__active_version").filter(pk=pk), UUID(int=0)
)
_OWN_SESSION = PreparedRead(
    lambda owner, pk: Session.objects.select_related("owner", "policy__active_version").filter(
        owner_id=owner, pk=pk
    ),
    0,
    UUID(int=0),
)


# A user's own sessions, with their policies and active versions, as every submission reads them:
# in the shared cache, read again after any session, policy or policy version changes
# (apps.sessions.apps wires `invalidate` to their signals).
session_cache = GenerationCache("sessions:v1", "SESSION_CACHE_SECONDS", "session")


def session_get_for_user(*, user: AbstractBaseUser, session_id: UUID | str) -> Session | None:
    pk = Session._meta.pk.to_python(session_id)  # ValidationError for a malformed id, as the ORM's
    if user.is_staff:
        found = _ANY_SESSION.read(pk)
        return found[0] if found else None
    key = f"{user.pk}:{pk}"
    generation, entry = session_cache.lookup(key)
    if entry is not None:
        return _session_of(entry, user)
    found = _OWN_SESSION.read(user.pk, pk)
    if not found:
        return None
    session = found[0]
    version = session.policy.active_version
    session_cache.store(
        key,
        generation,
        {
            "session": row_values(session),
            "policy": row_values(session.policy),
            "version": row_values(version) if version is not None else None,
        },
    )
    return session


def _session_of(entry: dict[str, Any], owner: AbstractBaseUser) -> Session:
    """Fresh instances from a cached entry, related as the database read relates them."""
    session = instance_of(Session, entry["session"])
    policy = instance_of(Policy, entry["policy"])
    version = entry["version"]
    policy.active_version = instance_of(PolicyVersion, version) if version is not None else None
    session.policy = policy
    session.owner = owner  # the key holds the owner: only the owner's own sessions are cached
    return session
