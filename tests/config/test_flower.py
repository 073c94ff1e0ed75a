"""Flower as config.up starts it, a real process: every page, /metrics and /healthcheck
included, needs Flower's own login, which never appears on its command line."""

from __future__ import annotations

import base64
import os
import socket
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from config import up

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 60.0

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _status(url: str, login: tuple[str, str] | None = None) -> int:
    headers = {}
    if login:
        headers["Authorization"] = "Basic " + base64.b64encode(":".join(login).encode()).decode()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as response:  # noqa: S310
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def _celery() -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "config"]


@pytest.fixture
def flower(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[int, subprocess.Popen, tuple]]:
    port = _free_port()
    monkeypatch.setattr(up, "FLOWER_PORT", port)
    login = up._flower_credentials(tmp_path / "flower.json")
    argv, env = up._flower_process(_celery(), login)
    process = subprocess.Popen(
        argv,
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            try:
                _status(f"http://127.0.0.1:{port}/healthcheck")
                break
            except OSError:
                assert process.poll() is None, "flower exited"
                time.sleep(0.3)
        else:
            raise AssertionError("flower did not answer")
        yield port, process, login
    finally:
        process.terminate()
        process.wait(timeout=15)


def test_flower_credentials_are_its_own_and_kept_private(tmp_path: Path):
    store = tmp_path / "flower.json"

    username, password = up._flower_credentials(store)

    assert username == "flower" and len(password) >= 16
    assert stat.S_IMODE(store.stat().st_mode) == 0o600
    assert up._flower_credentials(store) == (username, password)  # reruns print the same


def test_every_flower_page_needs_the_login(flower):
    port, _, login = flower
    base = f"http://127.0.0.1:{port}"

    for path in ("/", "/metrics", "/healthcheck", "/api/workers", "/tasks"):
        assert _status(f"{base}{path}") == 401, path
        assert _status(f"{base}{path}", ("flower", "wrong")) == 401, path
    for path in ("/metrics", "/healthcheck", "/"):
        assert _status(f"{base}{path}", login) == 200, path


def test_the_password_is_not_on_flowers_command_line(flower):
    _, process, (_, password) = flower

    cmdline = Path(f"/proc/{process.pid}/cmdline").read_bytes()

    assert b"flower" in cmdline
    assert password.encode() not in cmdline


@pytest.mark.parametrize(
    "argv_extra, env",
    [
        ([], {}),  # no credentials at all
        (["--basic-auth=someone:visible-in-ps"], {}),
    ],
)
def test_flower_refuses_to_start_open_or_with_credentials_in_its_arguments(argv_extra, env):
    environment = {k: v for k, v in os.environ.items() if not k.startswith("FLOWER_")}
    done = subprocess.run(
        [*_celery(), "flower", f"--port={_free_port()}", *argv_extra],
        cwd=ROOT,  # where Flower finds flowerconfig.py by itself
        env={**environment, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode != 0
    assert "flowerconfig.py" in done.stderr + done.stdout


def test_flower_reads_its_login_from_a_file(tmp_path: Path):
    secret = tmp_path / "flower-login"
    secret.write_text("filed:from-a-file-only\n")
    port = _free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("FLOWER_")}
    process = subprocess.Popen(
        [*_celery(), "flower", "--address=127.0.0.1", f"--port={port}"],
        cwd=ROOT,
        env={**environment, "FLOWER_BASIC_AUTH_FILE": str(secret)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                status = _status(f"http://127.0.0.1:{port}/healthcheck")
                break
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline, "flower did not answer"
                time.sleep(0.3)
        assert status == 401
        assert _status(f"http://127.0.0.1:{port}/healthcheck", ("filed", "from-a-file-only")) == 200
    finally:
        process.terminate()
        process.wait(timeout=15)
