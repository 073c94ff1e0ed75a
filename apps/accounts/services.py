from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.models import AbstractBaseUser, Group
from django.db import transaction
from django.utils import timezone

from apps.accounts.keys import generate_key, hash_key
from apps.accounts.models import ApiKey
from apps.accounts.roles import ADMIN, REVIEWER, ROLES, is_reviewer
from apps.core.exceptions import ValidationFailed

# last_used_at is for people auditing keys: minute precision spares a write per request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def api_key_create(*, user: AbstractBaseUser, name: str) -> tuple[ApiKey, str]:
    """Create a key; the returned plain key is never stored and cannot be shown again."""
    prefix, key = generate_key()
    api_key = ApiKey.objects.create(user=user, name=name, prefix=prefix, key_hash=hash_key(key))
    return api_key, key


def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
    return api_key


def api_key_authenticate(*, key: str) -> ApiKey | None:
    api_key = (
        ApiKey.objects.select_related("user")
        .filter(key_hash=hash_key(key), revoked_at__isnull=True, user__is_active=True)
        .first()
    )
    now = timezone.now()
    if api_key is not None and (
        api_key.last_used_at is None or now - api_key.last_used_at > LAST_USED_RESOLUTION
    ):
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
    return api_key


# Roles that work in the Django admin (the review queue): their holders need is_staff to log in.
STAFF_ROLES = (REVIEWER, ADMIN)


def role_grant(*, user: AbstractBaseUser, role: str) -> None:
    """Add a role; reviewers and admins also become staff so they can log into the admin.
    (Staff read every session's runs and traces through the API too.)"""
    if role not in ROLES:
        raise ValidationFailed(fields={"role": [f"One of: {', '.join(ROLES)}."]})
    with transaction.atomic():
        user.groups.add(Group.objects.get_or_create(name=role)[0])
        if role in STAFF_ROLES and not user.is_staff:
            user.is_staff = True
            user.save(update_fields=["is_staff"])
    user.__dict__.pop("_role_groups", None)  # roles.py caches a user's groups on the instance


def role_revoke(*, user: AbstractBaseUser, role: str) -> None:
    """Remove a role; staff status goes with the last admin-side role (superusers keep it)."""
    if role not in ROLES:
        raise ValidationFailed(fields={"role": [f"One of: {', '.join(ROLES)}."]})
    with transaction.atomic():
        user.groups.remove(*Group.objects.filter(name=role))
        user.__dict__.pop("_role_groups", None)
        if role in STAFF_ROLES and user.is_staff and not user.is_superuser and not is_reviewer(user):
            user.is_staff = False
            user.save(update_fields=["is_staff"])
