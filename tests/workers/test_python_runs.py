"""`python` runs through the API on one real worker serving the `sandbox` queue (shared by
the module's tests: a worker start costs more than all its runs)."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.test import Client

from apps.runs.models import Run
from apps.sessions.services import session_create
from tests.workers.conftest import WorkerProcess, process_env, running_worker, wait_for_run

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

RESULT_KEYS = {"stdout", "stderr", "exit_code", "duration_s", "peak_memory_mb", "limit", "files"}
# Small enough that each limit is quick to reach through the API.
WORKER_LIMITS = {
    "SANDBOX_MAX_CPU_SECONDS": "2",
    "SANDBOX_MAX_OPEN_FILES": "64",
    "SANDBOX_MAX_FILE_BYTES": str(4 * 2**20),
    "SANDBOX_WORKSPACE_MAX_BYTES": str(8 * 2**20),
}


@pytest.fixture(scope="module")
def workspace_root() -> Iterator[Path]:
    # Enterable by the sandbox's own uids (pytest's tmp_path is closed to other users).
    root = Path(tempfile.mkdtemp(prefix="lg-python-runs-", dir="/tmp"))
    os.chmod(root, 0o711)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def sandbox_worker(
    django_db_setup: None, django_db_blocker, workspace_root: Path, tmp_path_factory
) -> Iterator[WorkerProcess]:
    assert shutil.which("bwrap"), "bubblewrap is needed: apt-get install bubblewrap (.ci/run does)"
    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()
    with running_worker(
        django_db_blocker,
        "sandbox",
        "sandbox,control",
        tmp_path_factory.mktemp("sandbox-worker") / "worker.log",
        process_env(RUN_WORKSPACE_ROOT=str(workspace_root), **WORKER_LIMITS),
    ) as worker:
        yield worker


@pytest.fixture(autouse=True)
def same_workspace_root(settings, workspace_root: Path) -> None:
    settings.RUN_WORKSPACE_ROOT = workspace_root


def submit(api, session, code: str, **payload: object) -> str:
    body = {"session": str(session.pk), "kind": "python", "payload": {"code": code, **payload}}
    response = api.post("/api/v1/runs", body, format="json")
    assert response.status_code == 201, response.content
    return response.json()["id"]


def result_of(api, run_id: str, timeout: float = 60.0) -> dict:
    run = wait_for_run(run_id, {"succeeded", "failed", "cancelled"}, timeout=timeout)
    assert run.status == "succeeded", run.error
    body = api.get(f"/api/v1/runs/{run_id}").json()
    assert set(body["result"]) == RESULT_KEYS
    return body["result"]


def test_stdout_exit_code_and_a_workspace_kept_for_its_session_only(
    sandbox_worker, api, other_api, user, session, workspace_root
):
    # given a first run that writes a file and exits with 4
    code = "import sys\nopen('notes.txt', 'w').write('hello')\nprint('first')\nsys.exit(4)"
    first = result_of(api, submit(api, session, code))
    assert first["stdout"] == "first\n" and first["exit_code"] == 4 and first["limit"] is None
    assert first["files"] == [] and first["duration_s"] > 0 and first["peak_memory_mb"] > 0

    # then the session's next run reads it
    second = result_of(api, submit(api, session, "print(open('notes.txt').read(), 'caf\u00e9', '\\x00')"))
    assert second["stdout"] == "hello café \ufffd\n" and second["exit_code"] == 0

    # and another session of the same user sees nothing, by any path
    other_session = session_create(owner=user, name="other")
    probe = f"""
import os
for path in ["notes.txt", {str(workspace_root / str(session.pk) / "notes.txt")!r},
             "/workspace/../{session.pk}/notes.txt"]:
    print(os.path.exists(path))
"""
    third = result_of(api, submit(api, other_session, probe))
    assert third["stdout"] == "False\nFalse\nFalse\n"

    # the workspace through the API: listed, fetched, another user's is a 404, deleted
    listing = api.get(f"/api/v1/sessions/{session.pk}/workspace").json()
    assert [(f["name"], f["size"]) for f in listing["files"]] == [("notes.txt", 5)]
    fetched = api.get(f"/api/v1/sessions/{session.pk}/workspace/notes.txt")
    assert fetched.status_code == 200 and b"".join(fetched.streaming_content) == b"hello"
    assert other_api.get(f"/api/v1/sessions/{session.pk}/workspace").status_code == 404
    assert other_api.get(f"/api/v1/sessions/{session.pk}/workspace/notes.txt").status_code == 404
    assert api.delete(f"/api/v1/sessions/{session.pk}/workspace/notes.txt").status_code == 204
    assert api.get(f"/api/v1/sessions/{session.pk}/workspace").json()["files"] == []


def test_the_network_is_closed_and_the_workers_secrets_stay_out(sandbox_worker, api, session):
    code = """
import os, socket
for address in [("127.0.0.1", 5432), ("127.0.0.1", 6379), ("1.1.1.1", 53)]:
    try:
        socket.create_connection(address, timeout=2).close()
        print("connected")
    except OSError:
        print("refused")
print(sorted(os.environ))
"""
    result = result_of(api, submit(api, session, code, env={"APP_GREETING": "hi"}))
    assert result["stdout"].splitlines()[:3] == ["refused"] * 3
    names = eval(result["stdout"].splitlines()[3])
    assert "APP_GREETING" in names
    assert not {"DATABASE_URL", "SECRET_KEY", "CELERY_BROKER_URL"} & set(names)


def test_payload_files_arrive_and_outbox_files_become_artifacts(sandbox_worker, api, session):
    uploaded = api.generic(
        "POST",
        f"/api/v1/artifacts?session={session.pk}&name=table.csv",
        b"a,b\n1,2\n",
        content_type="text/csv",
    )
    assert uploaded.status_code == 201, uploaded.content
    code = """
import os
rows = open("table.csv").read().splitlines()
os.makedirs("outbox", exist_ok=True)
open("outbox/summary.txt", "w").write(f"{len(rows)} rows")
open("outbox/bad\\nname", "w").write("a name no artifact may have")
"""
    result = result_of(api, submit(api, session, code, files=[uploaded.json()["id"]]))
    assert len(result["files"]) == 1 and result["exit_code"] == 0
    assert "[sandbox] outbox/bad\\nname was not kept: Control and format characters" in result["stderr"]
    download = api.get(f"/api/v1/artifacts/{result['files'][0]}/download")
    assert b"".join(download.streaming_content) == b"2 rows"
    names = [f["name"] for f in api.get(f"/api/v1/sessions/{session.pk}/workspace").json()["files"]]
    assert names == ["outbox/bad\nname", "table.csv"]  # kept files leave the outbox

    # an artifact id that is not the user's fails the run, naming it, and runs nothing
    foreign = "00000000-0000-4000-8000-000000000000"
    run = wait_for_run(submit(api, session, "open('ran', 'w')", files=[foreign]), {"succeeded", "failed"})
    assert (
        run.status == "failed" and run.error["type"] == "InputFileMissing" and foreign in run.error["message"]
    )
    assert "ran" not in [
        f["name"] for f in api.get(f"/api/v1/sessions/{session.pk}/workspace").json()["files"]
    ]


def test_cancel_kills_the_run_within_a_second(sandbox_worker, api, session, workspace_root):
    code = """
import time
while True:
    with open("beat", "a") as f:
        f.write(".")
    time.sleep(0.02)
"""
    run_id = submit(api, session, code, timeout_s=60)
    beat = workspace_root / str(session.pk) / "beat"
    deadline = time.monotonic() + 30
    while not (beat.exists() and beat.stat().st_size > 5) and time.monotonic() < deadline:
        time.sleep(0.05)

    asked = time.monotonic()
    assert api.post(f"/api/v1/runs/{run_id}/cancel").status_code == 202
    run = wait_for_run(run_id, {"cancelled", "succeeded", "failed"}, timeout=10)
    took = time.monotonic() - asked

    assert run.status == "cancelled" and took < 1.0
    size = beat.stat().st_size
    time.sleep(0.2)
    assert beat.stat().st_size == size  # nothing writes any more


def test_every_limit_is_a_result_and_bombs_leave_the_worker_serving(sandbox_worker, api, user):
    # Governance would block the fork bomb before it reaches a worker (the next test); under a
    # permissive policy it reaches the sandbox, which must hold on its own.
    session = session_create(owner=user, name="permissive", policy="permissive")
    fork_bomb = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"
    cases = {
        "processes": submit(api, session, fork_bomb),
        "memory": submit(api, session, "x = []\nwhile True: x.append(bytearray(2**20))", memory_mb=64),
        "timeout": submit(api, session, "import time\ntime.sleep(60)", timeout_s=1),
        "cpu_time": submit(api, session, "while True: pass", timeout_s=30),
        "output": submit(api, session, "print('x' * 3_000_000)"),
        "file_size": submit(api, session, "open('big', 'wb').write(b'x' * 2**23)"),
        "open_files": submit(api, session, "files = [open('/dev/null') for _ in range(100)]"),
    }
    after = submit(api, session, "print(1)")

    for limit, run_id in cases.items():
        result = result_of(api, run_id)
        assert result["limit"] == limit, (limit, result)
    assert result_of(api, after)["stdout"] == "1\n"
    assert sandbox_worker.process.poll() is None
    assert Run.objects.filter(status="failed").count() == 0


def test_governance_blocks_a_fork_bomb_before_it_reaches_a_worker(api, user):
    session = session_create(owner=user, name="default")
    fork_bomb = "import os\nwhile True:\n    os.fork()"
    body = {"session": str(session.pk), "kind": "python", "payload": {"code": fork_bomb}}
    response = api.post("/api/v1/runs", body, format="json")
    assert response.status_code == 201 and response.json()["status"] == "blocked"
    flags = api.get(f"/api/v1/traces/{response.json()['trace']}/flags").json()["results"]
    assert flags and flags[0]["span"]["field"] == "payload.code"


def test_a_workspace_over_its_quota_ends_runs_until_files_are_deleted(sandbox_worker, api, user):
    session = session_create(owner=user, name="quota")
    writer = "for i in range(4):\n    open(f'f{i}', 'wb').write(b'x' * 3 * 2**20)"
    assert result_of(api, submit(api, session, writer))["limit"] == "workspace"

    refused = result_of(api, submit(api, session, "print(1)"))
    assert refused["limit"] == "workspace" and refused["stdout"] == "" and refused["exit_code"] is None
    assert "SANDBOX_WORKSPACE_MAX_BYTES" in refused["stderr"]

    for listed in api.get(f"/api/v1/sessions/{session.pk}/workspace").json()["files"]:
        assert api.delete(f"/api/v1/sessions/{session.pk}/workspace/{listed['name']}").status_code == 204
    assert result_of(api, submit(api, session, "print(1)"))["stdout"] == "1\n"


def test_ready_reports_the_sandbox(sandbox_worker):
    # a worker counts as live by its heartbeat: on a loaded machine one may come late, so ask again
    deadline = time.monotonic() + 15
    while (details := Client().get("/ready").json()["details"]["sandbox"])["status"] != "ok":
        if time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert details["status"] == "ok"
    assert details["workers"][sandbox_worker.hostname]["mode"] == "bwrap"


def test_deleting_the_session_deletes_its_workspace(sandbox_worker, api, session, workspace_root):
    result_of(api, submit(api, session, "open('x', 'w').write('1')"))
    assert (workspace_root / str(session.pk) / "x").exists()
    assert api.delete(f"/api/v1/sessions/{session.pk}").status_code == 204
    assert not (workspace_root / str(session.pk)).exists()
    assert api.get(f"/api/v1/sessions/{session.pk}").status_code == 404


def test_a_second_user_cannot_run_in_the_first_users_session(sandbox_worker, other_api, session):
    body = {"session": str(session.pk), "kind": "python", "payload": {"code": "print(1)"}}
    response = other_api.post("/api/v1/runs", body, format="json")
    assert response.status_code == 400 and response.json()["error"]["fields"]["session"]
