"""Rows read on every request, kept in the shared cache and invalidated by generation.

Every entry carries the value of one counter when its rows were read, and a lookup reads the
entry and the counter in one round trip, so an entry whose counter has moved on is a miss.
Whatever changes the rows moves the counter once its transaction has committed (`invalidate`,
a signal receiver as it is). A row read before the commit was stored under the old counter,
so it cannot outlive the change. If the cache cannot be reached when the counter should move,
entries still expire after the cache's time to live.

Only a cache that every web process shares can carry invalidations (Redis: CACHE_URL); with
the in-process default, or a time to live of 0, every lookup is a miss and nothing is stored.
Entries hold row values, from which each request builds fresh model instances (`instance_of`):
nothing is shared between requests.
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


class GenerationCache:
    """Entries under `prefix`, kept for the number of seconds in the setting `seconds_setting`;
    `what` names them in the log."""

    def __init__(self, prefix: str, seconds_setting: str, what: str) -> None:
        self.prefix = prefix
        self.generation_key = f"{prefix}:generation"
        self._seconds_setting = seconds_setting
        self._what = what

    def _backend(self) -> RedisCache | None:
        if getattr(settings, self._seconds_setting) <= 0:
            return None
        backend = caches["default"]
        return backend if isinstance(backend, RedisCache) else None

    def lookup(self, key: str) -> tuple[int | None, Any]:
        """(generation, entry): the entry is None on a miss; the generation is None when
        there is no cache to use (then nothing may be stored)."""
        backend = self._backend()
        if backend is None:
            return None, None
        name = f"{self.prefix}:{key}"
        try:
            found = get_many(backend, [self.generation_key, name])
        except Exception:
            logger.warning("%s cache unreachable; reading the database", self._what, exc_info=True)
            return None, None
        generation = int(found.get(self.generation_key) or 0)
        entry = found.get(name)
        if not isinstance(entry, tuple) or len(entry) != 2 or entry[0] != generation:
            return generation, None
        return generation, entry[1]

    def store(self, key: str, generation: int | None, entry: Any) -> None:
        backend = self._backend()
        if backend is None or generation is None:
            return
        try:
            backend.set(
                f"{self.prefix}:{key}", (generation, entry), timeout=getattr(settings, self._seconds_setting)
            )
        except Exception:
            logger.warning("could not cache a %s", self._what, exc_info=True)

    def _advance(self) -> None:
        backend = self._backend()
        if backend is None:
            return
        try:
            redis_client(backend).incr(backend.make_and_validate_key(self.generation_key))
        except Exception:
            logger.error(
                "could not invalidate cached %s entries: they stay usable up to %s",
                self._what,
                self._seconds_setting,
                exc_info=True,
            )

    def invalidate(self, **_: Any) -> None:
        """Every entry is read again from the database, once the current transaction commits
        (at once outside one). A signal receiver as it is."""
        transaction.on_commit(self._advance)


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
