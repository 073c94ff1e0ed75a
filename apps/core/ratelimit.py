"""Token buckets on the Django cache, shared by every web process that shares the cache.

A limit is written `N/period[:burst]`, several separated by commas: `60/min:10,1000/hour`
is 60 requests a minute with bursts of at most 10, and at most 1,000 an hour (a bucket
without a burst holds its whole rate). Each bucket is kept as GCRA's theoretical arrival
time (one number per bucket and client), which is a token bucket in one value.

With Redis as the cache (CACHE_URL=redis://...) a request's buckets are checked and
taken in one Lua script, on Redis's clock: atomic across processes and hosts. Other
caches get the same arithmetic under a lock of this process (right for the in-memory
default, approximate for a cache shared some other way).
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from dataclasses import dataclass

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from redis.commands.core import Script

from apps.core.rediscache import redis_client

logger = logging.getLogger(__name__)

PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
LIMIT_PATTERN = re.compile(r"^\s*(\d+)\s*/\s*([smhd])[a-z]*\s*(?::\s*(\d+))?\s*$")
NO_LIMIT = {"", "none", "off"}


@dataclass(frozen=True)
class Bucket:
    rate: int
    period: int  # seconds
    burst: int

    @property
    def interval_us(self) -> float:
        """Microseconds between two requests at the sustained rate."""
        return self.period * 1_000_000 / self.rate

    def __str__(self) -> str:
        unit = {1: "second", 60: "minute", 3600: "hour", 86400: "day"}[self.period]
        return f"{self.rate}/{unit}" + (f" (burst {self.burst})" if self.burst != self.rate else "")


def parse_limits(spec: str) -> tuple[Bucket, ...]:
    """`"60/min:10,1000/hour"` -> its buckets; `""` or `"none"` -> no limit."""
    if spec.strip().lower() in NO_LIMIT:
        return ()
    buckets = []
    for part in spec.split(","):
        match = LIMIT_PATTERN.match(part.lower())
        if match is None:
            raise ValueError(f"{part!r} is not a rate limit: write N/period[:burst], e.g. 60/min:10")
        rate, unit, burst = int(match[1]), match[2], match[3]
        if rate < 1 or (burst is not None and int(burst) < 1):
            raise ValueError(f"{part!r}: rates and bursts are at least 1")
        buckets.append(Bucket(rate=rate, period=PERIODS[unit], burst=int(burst) if burst else rate))
    return tuple(buckets)


# KEYS: one per bucket; ARGV: interval (µs) and burst of each. Returns 0 when the request
# is allowed (every bucket taken), else the microseconds until it would be (none taken).
_GCRA_LUA = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local wait = 0
local arrivals = {}
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i - 1])
  local burst = tonumber(ARGV[2 * i])
  local arrival = math.max(tonumber(redis.call('GET', key) or now), now) + interval
  wait = math.max(wait, arrival - burst * interval - now)
  arrivals[i] = arrival
end
if wait > 0 then
  return math.ceil(wait)
end
for i, key in ipairs(KEYS) do
  redis.call('SET', key, string.format('%.0f', arrivals[i]), 'PX', math.ceil((arrivals[i] - now) / 1000) + 1)
end
return 0
"""

# KEYS: one per bucket; ARGV: the interval (µs) of each. Gives back one request taken by the
# script above (a bucket whose arrival time falls to now or before is dropped: it is full).
_GIVE_BACK_LUA = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
for i, key in ipairs(KEYS) do
  local arrival = tonumber(redis.call('GET', key) or now) - tonumber(ARGV[i])
  if arrival <= now then
    redis.call('DEL', key)
  else
    redis.call('SET', key, string.format('%.0f', arrival), 'PX', math.ceil((arrival - now) / 1000) + 1)
  end
end
return 0
"""

_local_lock = threading.Lock()
_scripts: dict[str, Script] = {}


def _run_on_redis(backend: RedisCache, source: str, keys: list[str], args: list[float | int]) -> float:
    # One client per pool (apps.core.rediscache); a script (sent by its SHA, loaded again if
    # Redis restarted) is one object for all clients.
    client = redis_client(backend)
    script = _scripts.get(source)
    if script is None:
        script = _scripts[source] = Script(client, source)
    return float(script(keys=[backend.make_and_validate_key(key) for key in keys], args=args, client=client))


def _take_on_redis(backend: RedisCache, keys: list[str], buckets: list[Bucket]) -> float:
    args: list[float | int] = []
    for bucket in buckets:
        args += [bucket.interval_us, bucket.burst]
    return _run_on_redis(backend, _GCRA_LUA, keys, args)


def _take_locally(keys: list[str], buckets: list[Bucket]) -> float:
    with _local_lock:
        cache = caches["default"]
        now = time.time() * 1_000_000
        pairs = list(zip(keys, buckets, strict=True))
        arrivals = [max(cache.get(key) or now, now) + bucket.interval_us for key, bucket in pairs]
        wait = max(
            arrival - bucket.burst * bucket.interval_us - now
            for arrival, (_, bucket) in zip(arrivals, pairs, strict=True)
        )
        if wait > 0:
            return wait
        for key, arrival in zip(keys, arrivals, strict=True):
            cache.set(key, arrival, timeout=math.ceil((arrival - now) / 1_000_000) + 1)
        return 0.0


def _give_back_locally(keys: list[str], buckets: list[Bucket]) -> None:
    with _local_lock:
        cache = caches["default"]
        now = time.time() * 1_000_000
        for key, bucket in zip(keys, buckets, strict=True):
            arrival = (cache.get(key) or now) - bucket.interval_us
            if arrival <= now:
                cache.delete(key)
            else:
                cache.set(key, arrival, timeout=math.ceil((arrival - now) / 1_000_000) + 1)


Limits = list[tuple[str, tuple[Bucket, ...]]]


def _flatten(limits: Limits) -> tuple[list[str], list[Bucket]]:
    keys = [f"ratelimit:{key}:{bucket.rate}/{bucket.period}" for key, buckets in limits for bucket in buckets]
    return keys, [bucket for _, buckets in limits for bucket in buckets]


def take(limits: Limits) -> float:
    """Take one request from every bucket of every (key, buckets) pair, or none.

    Returns 0 when allowed, else the seconds to wait before the request would be.
    A cache that cannot be reached lets the request through (logged): a rate limiter
    must not take the API down with it.
    """
    keys, flat = _flatten(limits)
    if not keys:
        return 0.0
    try:
        backend = caches["default"]
        if isinstance(backend, RedisCache):
            wait_us = _take_on_redis(backend, keys, flat)
        else:
            wait_us = _take_locally(keys, flat)
    except Exception:  # the cache is down: count nothing rather than refuse everything
        logger.warning("rate limit cache unreachable; request let through", exc_info=True)
        return 0.0
    return wait_us / 1_000_000


def give_back(limits: Limits) -> None:
    """Return the request `take(limits)` took (what did not count after all: a login that
    succeeded, where only failures are limited)."""
    keys, flat = _flatten(limits)
    if not keys:
        return
    try:
        backend = caches["default"]
        if isinstance(backend, RedisCache):
            _run_on_redis(backend, _GIVE_BACK_LUA, keys, [bucket.interval_us for bucket in flat])
        else:
            _give_back_locally(keys, flat)
    except Exception:
        logger.warning("rate limit cache unreachable; nothing given back", exc_info=True)
