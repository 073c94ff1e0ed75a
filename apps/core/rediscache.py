"""The Django cache's Redis backend with connection pools kept per process, and a reusable client.

Django's cache handler keeps a backend per async context, so under ASGI every request built a
new backend, and with it a new connection pool and a new connection: a TCP connect, a HELLO and
redis-py's reading of its own version from package metadata, on every request. SharedRedisCache
(what settings put in place of Django's RedisCache) keeps one client, and so one set of pools,
per server list and options for the process.

Django's RedisCache builds a new redis-py client for every operation, whose construction
(its table of reply callbacks) costs more CPU than the round trip it makes; the rate limiter,
the credential cache and the backpressure check, which read the cache on every API request
or submission, use one client per connection pool instead (redis-py clients are safe to
share between threads).
"""

from __future__ import annotations

import threading
from typing import Any

import redis
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from django.utils.functional import cached_property

_SHARED_CLIENTS: dict[tuple[tuple[str, ...], str], RedisCacheClient] = {}
_SHARED_CLIENTS_LOCK = threading.Lock()


class SharedRedisCache(RedisCache):
    """RedisCache whose client (its pools) outlives the backend: one per servers and options."""

    @cached_property
    def _cache(self) -> RedisCacheClient:
        key = (tuple(self._servers), repr(sorted(self._options.items())))
        with _SHARED_CLIENTS_LOCK:
            client = _SHARED_CLIENTS.get(key)
            if client is None:
                client = _SHARED_CLIENTS[key] = self._class(self._servers, **self._options)
        return client


def redis_client(backend: RedisCache) -> redis.Redis:
    pool = backend._cache._get_connection_pool(True)
    client = pool.__dict__.get("_limitgraph_client")
    if client is None:
        client = pool.__dict__["_limitgraph_client"] = backend._cache._client(connection_pool=pool)
    return client


def get_many(backend: RedisCache, keys: list[str]) -> dict[str, Any]:
    """backend.get_many(keys), over the shared client."""
    values = redis_client(backend).mget([backend.make_and_validate_key(key) for key in keys])
    serializer = backend._cache._serializer
    return {
        key: serializer.loads(value) for key, value in zip(keys, values, strict=True) if value is not None
    }


def cache_get(key: str, default: Any = None) -> Any:
    """caches["default"].get(key), over the shared client when the cache is Redis."""
    backend = caches["default"]
    if isinstance(backend, RedisCache):
        return get_many(backend, [key]).get(key, default)
    return backend.get(key, default)
