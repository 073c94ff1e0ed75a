"""apps.core.asgi without a server: its error bodies are the project's error shape."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from apps.core.asgi import RequestGuard, error_json
from apps.core.errors import error_body


def test_error_json_is_the_shape_of_error_body():
    assert json.loads(error_json("request_timeout", "late")) == error_body("request_timeout", "late")


def _call(
    app: Any, messages: list[dict[str, Any]], headers: list[tuple[bytes, bytes]] | None = None
) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "headers": headers or [],
    }

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    limits = {"max_head_bytes": 1000, "max_target_bytes": 100, "max_headers": 10}
    guard = RequestGuard(app, max_body_bytes=10, body_timeout_seconds=5, **limits)
    asyncio.run(guard(scope, receive, send))
    return sent


def test_an_application_that_fails_before_answering_gives_a_json_500():
    async def failing(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("boom")

    sent = _call(failing, [{"type": "http.request", "body": b"", "more_body": False}])
    assert sent[0]["status"] == 500
    assert json.loads(sent[1]["body"])["error"]["code"] == "server_error"


def test_a_chunked_body_reaches_the_application_whole_with_its_length():
    seen: list[Any] = []

    async def echo(scope: Any, receive: Any, send: Any) -> None:
        seen.append(dict(scope["headers"]))
        seen.append(await receive())
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    messages = [
        {"type": "http.request", "body": b"abc", "more_body": True},
        {"type": "http.request", "body": b"def", "more_body": False},
    ]
    sent = _call(echo, messages, headers=[(b"transfer-encoding", b"chunked")])
    assert sent[0]["status"] == 204
    assert seen[1] == {"type": "http.request", "body": b"abcdef", "more_body": False}
    # DRF reads no body without a Content-Length
    assert seen[0] == {b"content-length": b"6"}
