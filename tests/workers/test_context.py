"""The typed run context: the session's workspace, artifacts, the backend decided from the
worker's capabilities; and every kind has its executor."""

from __future__ import annotations

import stat

import pytest

from apps.artifacts.models import Artifact
from apps.runs.kinds import kind_names
from apps.runs.models import Run
from apps.sessions.services import session_create
from workers import bootstrap
from workers.context import DeviceUnavailable, ExecutionContext
from workers.executors import load_executors

pytestmark = pytest.mark.django_db


@pytest.fixture
def cpu_worker(monkeypatch):
    monkeypatch.setenv(bootstrap.WORKER_QUEUES_ENV, "cpu,control")
    bootstrap.worker_capabilities.cache_clear()
    yield bootstrap.worker_capabilities()
    bootstrap.worker_capabilities.cache_clear()


def context_for(session, **run_fields) -> ExecutionContext:
    run = Run.objects.create(owner=session.owner, session=session, kind="echo", queue="cpu", **run_fields)
    return ExecutionContext(run, attempt=1)


def test_every_kind_has_an_executor_and_every_executor_a_kind():
    assert sorted(load_executors()) == kind_names()


def test_a_cpu_worker_reports_what_it_can_run(cpu_worker):
    assert cpu_worker["gpus"] == 0 and sorted(cpu_worker["queues"]) == ["control", "cpu"]
    assert cpu_worker["backends"][0] == "numpy" and "cupy" not in cpu_worker["backends"]


def test_backend_is_decided_by_the_worker_and_a_gpu_run_is_refused_not_run_on_numpy(session, cpu_worker):
    ctx = context_for(session)
    assert ctx.backend({"backend": "auto", "device": "auto"}) == "numpy"
    assert ctx.backend({"backend": "numpy"}) == "numpy"
    for payload in ({"device": "gpu"}, {"backend": "cupy"}):
        with pytest.raises(DeviceUnavailable, match="needs a GPU and this worker has none"):
            ctx.backend(payload)
    if "torch" in cpu_worker["backends"]:
        assert ctx.backend({"backend": "torch"}) == "torch"


def test_the_workspace_is_per_session_private_and_kept(session, make_user, settings, tmp_path):
    settings.RUN_WORKSPACE_ROOT = tmp_path
    first = context_for(session).workspace
    (first / "notes.txt").write_text("kept")
    assert (context_for(session).workspace / "notes.txt").read_text() == "kept"
    other = context_for(session_create(owner=make_user("bob"), name="b")).workspace
    assert other != first and not (other / "notes.txt").exists()
    assert stat.S_IMODE(first.stat().st_mode) == 0o700


def test_artifacts_put_stores_a_file_of_the_run(session, settings, tmp_path):
    ctx = context_for(session)
    reference = ctx.artifacts.put("plan.json", b'{"plan": [[0.5]]}', content_type="application/json")
    artifact = Artifact.objects.get(pk=reference["artifact"])
    assert artifact.run_id == ctx.run.pk and artifact.session_id == session.pk
    assert reference["size"] == 17 and reference["sha256"] == artifact.sha256
