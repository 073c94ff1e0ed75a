"""kombu's Redis transport with one redis-py client per channel.

kombu builds a new `redis.Redis` for each command it sends outside its pipelines
(`Channel.conn_or_acquire`): two per published message (the exchange's bindings and the
publish itself) and more per acknowledgement. With redis-py 8 a client's construction costs
more CPU than the round trip it wraps. Clients over one connection pool are safe to share,
so each channel keeps one, made again if the channel's pool is replaced.

`use_for_redis_urls()` (config.celery) makes it what `redis://` broker URLs resolve to. The URLs
stay as they are (Flower picks its broker client by the scheme that kombu reports), which
naming the class in CELERY_BROKER_TRANSPORT would not keep.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kombu import transport as kombu_transports
from kombu.transport import redis as kombu_redis


class Channel(kombu_redis.Channel):
    _shared_client: Any = None

    @contextmanager
    def conn_or_acquire(self, client: Any = None) -> Iterator[Any]:
        if client:
            yield client
            return
        shared = self._shared_client
        if shared is None or shared.connection_pool is not self.pool:
            shared = self._shared_client = self._create_client()
        yield shared


class Transport(kombu_redis.Transport):
    Channel = Channel


def use_for_redis_urls() -> None:
    kombu_transports.TRANSPORT_ALIASES["redis"] = f"{__name__}:Transport"
    kombu_transports._transport_cache.pop("redis", None)
