"""apps.core.asgi_handler without a server: a request's synchronous work is one thread hop on
a kept thread, and a streaming response ends when its client goes away."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest
from asgiref.sync import SyncToAsync
from django.core import signals
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.urls import path

from apps.core.asgi_handler import OneHopASGIHandler


def plain(request: HttpRequest) -> HttpResponse:
    return HttpResponse(str(threading.get_ident()))


async def _forever() -> AsyncIterator[bytes]:
    while True:
        yield b"tick\n"
        await asyncio.sleep(0.01)


def stream(request: HttpRequest) -> StreamingHttpResponse:
    return StreamingHttpResponse(_forever())


urlpatterns = [path("plain", plain), path("stream", stream)]


@pytest.fixture
def handler(settings) -> OneHopASGIHandler:
    settings.ROOT_URLCONF = __name__
    return OneHopASGIHandler()


def _scope(url: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": url,
        "raw_path": url.encode(),
        "query_string": b"",
        "headers": [(b"host", b"localhost")],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }


async def _get(handler: OneHopASGIHandler, url: str, disconnect: asyncio.Event | None = None) -> list[Any]:
    sent: list[Any] = []
    first = True

    async def receive() -> dict[str, Any]:
        nonlocal first
        if first:
            first = False
            return {"type": "http.request", "body": b"", "more_body": False}
        await (disconnect or asyncio.Event()).wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await handler(_scope(url), receive, send)
    return sent


def test_a_request_crosses_to_a_kept_thread_once(handler, monkeypatch):
    hops = []
    original = SyncToAsync.__call__

    async def counting(self: SyncToAsync, *args: Any, **kwargs: Any) -> Any:
        hops.append(getattr(self.func, "__name__", ""))
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(SyncToAsync, "__call__", counting)
    finished_in = []

    def on_finished(**_: Any) -> None:
        finished_in.append(threading.get_ident())

    signals.request_finished.connect(on_finished)
    try:

        async def three() -> list[list[Any]]:
            return [await _get(handler, "/plain") for _ in range(3)]

        responses = asyncio.run(three())
    finally:
        signals.request_finished.disconnect(on_finished)

    assert [r[0]["status"] for r in responses] == [200, 200, 200]
    threads = {int(r[1]["body"]) for r in responses}
    # one thread, kept between requests, not the event loop's; request_finished (the
    # database connection goes back to its pool) ran there too, before the answer went out
    assert len(threads) == 1 and threading.get_ident() not in threads
    assert set(finished_in) == threads and len(finished_in) == 3
    assert len(hops) == 3  # Django's own handler: a dozen per request, one per middleware hook


def test_a_stream_ends_when_its_client_disconnects(handler):
    finished = []

    def on_finished(**_: Any) -> None:
        finished.append(threading.get_ident())

    async def watch() -> list[Any]:
        gone = asyncio.Event()
        request = asyncio.create_task(_get(handler, "/stream", gone))
        await asyncio.sleep(0.2)
        # the stream holds its own thread, so another request meanwhile is served on another
        other = await _get(handler, "/plain")
        gone.set()
        sent = await asyncio.wait_for(request, timeout=5)
        return [sent, other]

    signals.request_finished.connect(on_finished)
    try:
        sent, other = asyncio.run(watch())
    finally:
        signals.request_finished.disconnect(on_finished)
    assert sent[0]["status"] == 200
    assert any(message.get("body") == b"tick\n" for message in sent[1:])
    assert other[0]["status"] == 200
    assert len(finished) == 2 and len(set(finished)) == 2  # each request's own thread
