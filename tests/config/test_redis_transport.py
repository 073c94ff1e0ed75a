"""config.redis_transport: redis:// brokers publish over one redis-py client per channel, and
their URLs still read as redis:// (Flower picks its broker client by that scheme)."""

from __future__ import annotations

import os
import uuid
from typing import Any

import pytest
import redis

from config.celery import app
from config.redis_transport import Transport

BROKER = os.environ["CELERY_BROKER_URL"]
pytestmark = pytest.mark.skipif(not BROKER.startswith("redis://"), reason="the broker is not Redis")


def test_publishes_share_one_client_and_every_message_arrives(monkeypatch):
    queue = f"transport-test-{uuid.uuid4().hex}"
    made = []
    build = redis.Redis.__init__

    def counting(self: redis.Redis, *args: Any, **kwargs: Any) -> None:
        made.append(self)
        build(self, *args, **kwargs)

    with app.connection_for_write(BROKER) as connection:
        assert isinstance(connection.transport, Transport)
        assert connection.as_uri().startswith("redis://")
        connection.default_channel  # noqa: B018 (opens the channel, with the clients it keeps)
        monkeypatch.setattr(redis.Redis, "__init__", counting)
        for i in range(20):
            app.send_task("workers.noop", args=(i,), connection=connection, queue=queue)
        monkeypatch.undo()
        channel = connection.default_channel
        with channel.conn_or_acquire() as client:
            waiting = client.llen(queue)
            client.delete(queue)
    assert waiting == 20
    assert len(made) <= 1  # kombu's own: two a message
