from __future__ import annotations

from uuid import UUID

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from apps.core.bulk import PreparedRead
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


def session_get_for_user(*, user: AbstractBaseUser, session_id: UUID | str) -> Session | None:
    pk = Session._meta.pk.to_python(session_id)  # ValidationError for a malformed id, as the ORM's
    found = _ANY_SESSION.read(pk) if user.is_staff else _OWN_SESSION.read(user.pk, pk)
    return found[0] if found else None
