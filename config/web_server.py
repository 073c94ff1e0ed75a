"""The web server: gunicorn's arbiter with uvicorn workers on asyncio and h11.

A connection is a coroutine here, not a worker, so a client that stalls holds a
socket, not the server. What the HTTP layer itself refuses is answered in the
project's error shape too (uvicorn writes plain text):

- 400 ``bad_request``: a request h11 cannot parse (bad request line, header syntax,
  Content-Length together with Transfer-Encoding, ...);
- 431 ``request_header_too_large``: a request line and headers over
  MAX_REQUEST_HEAD_BYTES still without their end (complete ones are measured by
  apps.core.asgi.RequestGuard, which also answers 414 and too many headers);
- 408 ``request_timeout``: no complete request line and headers within
  REQUEST_HEAD_TIMEOUT_SECONDS of the connection or of the previous response.

Each of these closes the connection. Serve it with `gunicorn -c config/gunicorn.py config.asgi`.

The workers share one listening socket; each takes one waiting connection per turn of its loop
(AcceptOneEventLoop), so that clients that connect together are spread across them.
"""

from __future__ import annotations

import asyncio
import http
from typing import Any

import h11
from django.conf import settings
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState
from uvicorn_worker import UvicornWorker

from apps.core.asgi import error_headers, error_json

GRACEFUL_SHUTDOWN_SECONDS = 5


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a bound on the request head's time and JSON errors."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        # Built per connection, after the application (and so Django's settings) loaded.
        self.max_head_bytes: int = settings.MAX_REQUEST_HEAD_BYTES
        self.head_timeout_seconds: float = settings.REQUEST_HEAD_TIMEOUT_SECONDS
        self.conn = h11.Connection(h11.SERVER, max_incomplete_event_size=self.max_head_bytes)
        self.head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def data_received(self, data: bytes) -> None:
        if self._awaiting_head():
            self._arm_head_timer()
        super().data_received(data)
        if not self._awaiting_head():
            self._cancel_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def send_400_response(self, msg: str) -> None:
        buffered, _ = self.conn.trailing_data
        if len(buffered) > self.max_head_bytes:
            self._refuse(
                431,
                "request_header_too_large",
                f"The request line and headers exceed {self.max_head_bytes} bytes.",
            )
        else:
            self._refuse(400, "bad_request", "Malformed HTTP request.")

    def _awaiting_head(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _arm_head_timer(self) -> None:
        if self.head_timer is None:
            self.head_timer = self.loop.call_later(self.head_timeout_seconds, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def _head_timed_out(self) -> None:
        self.head_timer = None
        if self._awaiting_head() and not self.transport.is_closing():
            self._refuse(
                408,
                "request_timeout",
                f"The request line and headers did not arrive within {self.head_timeout_seconds:g} seconds.",
            )

    def _refuse(self, status: int, code: str, message: str) -> None:
        """Written past h11, whose state after a parse error or mid-head allows no response."""
        self._cancel_head_timer()
        self._unset_keepalive_if_required()
        body = error_json(code, message)
        head = [f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}".encode()]
        head += [name + b": " + value for name, value in error_headers(body)]
        self.transport.write(b"\r\n".join(head) + b"\r\n\r\n" + body)
        self.transport.close()


class AcceptOneEventLoop(asyncio.SelectorEventLoop):
    """asyncio's event loop, taking one waiting connection each time the listening socket is
    ready instead of as many as are queued (up to the backlog). Every worker polls the same
    socket: one that took a burst of new connections at once would serve all of them while the
    others idled (docs/benchmarks.md). The socket stays ready while connections wait, so each
    worker's next turn of its loop takes the next one."""

    def _accept_connection(self, protocol_factory: Any, sock: Any, *args: Any, **kwargs: Any) -> None:
        if len(args) >= 3:  # sslcontext, server, backlog, ...: the backlog here only counts accepts
            args = (*args[:2], 1, *args[3:])
        else:
            kwargs["backlog"] = 1
        super()._accept_connection(protocol_factory, sock, *args, **kwargs)  # type: ignore[misc]


class WebWorker(UvicornWorker):
    """gunicorn worker class (config/gunicorn.py): asyncio, the guarded h11 protocol,
    and no lifespan events (Django has none). At shutdown, requests still running after
    GRACEFUL_SHUTDOWN_SECONDS are cancelled: an event stream never ends by itself (its client
    reconnects to the next server with Last-Event-ID), and gunicorn would kill the worker later."""

    CONFIG_KWARGS: dict[str, Any] = {
        "loop": "config.web_server:AcceptOneEventLoop",
        "http": GuardedH11Protocol,
        "lifespan": "off",
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_SECONDS,
    }
