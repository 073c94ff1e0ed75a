"""An ASGI layer in front of Django that a slow or broken client cannot get past.

Django's ASGIHandler reads the whole body into a temporary file, with no limit on
its size or on the time it takes, before any middleware runs. This layer reads it
first, within MAX_REQUEST_BODY_BYTES and REQUEST_BODY_TIMEOUT_SECONDS, and answers
in the project's error shape when a request is refused:

- 400 ``invalid_content_length``: a Content-Length that is not one number, and
  ``ambiguous_body_length``: Content-Length and Transfer-Encoding together;
- 408 ``request_timeout``: the body did not arrive in time (the connection is closed);
- 413 ``request_too_large``: declared or streamed (chunked) body over the limit;
- 414 ``uri_too_long`` and 431 ``request_header_too_large`` / ``too_many_headers``;
- 500 ``server_error``: the application failed before it started a response.

A body within the limits reaches Django whole, with its Content-Length set (a
chunked one included: DRF reads no body without it). Written without Django or
DRF so the HTTP protocol (config.web_server) can use it before Django loads.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CLOSE_HEADER = (b"connection", b"close")


def error_json(code: str, message: str) -> bytes:
    """apps.core.errors.error_body, serialised; without DRF, which needs settings to import."""
    return json.dumps({"error": {"code": code, "message": message, "fields": {}}}).encode()


def error_headers(body: bytes) -> list[tuple[bytes, bytes]]:
    return [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        # the rest of the request may still be on its way: the connection cannot carry another
        CLOSE_HEADER,
    ]


async def send_error(send: Send, status: int, code: str, message: str) -> None:
    body = error_json(code, message)
    await send({"type": "http.response.start", "status": status, "headers": error_headers(body)})
    await send({"type": "http.response.body", "body": body, "more_body": False})


class _Refused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class _Disconnected(Exception):
    pass


class RequestGuard:
    """Refuse over-limit request heads and bodies and bound the time a body may take."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        body_timeout_seconds: float,
        max_head_bytes: int,
        max_target_bytes: int,
        max_headers: int,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.body_timeout_seconds = body_timeout_seconds
        self.max_head_bytes = max_head_bytes
        self.max_target_bytes = max_target_bytes
        self.max_headers = max_headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            self._check_head(scope)
            body = await self._read_body(scope, receive)
        except _Refused as refusal:
            await send_error(send, refusal.status, refusal.code, refusal.message)
            return
        except _Disconnected:
            return
        await self._call_app(self._with_length(scope, body), _replay(body, receive), send)

    def _check_head(self, scope: Scope) -> None:
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        target = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
        if target > self.max_target_bytes:
            raise _Refused(414, "uri_too_long", f"The request URL exceeds {self.max_target_bytes} bytes.")
        if len(headers) > self.max_headers:
            raise _Refused(431, "too_many_headers", f"The request has more than {self.max_headers} headers.")
        # ": " and CRLF per header, as on the wire
        head = target + sum(len(name) + len(value) + 4 for name, value in headers)
        if head > self.max_head_bytes:
            raise _Refused(
                431,
                "request_header_too_large",
                f"The request line and headers exceed {self.max_head_bytes} bytes.",
            )
        lengths = {value.strip() for name, value in headers if name == b"content-length"}
        if not lengths:
            return
        if any(name == b"transfer-encoding" for name, _ in headers):
            # RFC 9112 6.1: a server may process such a request, but proxies disagree on how,
            # which is what request smuggling exploits
            raise _Refused(
                400, "ambiguous_body_length", "Send either Content-Length or Transfer-Encoding, not both."
            )
        if len(lengths) > 1 or not all(value.isdigit() for value in lengths):
            raise _Refused(400, "invalid_content_length", "Content-Length is not one non-negative number.")
        if int(lengths.pop()) > self.max_body_bytes:
            raise self._too_large()

    def _too_large(self) -> _Refused:
        return _Refused(413, "request_too_large", f"Request body exceeds {self.max_body_bytes} bytes.")

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes:
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self.body_timeout_seconds):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        raise _Disconnected
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > self.max_body_bytes:
                        raise self._too_large()
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        return b"".join(chunks)
        except TimeoutError:
            raise _Refused(
                408,
                "request_timeout",
                f"The request body did not arrive within {self.body_timeout_seconds:g} seconds.",
            ) from None

    @staticmethod
    def _with_length(scope: Scope, body: bytes) -> Scope:
        framing = (b"content-length", b"transfer-encoding")
        headers = scope["headers"]
        if not any(name in framing for name, _ in headers):
            return scope
        kept = [(name, value) for name, value in headers if name not in framing]
        return {**scope, "headers": [*kept, (b"content-length", str(len(body)).encode())]}

    async def _call_app(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            if started:
                raise  # the server closes the connection; nothing else can be said now
            logger.exception("the application failed before it answered")
            await send_error(send, 500, "server_error", "Internal server error.")


def _replay(body: bytes, receive: Receive) -> Receive:
    """The buffered body as one message; after it, the server's own (a disconnect, in time)."""
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if delivered:
            return await receive()
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
