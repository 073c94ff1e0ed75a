"""Django's ASGI handler with a request's synchronous work done in one thread hop.

Every view of the project is synchronous (event streams are sync views returning an async
iterator). Django's own ASGIHandler runs the middleware in async mode, where each
synchronous middleware and each `process_request` / `process_response` / `process_view`
hook of Django's MiddlewareMixin crosses from the event loop to a thread and back, and the
view once more; together those hops cost more CPU than a small view itself
(docs/benchmarks.md, "Submission throughput"). This handler loads the middleware in
sync mode, as under WSGI, and runs `request_started`, the whole chain and, for a finished
(non-streaming) response, `response.close()` (`request_finished`: the database connection
goes back to its pool) in one `sync_to_async` call; the loop then writes the response.

As in Django's handler, the call is thread-sensitive inside a ThreadSensitiveContext per
request, so a streaming response's later synchronous pulls (a report's database cursor)
run in the thread that ran the view; but that thread is a kept one, lent to one request at
a time, where Django starts a thread for every request and another to join it. A
streaming response is written while the client is watched for a disconnect, which
cancels it (an event stream never ends by itself).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.conf import settings
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.core.handlers.base import BaseHandler
from django.http import FileResponse, HttpResponseBase
from django.urls import set_script_prefix


class RequestThreads:
    """Single-thread executors lent to one request at a time (touched only by the event loop).

    A request holds its thread until its response is written: an open event stream holds
    one, idle. Past `keep` idle threads, a returned one ends.
    """

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self._idle: deque[ThreadPoolExecutor] = deque()

    def lend(self) -> ThreadPoolExecutor:
        if self._idle:
            return self._idle.pop()
        return ThreadPoolExecutor(max_workers=1, thread_name_prefix="request")

    def give_back(self, executor: ThreadPoolExecutor) -> None:
        if len(self._idle) < self.keep:
            self._idle.append(executor)
        else:
            executor.shutdown(wait=False)


class Admission:
    """At most `limit` requests of a process in their synchronous work at once, the others
    waiting their turn in arrival order (0 or less: no limit); bound to the running event loop.

    Request threads share one GIL: with every connection's request computing at once, each
    takes as long as all of them together, and the GIL's hand-overs favour the thread that
    holds it, so the slowest request of a burst waits several times the median. A few at a
    time keep the database and Redis waits overlapped and serve the rest first come, first
    served (docs/benchmarks.md, "Requests admitted a few at a time"). A request still running
    after `turn_seconds` gives its turn to the next and runs on beside them, so a few slow
    requests (a long report, a lock wait) cannot hold a process's turns.
    """

    def __init__(self, limit: int, turn_seconds: float) -> None:
        self.limit = limit
        self.turn_seconds = turn_seconds
        self._loop: asyncio.AbstractEventLoop | None = None
        self._semaphore: asyncio.Semaphore | None = None

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        if self.limit <= 0:
            yield
            return
        loop = asyncio.get_running_loop()
        semaphore = self._semaphore
        if semaphore is None or self._loop is not loop:
            semaphore = asyncio.Semaphore(self.limit)
            self._loop, self._semaphore = loop, semaphore
        await semaphore.acquire()
        held = True

        def give_back() -> None:
            nonlocal held
            if held:
                held = False
                semaphore.release()

        timer = loop.call_later(self.turn_seconds, give_back)
        try:
            yield
        finally:
            timer.cancel()
            give_back()


class OneHopASGIHandler(ASGIHandler):
    # Idle request threads a process keeps: about the requests it serves at once.
    KEEP_THREADS = 32

    def __init__(self) -> None:
        BaseHandler.__init__(self)
        self.load_middleware(is_async=False)
        self.threads = RequestThreads(self.KEEP_THREADS)
        self.admission = Admission(settings.WEB_CONCURRENT_REQUESTS, settings.WEB_REQUEST_TURN_SECONDS)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        executor = self.threads.lend()
        try:
            async with ThreadSensitiveContext(executor=executor):
                await self.handle(scope, receive, send)
        finally:
            self.threads.give_back(executor)

    async def handle(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        try:
            # the body was read before a turn is taken, so a slow client waits alone; a stream's
            # later writing is outside it
            async with self.admission.turn():
                response = await sync_to_async(self._respond, thread_sensitive=True)(scope, body_file)
            if not response.streaming:
                await self.send_response(response, send)
                return
            await self._stream(response, receive, send)
        finally:
            body_file.close()

    def _respond(self, scope: dict[str, Any], body_file: Any) -> HttpResponseBase:
        """In the request's thread: what Django's handler does in several hops."""
        set_script_prefix(get_script_prefix(scope))
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, response = self.create_request(scope, body_file)
        if request is not None:
            response = self.get_response(request)
        response._handler_class = self.__class__
        if isinstance(response, FileResponse):
            response.block_size = self.chunk_size
        if not response.streaming:
            # Its content is complete: close it now (request_finished) rather than after
            # another hop once it is sent.
            response.close()
        return response

    async def _stream(self, response: HttpResponseBase, receive: Any, send: Any) -> None:
        sending = asyncio.create_task(self.send_response(response, send))
        watching = asyncio.create_task(self.listen_for_disconnect(receive))
        try:
            await asyncio.wait((sending, watching), return_when=asyncio.FIRST_COMPLETED)
            for task in (watching, sending):
                if not task.done():
                    task.cancel()
                try:
                    await task
                except (asyncio.CancelledError, RequestAborted):
                    pass
        finally:
            await sync_to_async(response.close, thread_sensitive=True)()
