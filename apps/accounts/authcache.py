"""Credentials resolved recently (API tokens and API keys), kept in the shared cache.

Looking a credential up costs a database query on every API request; a cached one costs a
read of the cache, which the rate limiter already talks to. Entries are keyed by the
credential's SHA-256 and hold the user's and the credential's row values (never the secret:
an API token's key is left out, the request brings it), from which each request builds fresh
model instances (nothing is shared between requests).

Invalidation is by generation: every entry carries the value of one counter when its rows
were read, and a lookup reads the entry and the counter in one round trip, so an entry
whose counter has moved on is a miss. Anything that can revoke a credential moves the
counter once its transaction has committed: a token deleted, a key revoked or rotated, a
user saved (deactivated) or deleted (`invalidate`, wired to those models' signals in
apps.accounts.apps, and called by services that update rows without signals). A row read
before the commit was stored under the old counter, so it cannot outlive the change. If
the cache cannot be reached when the counter should move, entries still expire after
AUTH_CACHE_SECONDS.

Only a cache that every web process shares can carry invalidations (Redis: CACHE_URL);
with the in-process default, or AUTH_CACHE_SECONDS = 0, every request reads the database.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.db import DEFAULT_DB_ALIAS, models, transaction
from django.db.models.base import DEFERRED

from apps.core.rediscache import get_many, redis_client

logger = logging.getLogger(__name__)

KEY_PREFIX = "auth:v1"
GENERATION_KEY = f"{KEY_PREFIX}:generation"


def _backend() -> RedisCache | None:
    if settings.AUTH_CACHE_SECONDS <= 0:
        return None
    backend = caches["default"]
    return backend if isinstance(backend, RedisCache) else None


def lookup(kind: str, digest: str) -> tuple[int | None, dict[str, Any] | None]:
    """(generation, entry): the entry is None on a miss; the generation is None when there
    is no cache to use (then nothing may be stored)."""
    backend = _backend()
    if backend is None:
        return None, None
    key = f"{KEY_PREFIX}:{kind}:{digest}"
    try:
        found = get_many(backend, [GENERATION_KEY, key])
    except Exception:
        logger.warning("credential cache unreachable; reading the database", exc_info=True)
        return None, None
    generation = int(found.get(GENERATION_KEY) or 0)
    entry = found.get(key)
    if not isinstance(entry, tuple) or len(entry) != 2 or entry[0] != generation:
        return generation, None
    return generation, entry[1]


def store(kind: str, digest: str, generation: int | None, entry: dict[str, Any]) -> None:
    backend = _backend()
    if backend is None or generation is None:
        return
    try:
        backend.set(f"{KEY_PREFIX}:{kind}:{digest}", (generation, entry), timeout=settings.AUTH_CACHE_SECONDS)
    except Exception:
        logger.warning("could not cache a credential", exc_info=True)


def _advance() -> None:
    backend = _backend()
    if backend is None:
        return
    try:
        redis_client(backend).incr(backend.make_and_validate_key(GENERATION_KEY))
    except Exception:
        logger.error(
            "could not invalidate cached credentials: they stay usable up to AUTH_CACHE_SECONDS",
            exc_info=True,
        )


def invalidate(**_: Any) -> None:
    """Every cached credential is read again from the database, once the current
    transaction commits (at once outside one). A signal receiver as it is."""
    transaction.on_commit(_advance)


def row_values(instance: models.Model, without: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        field.attname: getattr(instance, field.attname)
        for field in instance._meta.concrete_fields
        if field.attname not in without
    }


def instance_of(model: type[models.Model], values: dict[str, Any]) -> models.Model:
    """A fresh instance, as if loaded from the database (a field added since is deferred)."""
    names = [field.attname for field in model._meta.concrete_fields]
    return model.from_db(DEFAULT_DB_ALIAS, names, [values.get(name, DEFERRED) for name in names])
