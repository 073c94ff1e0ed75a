"""API keys: create, rotate, revoke, authenticate.

A key never makes a new key: creating one takes a password-backed login (a token,
a session or a JWT). A key may only rotate itself, and what it makes that way
expires no later than it would have, links back to it (`created_by_key`) and
goes with it when it is revoked with `cascade`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Group
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.accounts import authcache
from apps.accounts.keys import generate_key, hash_key
from apps.accounts.models import ApiKey
from apps.accounts.roles import ADMIN, REVIEWER, ROLES, is_reviewer
from apps.core.exceptions import Conflict, PermissionDenied, ValidationFailed

# last_used_at is for people auditing keys: minute precision spares a write per request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class KeysCannotCreateKeys(PermissionDenied):
    code = "api_key_not_allowed"
    default_message = (
        "An API key cannot create API keys: log in with a password-backed credential "
        "(an API token, a session or a JWT) to create one."
    )


class ApiKeyLimitReached(Conflict):
    code = "api_key_limit"


class ApiKeyInactive(Conflict):
    code = "api_key_inactive"
    default_message = "This API key is revoked or expired."


def _active(now: datetime) -> Q:
    return Q(revoked_at__isnull=True) & (Q(expires_at__isnull=True) | Q(expires_at__gt=now))


def _check_expiry(expires_at: datetime | None, now: datetime) -> None:
    if expires_at is not None and expires_at <= now:
        raise ValidationFailed(fields={"expires_at": ["Must be in the future."]})


def _check_cap(user: AbstractBaseUser, now: datetime, *, replacing: ApiKey | None = None) -> None:
    limit = settings.API_KEYS_PER_USER
    active = ApiKey.objects.filter(_active(now), user=user)
    if replacing is not None:
        active = active.exclude(pk=replacing.pk)
    if active.count() >= limit:
        raise ApiKeyLimitReached(f"You have {limit} active API keys, the limit: revoke one first.")


def _new_key(**fields: object) -> tuple[ApiKey, str]:
    prefix, key = generate_key()
    return ApiKey.objects.create(prefix=prefix, key_hash=hash_key(key), **fields), key


def api_key_create(
    *,
    user: AbstractBaseUser,
    name: str,
    expires_at: datetime | None = None,
    via_key: ApiKey | None = None,
) -> tuple[ApiKey, str]:
    """Create a key; the returned plain key is never stored and cannot be shown again.

    `via_key`: the API key the request authenticated with, if it did (refused).
    """
    if via_key is not None:
        raise KeysCannotCreateKeys()
    now = timezone.now()
    _check_expiry(expires_at, now)
    with transaction.atomic():
        # one key at a time per user, so that concurrent requests cannot pass the cap together
        get_user_model().objects.select_for_update().filter(pk=user.pk).first()
        _check_cap(user, now)
        return _new_key(user=user, name=name, expires_at=expires_at)


def api_key_rotate(
    *,
    user: AbstractBaseUser,
    api_key: ApiKey,
    overlap_seconds: int,
    expires_at: datetime | None = None,
    via_key: ApiKey | None = None,
) -> tuple[ApiKey, str]:
    """A new key for `api_key`, which then expires `overlap_seconds` from now (sooner if it
    was due to). A key may rotate only itself, and its successor expires no later than it."""
    if via_key is not None and via_key.pk != api_key.pk:
        raise PermissionDenied("An API key may rotate only itself.", fields={"api_key": [str(api_key.pk)]})
    limit = settings.API_KEY_MAX_ROTATION_OVERLAP_SECONDS
    if not 0 <= overlap_seconds <= limit:
        raise ValidationFailed(fields={"overlap_seconds": [f"From 0 to {limit} seconds."]})
    now = timezone.now()
    _check_expiry(expires_at, now)
    with transaction.atomic():
        old = ApiKey.objects.select_for_update().get(pk=api_key.pk, user=user)
        if not old.is_active:
            raise ApiKeyInactive()
        if expires_at is None or (via_key is not None and old.expires_at and expires_at > old.expires_at):
            expires_at = old.expires_at
        _check_cap(user, now, replacing=old)
        new, key = _new_key(
            user=user,
            name=old.name,
            expires_at=expires_at,
            rotated_from=old,
            created_by_key=via_key,
        )
        overlap_end = now + timedelta(seconds=overlap_seconds)
        old.expires_at = min(old.expires_at, overlap_end) if old.expires_at else overlap_end
        old.save(update_fields=["expires_at"])
    api_key.expires_at = old.expires_at
    return new, key


def api_key_revoke(*, api_key: ApiKey, cascade: bool = False) -> list[ApiKey]:
    """Revoke `api_key` and, with `cascade`, every key made with it (and with those, on down).

    Returns the keys this revoked, `api_key` first.
    """
    now = timezone.now()
    with transaction.atomic():
        chain = [api_key.pk]
        if cascade:
            frontier = [api_key.pk]
            while frontier:
                frontier = list(
                    ApiKey.objects.filter(created_by_key__in=frontier)
                    .exclude(pk__in=chain)
                    .values_list("pk", flat=True)
                )
                chain.extend(frontier)
        ApiKey.objects.filter(pk__in=chain, revoked_at__isnull=True).update(revoked_at=now)
        authcache.invalidate()  # an update sends no signal
        revoked = {key.pk: key for key in ApiKey.objects.filter(pk__in=chain)}
    api_key.revoked_at = revoked[api_key.pk].revoked_at
    return [api_key, *(revoked[pk] for pk in chain[1:])]


def api_key_authenticate(*, key: str) -> ApiKey | None:
    """The active key of an active user, or None. Cached (apps.accounts.authcache): a cached
    key's expiry is checked here, revocation and deactivation invalidate the cache."""
    now = timezone.now()
    digest = hash_key(key)
    generation, entry = authcache.lookup("api_key", digest)
    if entry is not None:
        api_key = authcache.instance_of(ApiKey, entry["key"])
        api_key.user = authcache.instance_of(get_user_model(), entry["user"])
        if not api_key.is_active or not api_key.user.is_active:
            return None
    else:
        api_key = (
            ApiKey.objects.select_related("user")
            .filter(_active(now), key_hash=digest, user__is_active=True)
            .first()
        )
        if api_key is None:
            return None
    fresh = entry is None
    if api_key.last_used_at is None or now - api_key.last_used_at > LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
        fresh = True
    if fresh:
        authcache.store(
            "api_key",
            digest,
            generation,
            {"key": authcache.row_values(api_key), "user": authcache.row_values(api_key.user)},
        )
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
