"""Local fake LLM servers for the tests, one per API style, on loopback: OpenAI chat
completions (`/v1/chat/completions`, `/v1/models`) and Anthropic Messages (`/v1/messages`,
`/v1/models`). Streaming and not (as the request asks), tool calls, 429 with Retry-After and
500 on demand, hanging to trigger timeouts, and a record of every request (path, headers,
JSON body, arrival time).

What a chat request gets: the next item of `script` if any, else `responder(body)`:

    Reply(text="...", tool_calls=[("fgw_distance", {...})], usage=(12, 5), delay=0.0)
    Fail(status=429, retry_after="1")      Fail(status=500)      Hang(seconds=5)
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    text: str = ""
    tool_calls: list[tuple[str, Any]] = field(default_factory=list)
    usage: tuple[int, int] = (10, 5)
    delay: float = 0.0  # between streamed pieces


@dataclass
class Fail:
    status: int
    retry_after: str | None = None
    message: str = "fake failure"


@dataclass
class Hang:
    seconds: float


@dataclass
class Recorded:
    path: str
    method: str
    headers: dict[str, str]
    body: Any
    raw: bytes
    at: float


class FakeLLMServer:
    """A fake provider of one API style ("openai" or "anthropic")."""

    def __init__(self, api: str) -> None:
        self.api = api
        self.script: list[Reply | Fail | Hang] = []
        self.responder: Callable[[dict[str, Any]], Reply | Fail | Hang] = lambda body: Reply(text="ok")
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        """What LLM_PROVIDERS takes: with /v1 for the OpenAI API, without for Anthropic's."""
        root = f"http://127.0.0.1:{self.server.server_address[1]}"
        return f"{root}/v1" if self.api == "openai" else root

    def chat_requests(self) -> list[Recorded]:
        return [r for r in self.requests if r.path.endswith(("/chat/completions", "/messages"))]

    def reset(self) -> None:
        with self._lock:
            self.script.clear()
            self.requests.clear()
        self.responder = lambda body: Reply(text="ok")

    def stop(self) -> None:
        self._stopping.set()
        self.server.shutdown()
        self.server.server_close()

    def _next(self, body: Any) -> Reply | Fail | Hang:
        with self._lock:
            if self.script:
                return self.script.pop(0)
        return self.responder(body)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # the end of a streamed answer is the connection's end

            def log_message(self, *args: Any) -> None:
                pass

            def _record(self, raw: bytes) -> Any:
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = None
                with fake._lock:
                    fake.requests.append(
                        Recorded(
                            self.path,
                            self.command,
                            {k.lower(): v for k, v in self.headers.items()},
                            body,
                            raw,
                            time.monotonic(),
                        )
                    )
                return body

            def do_GET(self) -> None:  # noqa: N802
                self._record(b"")
                if self.path.rstrip("/").endswith("/models"):
                    self._json(200, {"object": "list", "data": [{"id": "fake-model", "object": "model"}]})
                else:
                    self._json(404, {"error": {"message": "not found"}})

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                body = self._record(self.rfile.read(length))
                action = fake._next(body)
                if isinstance(action, Hang):
                    fake._stopping.wait(action.seconds)
                    return
                if isinstance(action, Fail):
                    headers = {"Retry-After": action.retry_after} if action.retry_after else {}
                    error = {"type": "error", "error": {"type": "fake_error", "message": action.message}}
                    self._json(action.status, error, headers)
                    return
                streamed = bool(body.get("stream"))
                if fake.api == "openai":
                    if streamed:
                        self._sse(
                            [(None, e) for e in openai_chunks(body, action)] + [(None, "[DONE]")],
                            action.delay,
                        )
                    else:
                        self._json(200, openai_completion(body, action))
                elif streamed:
                    self._sse(anthropic_events(body, action), action.delay)
                else:
                    self._json(200, anthropic_message(body, action))

            def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def _sse(self, events: list[tuple[str | None, Any]], delay: float) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()
                for name, data in events:
                    text = data if isinstance(data, str) else json.dumps(data)
                    head = f"event: {name}\n" if name else ""
                    self.wfile.write(f"{head}data: {text}\n\n".encode())
                    self.wfile.flush()
                    if delay:
                        time.sleep(delay)

        return Handler


def pieces(text: str, size: int = 4) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or []


def openai_completion(body: dict[str, Any], reply: Reply) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
    if reply.tool_calls:
        message["tool_calls"] = [
            {"id": f"call_{i}", "type": "function", "function": {"name": name, "arguments": _text(arguments)}}
            for i, (name, arguments) in enumerate(reply.tool_calls)
        ]
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", ""),
        "choices": [
            {"index": 0, "message": message, "finish_reason": "tool_calls" if reply.tool_calls else "stop"}
        ],
        "usage": {
            "prompt_tokens": reply.usage[0],
            "completion_tokens": reply.usage[1],
            "total_tokens": sum(reply.usage),
        },
    }


def _text(arguments: Any) -> str:
    return arguments if isinstance(arguments, str) else json.dumps(arguments)


def openai_chunks(body: dict[str, Any], reply: Reply) -> list[dict[str, Any]]:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": body.get("model", ""),
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }

    chunks = [chunk({"role": "assistant", "content": ""})]
    chunks += [chunk({"content": piece}) for piece in pieces(reply.text)]
    for i, (name, arguments) in enumerate(reply.tool_calls):
        text = _text(arguments)
        half = len(text) // 2
        chunks.append(
            chunk(
                {
                    "tool_calls": [
                        {
                            "index": i,
                            "id": f"call_{i}",
                            "type": "function",
                            "function": {"name": name, "arguments": text[:half]},
                        }
                    ]
                }
            )
        )
        chunks.append(chunk({"tool_calls": [{"index": i, "function": {"arguments": text[half:]}}]}))
    chunks.append(chunk({}, "tool_calls" if reply.tool_calls else "stop"))
    if (body.get("stream_options") or {}).get("include_usage"):
        chunks.append(
            {
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": body.get("model", ""),
                "choices": [],
                "usage": {
                    "prompt_tokens": reply.usage[0],
                    "completion_tokens": reply.usage[1],
                    "total_tokens": sum(reply.usage),
                },
            }
        )
    return chunks


def anthropic_message(body: dict[str, Any], reply: Reply) -> dict[str, Any]:
    content: list[dict[str, Any]] = [{"type": "text", "text": reply.text}] if reply.text else []
    content += [
        {
            "type": "tool_use",
            "id": f"toolu_{i}",
            "name": name,
            "input": arguments if isinstance(arguments, dict) else {},
        }
        for i, (name, arguments) in enumerate(reply.tool_calls)
    ]
    return {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": body.get("model", ""),
        "content": content,
        "stop_reason": "tool_use" if reply.tool_calls else "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": reply.usage[0], "output_tokens": reply.usage[1]},
    }


def anthropic_events(body: dict[str, Any], reply: Reply) -> list[tuple[str, Any]]:
    start = {**anthropic_message(body, reply), "content": [], "stop_reason": None}
    start["usage"] = {"input_tokens": reply.usage[0], "output_tokens": 1}
    events: list[tuple[str, Any]] = [("message_start", {"type": "message_start", "message": start})]
    index = 0
    if reply.text:
        events.append(
            (
                "content_block_start",
                {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            )
        )
        for piece in pieces(reply.text):
            events.append(
                (
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": 0,
                        "delta": {"type": "text_delta", "text": piece},
                    },
                )
            )
        events.append(("content_block_stop", {"type": "content_block_stop", "index": 0}))
        index = 1
    for i, (name, arguments) in enumerate(reply.tool_calls):
        text = _text(arguments)
        block = {"type": "tool_use", "id": f"toolu_{i}", "name": name, "input": {}}
        events.append(
            ("content_block_start", {"type": "content_block_start", "index": index, "content_block": block})
        )
        for piece in pieces(text, 7):
            delta = {"type": "input_json_delta", "partial_json": piece}
            events.append(
                ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
            )
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
        index += 1
    events.append(
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {
                    "stop_reason": "tool_use" if reply.tool_calls else "end_turn",
                    "stop_sequence": None,
                },
                "usage": {"output_tokens": reply.usage[1]},
            },
        )
    )
    events.append(("message_stop", {"type": "message_stop"}))
    return events
