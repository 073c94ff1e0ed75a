"""apps.core.rediscache: under ASGI each request has a cache backend of its own (Django keeps
backends per async context); the shared backend keeps one connection pool for all of them."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from typing import Any

import pytest
import redis
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.urls import path

from apps.core.asgi_handler import OneHopASGIHandler
from tests.apps.core.test_asgi_handler import _get


def counter(request: HttpRequest) -> HttpResponse:
    cache.add("hits", 0)
    return HttpResponse(str(cache.incr("hits")))


urlpatterns = [path("count", counter)]


def _connections_made_by(
    backend: str, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> tuple[int, list[bytes]]:
    settings.ROOT_URLCONF = __name__
    settings.CACHES = {
        "default": {
            "BACKEND": backend,
            "LOCATION": os.environ["CELERY_BROKER_URL"],
            "KEY_PREFIX": f"rediscache-test-{uuid.uuid4().hex}",
        }
    }
    made = []
    open_socket = redis.connection.Connection._connect

    def counting(self: redis.connection.Connection) -> Any:
        made.append(self)
        return open_socket(self)

    monkeypatch.setattr(redis.connection.Connection, "_connect", counting)
    handler = OneHopASGIHandler()

    async def requests() -> list[bytes]:
        bodies = []
        for _ in range(6):
            # each request a task of its own, as the server runs them (a context copied from
            # the loop's, where no cache backend was made)
            sent = await asyncio.create_task(_get(handler, "/count"))
            bodies.append(b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body"))
        return bodies

    bodies = asyncio.run(requests())
    return len(made), bodies


def test_requests_under_asgi_share_one_redis_connection(settings, monkeypatch):
    made, bodies = _connections_made_by("apps.core.rediscache.SharedRedisCache", settings, monkeypatch)
    assert bodies == [b"1", b"2", b"3", b"4", b"5", b"6"]
    assert made == 1


def test_settings_put_the_shared_backend_in_place_of_djangos():
    env = {**os.environ, "CACHE_URL": "redis://127.0.0.1:6379/1", "SECRET_KEY": "x"}
    backend = "from django.conf import settings; print(settings.CACHES['default']['BACKEND'])"
    printed = subprocess.run(
        [sys.executable, "-c", backend],
        env={**env, "DJANGO_SETTINGS_MODULE": "config.settings"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert printed == "apps.core.rediscache.SharedRedisCache"
