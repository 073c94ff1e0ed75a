from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from apps.accounts.keys import generate_key, hash_key
from apps.accounts.models import ApiKey

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
