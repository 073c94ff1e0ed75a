"""The README's first command: `python -m config.up` brings the whole platform up on
embedded defaults (SQLite, the valkey broker from the wheel), a run submitted over
HTTP succeeds, and Ctrl-C stops every process it started."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 120.0

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _request(url: str, *, token: str | None = None, body: dict | None = None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Token {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (local URL)
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, {}


def _port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def test_one_command_brings_the_platform_up_and_down(tmp_path):
    web, flower, broker = _free_port(), _free_port(), _free_port()
    # Nothing from the test environment: the launcher's own defaults only.
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "CELERY_BROKER_URL", "SECRET_KEY", "DJANGO_SETTINGS_MODULE")
    }
    env.update(
        LIMITGRAPH_VAR_DIR=str(tmp_path / "var"),
        WEB_PORT=str(web),
        FLOWER_PORT=str(flower),
        EMBEDDED_BROKER_PORT=str(broker),
        WORKER_CONCURRENCY="1",
    )
    launcher = subprocess.Popen(
        [sys.executable, "-m", "config.up"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    up = threading.Event()

    def read() -> None:
        for line in launcher.stdout:
            lines.append(line)
            if "limitgraph is up" in line:
                up.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        assert up.wait(START_TIMEOUT), "".join(lines)[-3000:]
        time.sleep(0.5)  # the banner's remaining lines
        token = next(line.split()[-1] for line in lines if "API token" in line)
        base = f"http://127.0.0.1:{web}"

        status, session = _request(f"{base}/api/v1/sessions", token=token, body={"name": "e2e"})
        assert status == 201
        status, run = _request(
            f"{base}/api/v1/runs",
            token=token,
            body={"session": session["id"], "kind": "echo", "payload": {"hi": 1}},
        )
        assert status == 201

        deadline = time.monotonic() + 60
        while run["status"] != "succeeded" and time.monotonic() < deadline:
            time.sleep(0.3)
            run = _request(f"{base}/api/v1/runs/{run['id']}", token=token)[1]
        assert run["status"] == "succeeded" and run["result"] == {"hi": 1}

        assert _request(f"{base}/ready")[0] == 200
        assert _request(f"{base}/api/v1/runs")[0] == 401
        assert _request(f"http://127.0.0.1:{flower}/")[0] == 401  # Flower asks for the admin login
        assert (tmp_path / "var" / "limitgraph.sqlite3").exists()
    finally:
        launcher.send_signal(signal.SIGINT)
        launcher.wait(timeout=60)

    assert "stopped" in "".join(lines)
    for port in (web, flower, broker):
        assert not _port_open(port), f"port {port} still open after Ctrl-C"
