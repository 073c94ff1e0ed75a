"""`python` runs across workers: a session's runs one at a time in order, a killed worker
leaves no lock behind, and a worker without bubblewrap refuses the sandbox queue."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.test import Client

from apps.core.models import WorkerHeartbeat
from apps.sessions.workspace import session_lock_path
from tests.workers.conftest import wait_for_run
from workers.sandbox import locks

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def workspace_root(settings) -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="lg-python-sessions-", dir="/tmp"))
    os.chmod(root, 0o711)  # enterable by the sandbox's own uids
    settings.RUN_WORKSPACE_ROOT = root
    yield root
    shutil.rmtree(root, ignore_errors=True)


def submit(api, session, code: str, **payload: object):
    body = {"session": str(session.pk), "kind": "python", "payload": {"code": code, **payload}}
    return api.post("/api/v1/runs", body, format="json")


def test_a_sessions_runs_go_one_at_a_time_in_submission_order(start_worker, api, session, workspace_root):
    # given two sandbox workers, either free to take any run
    for name in ("left", "right"):
        start_worker(name, queues="sandbox,control", RUN_WORKSPACE_ROOT=str(workspace_root))
    step = """
import time
open("log", "a").write("{0} start\\n")
time.sleep({1})
open("log", "a").write("{0} end\\n")
"""

    # when three runs of one session are submitted at once, the first a slow one
    run_ids = [
        submit(api, session, step.format(name, pause)).json()["id"]
        for name, pause in [("A", 1.5), ("B", 0.2), ("C", 0)]
    ]

    # then they ran one after the other, in the order they were submitted
    runs = [wait_for_run(run_id, {"succeeded", "failed"}, timeout=60) for run_id in run_ids]
    assert [run.status for run in runs] == ["succeeded"] * 3
    assert runs[0].worker_hostname != runs[1].worker_hostname  # B had a worker of its own, and waited
    log = (workspace_root / str(session.pk) / "log").read_text().splitlines()
    assert log == ["A start", "A end", "B start", "B end", "C start", "C end"]


def test_a_killed_worker_leaves_no_session_lock_and_no_process_behind(
    start_worker, api, session, workspace_root
):
    # given a run holding its session's lock on a worker
    doomed = start_worker("doomed", queues="sandbox,control", RUN_WORKSPACE_ROOT=str(workspace_root))
    code = """
import time
while True:
    with open("beat", "a") as f:
        f.write(".")
    time.sleep(0.02)
"""
    run_id = submit(api, session, code, timeout_s=120).json()["id"]
    beat = workspace_root / str(session.pk) / "beat"
    wait_for_run(run_id, {"running"})
    deadline = time.monotonic() + 30
    while not beat.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    lock = session_lock_path(session.pk)
    assert locks.is_held(lock)

    # when the worker and its pool are SIGKILLed
    doomed.kill()

    # then the lock is free and the sandbox is gone with them
    deadline = time.monotonic() + 5
    while locks.is_held(lock) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not locks.is_held(lock)
    # the sandbox dies with its worker (a loaded machine may take a moment to deliver the signal)
    size, deadline = -1, time.monotonic() + 5
    while (now := beat.stat().st_size) != size and time.monotonic() < deadline:
        size = now
        time.sleep(0.3)
    time.sleep(0.3)
    assert beat.stat().st_size == size, "something still writes in the dead worker's sandbox"


def test_a_worker_without_bubblewrap_refuses_the_sandbox_unless_allowed(
    start_worker, api, session, workspace_root, settings
):
    # given a sandbox worker on a host without bubblewrap
    missing = start_worker(
        "no-bwrap",
        queues="sandbox,control",
        SANDBOX_BWRAP="/nonexistent/bwrap",
        RUN_WORKSPACE_ROOT=str(workspace_root),
    )
    report = WorkerHeartbeat.objects.get(hostname=missing.hostname).capabilities["sandbox"]
    assert report["available"] is False and "apt-get install bubblewrap" in report["reason"]

    # then python runs are refused at submission, naming why, and /ready says so
    refused = submit(api, session, "print(1)")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "no_capable_worker"
    assert "bubblewrap" in refused.json()["error"]["message"]
    ready = Client().get("/ready")
    assert ready.status_code == 200 and ready.json()["details"]["sandbox"]["status"] == "unavailable"
    settings.SANDBOX_REQUIRED = True
    required = Client().get("/ready")
    assert required.status_code == 503 and "bubblewrap" in required.json()["checks"]["sandbox"]
    missing.stop()
    WorkerHeartbeat.objects.filter(hostname=missing.hostname).delete()

    # when an operator allows the weaker mode, runs go through without namespaces
    weak = start_worker(
        "weak",
        queues="sandbox,control",
        SANDBOX_BWRAP="/nonexistent/bwrap",
        SANDBOX_ALLOW_UNSANDBOXED="1",
        RUN_WORKSPACE_ROOT=str(workspace_root),
    )
    assert (
        WorkerHeartbeat.objects.get(hostname=weak.hostname).capabilities["sandbox"]["mode"] == "unsandboxed"
    )
    accepted = submit(api, session, "import os\nprint(sorted(os.environ))")
    assert accepted.status_code == 201
    run = wait_for_run(accepted.json()["id"], {"succeeded", "failed"}, timeout=60)
    assert run.status == "succeeded" and "SECRET_KEY" not in run.result["stdout"]
    assert Client().get("/ready").json()["details"]["sandbox"]["status"] == "unsandboxed"
