"""Following a run over server-sent events: the parser, and the client resuming a dropped
stream with Last-Event-ID.

The platform's own stream (GET /api/v1/runs/{id}/events) lands with the live-progress work;
until then a small local server speaks its documented format here, and the live-server tests
(test_cli.py) cover the polling the client falls back to when the endpoint is missing. Once it
has landed, those tests follow the real stream.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from limitgraph_cli.errors import ExitCode
from limitgraph_cli.follow import Event, parse_sse


def test_parse_sse_follows_the_event_stream_rules():
    stream = [
        ": heartbeat",
        "retry: 250",
        "id: 7",
        "event: progress",
        'data: {"status": "running",',
        'data:  "progress": 0.5}',
        "",
        "",  # a blank line with nothing pending dispatches nothing
        "data: plain",
        "",
        "id: 8",
        "event: status",
        'data: {"status": "succeeded"}',
    ]  # the last event has no closing blank line: a cut stream, never dispatched

    events = list(parse_sse(stream))

    assert events == [
        Event("progress", '{"status": "running",\n "progress": 0.5}', "7", 250),
        Event("message", "plain", "7", None),
    ]


class FakeStream(BaseHTTPRequestHandler):
    """One run: the first connection sends one event and drops; a resumed one finishes it."""

    run_id = str(uuid.uuid4())
    resumes: list[str | None] = []

    def log_message(self, *args: object) -> None:
        pass

    def _json(self, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        if self.path == f"/api/v1/runs/{self.run_id}":
            finished = len(self.resumes) >= 2
            self._json(
                {
                    "id": self.run_id,
                    "kind": "sleep",
                    "session": str(uuid.UUID(int=1)),
                    "status": "succeeded" if finished else "running",
                    "progress": 1.0 if finished else 0.2,
                    "result": {"slept_seconds": 1.0} if finished else None,
                }
            )
            return
        assert self.path == f"/api/v1/runs/{self.run_id}/events", self.path
        assert self.headers["Accept"] == "text/event-stream"
        self.resumes.append(self.headers.get("Last-Event-ID"))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        if len(self.resumes) == 1:
            body = "retry: 50\n\n: keep-alive\n\n" + (
                'id: 41\nevent: progress\ndata: {"status": "running", "progress": 0.5}\n\n'
            )
        else:
            body = 'id: 42\nevent: status\ndata: {"status": "succeeded", "progress": 1.0}\n\n'
        self.wfile.write(body.encode())
        self.close_connection = True


@pytest.fixture
def stream_server() -> Iterator[str]:
    FakeStream.resumes = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeStream)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_follow_reads_the_stream_and_resumes_it_with_last_event_id(bare_cli, stream_server):
    done = bare_cli(
        "--json",
        "status",
        FakeStream.run_id,
        "--follow",
        LIMITGRAPH_URL=stream_server,
        LIMITGRAPH_API_KEY="lg_x",
    )

    assert done.returncode == ExitCode.OK, done.stderr
    assert FakeStream.resumes == [None, "41"]
    assert json.loads(done.stdout)["status"] == "succeeded"
    assert done.stderr.splitlines()[-1] == f"{FakeStream.run_id}: succeeded 100%"
