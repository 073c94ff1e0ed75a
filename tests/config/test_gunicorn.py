"""The web server as deployed: gunicorn with uvicorn workers serving config.asgi.

Real server processes on a free port, spoken to over raw sockets: slow or broken
clients do not hold the workers, and what the server refuses is in the JSON error shape.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from rest_framework.authtoken.models import Token

from apps.sessions.models import Session
from tests.workers.conftest import ROOT, process_env

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

SERVER_START_TIMEOUT = 30.0
# Long enough that the prompt requests below are answered well inside it on a busy
# machine, short enough to keep the test brief.
STALL_SECONDS = 6


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (local URL)
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


class Response:
    def __init__(self, raw: bytes) -> None:
        head, _, self.body = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {
            name.strip().lower(): value.strip() for name, value in (line.split(":", 1) for line in lines[1:])
        }

    def error_code(self) -> str:
        assert self.headers["content-type"] == "application/json", (self.status, self.headers, self.body)
        body = json.loads(self.body)
        assert set(body["error"]) == {"code", "message", "fields"}, body
        return body["error"]["code"]


def _read_response(sock: socket.socket, timeout: float) -> Response:
    """Read until the server closes the connection (every refusal closes it)."""
    sock.settimeout(timeout)
    raw = b""
    while chunk := sock.recv(65536):
        raw += chunk
    return Response(raw)


def _exchange(port: int, data: bytes, timeout: float = 10.0) -> Response:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(data)
        return _read_response(sock, timeout)


def _request(method: str, target: str, *headers: bytes, body: bytes = b"") -> bytes:
    lines = [f"{method} {target} HTTP/1.1".encode(), b"Host: localhost", *headers]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., int]]:
    servers: list[subprocess.Popen[bytes]] = []

    def start(*argv: str, workers: int = 1, **env: str) -> int:
        port = _free_port()
        env.setdefault("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / f"prometheus-{port}"))
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.py", *(argv or ["config.asgi"])],
            cwd=ROOT,
            env=process_env(GUNICORN_BIND=f"127.0.0.1:{port}", GUNICORN_WORKERS=str(workers), **env),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        servers.append(server)
        start.processes[port] = server
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while time.monotonic() < deadline:
            try:
                if _get(f"http://127.0.0.1:{port}/health")[0] == 200:
                    return port
            except OSError:
                time.sleep(0.2)
        raise AssertionError("the server did not answer /health")

    start.processes = {}  # port -> the gunicorn master, for tests that signal it or its workers
    yield start
    for server in servers:
        server.terminate()
        server.wait(timeout=15)


def test_gunicorn_counts_requests_across_its_workers(tmp_path: Path, start_server: Callable[..., int]):
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    (metrics_dir / "stale_from_a_previous_run.db").write_bytes(b"garbage")
    port = start_server(workers=3, PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))
    base = f"http://127.0.0.1:{port}"
    for _ in range(20):
        assert _get(f"{base}/health")[0] == 200
    status, text = _get(f"{base}/metrics")
    assert status == 200
    counted = r'limitgraph_http_requests_total\{method="GET",status="200",view="health"\} (\S+)'
    served = re.search(counted, text)
    assert served is not None, text[:2000]
    # 20 + the readiness poll: every worker's count is in the one scrape
    assert float(served.group(1)) >= 21
    assert not (metrics_dir / "stale_from_a_previous_run.db").exists()


def test_stalled_clients_do_not_hold_the_server_and_get_a_json_408(start_server: Callable[..., int]):
    # given one worker, and more clients stalled mid-body than a sync server has workers
    port = start_server(
        workers=1,
        REQUEST_BODY_TIMEOUT_SECONDS=str(STALL_SECONDS),
        REQUEST_HEAD_TIMEOUT_SECONDS=str(STALL_SECONDS),
    )
    stalled_bodies = []
    for _ in range(4):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(_request("POST", "/api/v1/sessions", b"Content-Length: 1000", body=b"0123456789"))
        stalled_bodies.append(sock)
    stalled_head = socket.create_connection(("127.0.0.1", port))
    stalled_head.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\n")
    try:
        # when another client asks meanwhile, it is answered
        health = _exchange(port, _request("GET", "/health", b"Connection: close"), STALL_SECONDS)
        assert health.status == 200 and json.loads(health.body) == {"status": "ok"}
        # ... while the stalled ones are still waiting for theirs
        for sock in [*stalled_bodies, stalled_head]:
            sock.setblocking(False)
            with pytest.raises(BlockingIOError):
                sock.recv(1)

        # then each stalled client gets the JSON error and the connection closed
        for sock in stalled_bodies:
            response = _read_response(sock, timeout=STALL_SECONDS * 3)
            assert response.status == 408 and response.error_code() == "request_timeout"
            assert response.headers["connection"] == "close"
        response = _read_response(stalled_head, timeout=STALL_SECONDS * 3)
        assert response.status == 408 and response.error_code() == "request_timeout"
    finally:
        for sock in [*stalled_bodies, stalled_head]:
            sock.close()


def test_oversized_or_malformed_request_heads_are_json_4xx(start_server: Callable[..., int]):
    port = start_server()
    big = b"X-Big: " + b"a" * 40_000  # over MAX_REQUEST_HEAD_BYTES (32 KiB)

    complete = _exchange(port, _request("GET", "/health", big))
    assert complete.status == 431 and complete.error_code() == "request_header_too_large"

    # a head that grows past the limit without ever ending is refused by the HTTP layer
    unfinished = _exchange(port, b"GET /health HTTP/1.1\r\nHost: localhost\r\n" + big)
    assert unfinished.status == 431 and unfinished.error_code() == "request_header_too_large"

    many = [f"X-{i}: 1".encode() for i in range(150)]  # over MAX_REQUEST_HEADERS (100)
    too_many = _exchange(port, _request("GET", "/health", *many))
    assert too_many.status == 431 and too_many.error_code() == "too_many_headers"

    long_url = _exchange(port, _request("GET", "/health?q=" + "a" * 9000))
    assert long_url.status == 414 and long_url.error_code() == "uri_too_long"

    malformed = _exchange(port, b"NOT AN HTTP REQUEST\r\n\r\n")
    assert malformed.status == 400 and malformed.error_code() == "bad_request"

    bad_chunk = _exchange(
        port, _request("POST", "/health", b"Transfer-Encoding: chunked", body=b"zz\r\nabc\r\n")
    )
    assert bad_chunk.status == 400 and bad_chunk.error_code() == "bad_request"

    # the framing a request-smuggling attempt relies on
    both_framings = _exchange(
        port,
        _request(
            "POST",
            "/health",
            b"Content-Length: 8",
            b"Transfer-Encoding: chunked",
            body=_chunked(b"abc"),
        ),
    )
    assert both_framings.status == 400 and both_framings.error_code() == "ambiguous_body_length"

    # and the server is still there
    assert _get(f"http://127.0.0.1:{port}/health")[0] == 200


def _chunked(*chunks: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in chunks) + b"0\r\n\r\n"


def test_bodies_over_the_limit_are_a_json_413_and_chunked_ones_within_it_reach_the_api(
    start_server: Callable[..., int], user: object
):
    port = start_server(MAX_REQUEST_BODY_BYTES="4096")
    token = Token.objects.create(user=user).key
    auth = f"Authorization: Token {token}".encode()
    json_type = b"Content-Type: application/json"

    streamed = _exchange(
        port,
        _request(
            "POST",
            "/api/v1/sessions",
            auth,
            json_type,
            b"Transfer-Encoding: chunked",
            body=_chunked(*[b"a" * 2000] * 3),
        ),
    )
    assert streamed.status == 413 and streamed.error_code() == "request_too_large"

    declared = _exchange(port, _request("POST", "/api/v1/sessions", auth, json_type, b"Content-Length: 5000"))
    assert declared.status == 413 and declared.error_code() == "request_too_large"

    within = _exchange(
        port,
        _request(
            "POST",
            "/api/v1/sessions",
            auth,
            json_type,
            b"Transfer-Encoding: chunked",
            b"Connection: close",
            body=_chunked(b'{"name": ', b'"chunked"}'),
        ),
    )
    assert within.status == 201, within.body
    assert Session.objects.filter(name="chunked", owner=user).exists()


def test_the_wsgi_application_stays_importable():
    from config.wsgi import application

    assert callable(application)
