from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser

from apps.sessions.models import Session


def session_create(*, owner: AbstractBaseUser, name: str, policy: str = "default") -> Session:
    session = Session(owner=owner, name=name, policy=policy)
    session.full_clean()
    session.save()
    return session
