"""Credentials resolved recently (API tokens and API keys), kept in the shared cache.

Looking a credential up costs a database query on every API request; a cached one costs a
read of the cache, which the rate limiter already talks to. Entries are keyed by the
credential's SHA-256 and hold the user's and the credential's row values (never the secret:
an API token's key is left out, the request brings it), from which each request builds fresh
model instances (nothing is shared between requests).

Invalidation is by generation (apps.core.generation_cache): anything that can revoke a
credential moves the counter once its transaction has committed: a token deleted, a key
revoked or rotated, a user saved (deactivated) or deleted (`invalidate`, wired to those
models' signals in apps.accounts.apps, and called by services that update rows without
signals). If the cache cannot be reached when the counter should move, entries still expire
after AUTH_CACHE_SECONDS. Only a shared (Redis) cache is used; with the in-process default,
or AUTH_CACHE_SECONDS = 0, every request reads the database.
"""

from __future__ import annotations

from typing import Any

from apps.core.generation_cache import GenerationCache, instance_of, row_values

__all__ = ["GENERATION_KEY", "instance_of", "invalidate", "lookup", "row_values", "store"]

KEY_PREFIX = "auth:v1"
_cache = GenerationCache(KEY_PREFIX, "AUTH_CACHE_SECONDS", "credential")
GENERATION_KEY = _cache.generation_key


def lookup(kind: str, digest: str) -> tuple[int | None, dict[str, Any] | None]:
    """(generation, entry): the entry is None on a miss; the generation is None when there
    is no cache to use (then nothing may be stored)."""
    return _cache.lookup(f"{kind}:{digest}")


def store(kind: str, digest: str, generation: int | None, entry: dict[str, Any]) -> None:
    _cache.store(f"{kind}:{digest}", generation, entry)


def invalidate(**_: Any) -> None:
    """Every cached credential is read again from the database, once the current
    transaction commits (at once outside one). A signal receiver as it is."""
    _cache.invalidate()
