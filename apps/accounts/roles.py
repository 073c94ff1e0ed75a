"""Roles, as Django groups (created by a migration), for users and their API keys alike:

- submitter: acts on their own sessions, runs and traces (every authenticated user can);
- reviewer: sees the review queue and flags of every session and decides on them, but
  never on their own runs, and cannot approve their own policy drafts;
- admin: everything (a superuser is an admin).
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser

SUBMITTER = "submitter"
REVIEWER = "reviewer"
ADMIN = "admin"
ROLES = (SUBMITTER, REVIEWER, ADMIN)


def _groups(user: AbstractBaseUser) -> set[str]:
    cached = getattr(user, "_role_groups", None)
    if cached is None:
        cached = set(user.groups.filter(name__in=ROLES).values_list("name", flat=True)) if user.pk else set()
        user._role_groups = cached
    return cached


def is_admin(user: AbstractBaseUser) -> bool:
    return bool(getattr(user, "is_superuser", False)) or ADMIN in _groups(user)


def is_reviewer(user: AbstractBaseUser) -> bool:
    return is_admin(user) or REVIEWER in _groups(user)


def roles_of(user: AbstractBaseUser) -> list[str]:
    roles = [SUBMITTER]
    if is_reviewer(user):
        roles.append(REVIEWER)
    if is_admin(user):
        roles.append(ADMIN)
    return roles
