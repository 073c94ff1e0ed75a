from __future__ import annotations

from uuid import UUID

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from apps.sessions.models import Session


def session_list_for_user(*, user: AbstractBaseUser) -> QuerySet[Session]:
    # The policy's active version is read by every submission's input checks.
    sessions = Session.objects.select_related("owner", "policy__active_version")
    return sessions if user.is_staff else sessions.filter(owner=user)


def session_get_for_user(*, user: AbstractBaseUser, session_id: UUID | str) -> Session | None:
    # get(), not first(): no ORDER BY to compile and sort for a primary key
    try:
        return session_list_for_user(user=user).get(pk=session_id)
    except Session.DoesNotExist:
        return None
