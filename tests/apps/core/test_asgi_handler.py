"""apps.core.asgi_handler without a server: a request's synchronous work is one thread hop on
a kept thread, a few requests at a time in arrival order, and a streaming response ends when its
client goes away."""

from __future__ import annotations

import asyncio
import threading
import time
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


_inside: dict[str, Any] = {"now": 0, "most": 0, "order": [], "finished": []}
_inside_lock = threading.Lock()


def slow(request: HttpRequest) -> HttpResponse:
    seconds = float(request.GET.get("seconds", "0.05"))
    with _inside_lock:
        _inside["now"] += 1
        _inside["most"] = max(_inside["most"], _inside["now"])
        _inside["order"].append(request.GET["n"])
    time.sleep(seconds)
    with _inside_lock:
        _inside["now"] -= 1
        _inside["finished"].append(request.GET["n"])
    return HttpResponse(b"done")


urlpatterns = [path("plain", plain), path("stream", stream), path("slow", slow)]


@pytest.fixture
def handler(settings) -> OneHopASGIHandler:
    settings.ROOT_URLCONF = __name__
    settings.WEB_CONCURRENT_REQUESTS = 1  # a stream must not hold the one turn
    return OneHopASGIHandler()


def _scope(url: str) -> dict[str, Any]:
    url, _, query = url.partition("?")
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": url,
        "raw_path": url.encode(),
        "query_string": query.encode(),
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
        # the stream holds its own thread, so another request meanwhile is served on another;
        # and not the one turn, so that request is served at all
        other = await asyncio.wait_for(_get(handler, "/plain"), timeout=5)
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


@pytest.mark.parametrize("limit", [2, 0])
def test_requests_run_a_few_at_a_time_in_arrival_order(settings, limit):
    settings.ROOT_URLCONF = __name__
    settings.WEB_CONCURRENT_REQUESTS = limit
    handler = OneHopASGIHandler()
    _inside.update(now=0, most=0, order=[], finished=[])

    async def burst() -> list[list[Any]]:
        requests = []
        for n in range(6):
            requests.append(asyncio.create_task(_get(handler, f"/slow?n={n}")))
            await asyncio.sleep(0.005)  # each arrives after the one before
        return await asyncio.gather(*requests)

    responses = asyncio.run(burst())
    assert [r[0]["status"] for r in responses] == [200] * 6
    if limit:
        assert _inside["most"] == limit
        assert _inside["order"] == [str(n) for n in range(6)]
    else:
        assert _inside["most"] > 2  # every request as it comes


@pytest.mark.parametrize(("turn", "first_done"), [(0.05, "quick"), (30.0, "long")])
def test_a_long_request_gives_its_turn_to_the_next(settings, turn, first_done):
    settings.ROOT_URLCONF = __name__
    settings.WEB_CONCURRENT_REQUESTS = 1
    settings.WEB_REQUEST_TURN_SECONDS = turn
    handler = OneHopASGIHandler()
    _inside.update(now=0, most=0, order=[], finished=[])

    async def long_then_quick() -> list[list[Any]]:
        long = asyncio.create_task(_get(handler, "/slow?n=long&seconds=0.6"))
        await asyncio.sleep(0.01)
        quick = asyncio.create_task(_get(handler, "/slow?n=quick&seconds=0"))
        return await asyncio.gather(long, quick)

    responses = asyncio.run(long_then_quick())
    assert [r[0]["status"] for r in responses] == [200, 200]
    # past its turn the long request runs on beside the next; within it, the next waits
    assert _inside["finished"][0] == first_done
