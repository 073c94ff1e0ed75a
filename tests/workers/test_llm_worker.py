"""`llm` runs through the API on one real worker process (threads pool, as the io queue's
workers run) that also serves the cpu queue, so tool calls become child runs executed beside
their parent: the fgw_distance round trip, and cancelling a parent cancels its child; with a
sandbox worker beside it (prefork, as deployed), the python tool's child runs under bubblewrap."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from django.conf import settings as django_settings

from apps.runs.models import Run
from apps.traces.models import ProvenanceEntry
from tests.fakes import llm_tools  # noqa: F401  (registers read_note and nap here too)
from tests.fakes.llm_servers import FakeLLMServer, Reply
from tests.workers.conftest import WorkerProcess, process_env, running_worker, wait_for_run

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

KEY = "sk-fake-worker-41b7-never-in-a-log"
PATH = {"n": 3, "edges": [[0, 1], [1, 2]]}
TRIANGLE = {"n": 3, "edges": [[0, 1], [1, 2], [0, 2]]}


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeLLMServer]:
    server = FakeLLMServer("openai")
    yield server
    server.stop()


def providers_of(fake: FakeLLMServer) -> dict:
    return {
        "local": {"api": "openai", "base_url": fake.base_url, "api_key_env": "FAKE_LLM_KEY", "models": ["m"]}
    }


@pytest.fixture(scope="module")
def worker(fake, django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[WorkerProcess]:
    redis.Redis.from_url(django_settings.CELERY_BROKER_URL).flushdb()
    env = process_env(
        LLM_PROVIDERS=json.dumps(providers_of(fake)),
        LLM_TOOL_MODULES="tests.fakes.llm_tools",
        FAKE_LLM_KEY=KEY,
        LOG_LEVEL="DEBUG",  # the key must not reach the log at any level
    )
    log = tmp_path_factory.mktemp("llm-worker") / "worker.log"
    with running_worker(
        django_db_blocker, "llm", "io,cpu,control", log, env, ("--pool", "threads", "--concurrency", "4")
    ) as process:
        yield process


@pytest.fixture(scope="module")
def sandbox_worker(worker, django_db_blocker, tmp_path_factory) -> Iterator[WorkerProcess]:
    assert shutil.which("bwrap"), "bubblewrap is needed: apt-get install bubblewrap (.ci/run does)"
    # enterable by the sandbox's own uids (pytest's tmp_path is closed to other users)
    root = Path(tempfile.mkdtemp(prefix="lg-llm-python-", dir="/tmp"))
    os.chmod(root, 0o711)
    log = tmp_path_factory.mktemp("llm-sandbox-worker") / "worker.log"
    with running_worker(
        django_db_blocker, "llm-sandbox", "sandbox", log, process_env(RUN_WORKSPACE_ROOT=str(root))
    ) as process:
        yield process
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(autouse=True)
def providers(settings, fake):
    fake.reset()
    settings.LLM_PROVIDERS = providers_of(fake)


def submit(api, session, tools: list[str]) -> str:
    payload = {
        "provider": "local",
        "model": "m",
        "messages": [{"role": "user", "content": "Compare them."}],
        "tools": tools,
    }
    response = api.post(
        "/api/v1/runs", {"session": str(session.pk), "kind": "llm", "payload": payload}, format="json"
    )
    assert response.status_code == 201, response.content
    return response.json()["id"]


def tool_results(body: dict) -> list[dict]:
    return [json.loads(m["content"]) for m in body["messages"] if m["role"] == "tool"]


def test_the_model_calls_fgw_distance_and_a_child_run_answers(api, session, worker, fake):
    def respond(body: dict) -> Reply:
        results = tool_results(body)
        if not results:
            return Reply(tool_calls=[("fgw_distance", {"source": PATH, "target": TRIANGLE, "alpha": 1.0})])
        return Reply(text=f"The FGW distance is {results[0]['distance']:.6f}.")

    fake.responder = respond
    run_id = submit(api, session, ["fgw_distance"])

    run = wait_for_run(run_id, {"succeeded", "failed", "dead"}, timeout=120)

    assert run.status == "succeeded", run.error
    result = api.get(f"/api/v1/runs/{run_id}").json()["result"]
    (call,) = result["tool_calls"]
    child = Run.objects.get(pk=call["run"])
    assert child.kind == "fgw" and child.parent_id == run.pk and child.session_id == run.session_id
    assert child.status == "succeeded" and child.owner_id == run.owner_id
    assert call["result"]["distance"] == child.result["distance"] > 0  # a path is not a triangle
    assert call["arguments"] == {"source": PATH, "target": TRIANGLE, "alpha": 1.0}
    assert result["message"]["content"] == f"The FGW distance is {child.result['distance']:.6f}."
    assert tool_results(fake.chat_requests()[1].body)[0]["distance"] == child.result["distance"]
    entries = ProvenanceEntry.objects.filter(trace__run_id=run_id, action="llm.tool_call")
    assert [e.data["run"] for e in entries] == [str(child.pk)]
    assert KEY not in worker.log_path.read_text()


def test_cancelling_the_parent_cancels_its_child(api, session, worker, fake):
    fake.responder = lambda body: Reply(tool_calls=[("nap", {"seconds": 60})])
    run_id = submit(api, session, ["nap"])
    child = None
    wait_for_run(run_id, {"running"}, timeout=60)
    for _ in range(300):
        child = Run.objects.filter(parent_id=run_id, status="running").first()
        if child is not None:
            break
        time.sleep(0.1)
    assert child is not None, "the tool's child run never started"

    assert api.post(f"/api/v1/runs/{run_id}/cancel").status_code == 202

    assert wait_for_run(run_id, {"cancelled", "failed", "succeeded"}, timeout=30).status == "cancelled"
    assert wait_for_run(child.pk, {"cancelled", "failed", "succeeded"}, timeout=30).status == "cancelled"
    assert len(fake.chat_requests()) == 1  # the model was not called again


def test_on_the_worker_a_bad_argument_returns_to_the_model_and_an_injection_is_flagged(
    api, session, worker, fake
):
    from apps.governance.models import Flag

    def respond(body: dict) -> Reply:
        results = tool_results(body)
        if not results:
            return Reply(tool_calls=[("fgw_distance", {"source": PATH}), ("read_note", {"name": "poisoned"})])
        return Reply(text="Could not compare; the note was withheld.")

    fake.responder = respond
    run_id = submit(api, session, ["fgw_distance", "read_note"])

    run = wait_for_run(run_id, {"succeeded", "failed", "dead"}, timeout=120)

    assert run.status == "succeeded", run.error
    bad, poisoned = run.result["tool_calls"]
    assert "'target' is a required property" in bad["result"]["error"] and bad["run"] is None
    assert "withheld by governance" in poisoned["result"]["error"]
    assert not Run.objects.filter(parent_id=run_id).exists()  # no child run for invalid arguments
    sent_back = json.dumps(tool_results(fake.chat_requests()[1].body))
    assert "required property" in sent_back and "Ignore all previous" not in sent_back
    assert Flag.objects.filter(trace__run_id=run_id, type="jailbreak").exists()


def test_the_model_runs_python_in_the_sandbox_and_reads_its_output(
    api, session, worker, sandbox_worker, fake
):
    code = "import os, sys\nprint(os.getcwd(), sum(i * i for i in range(10)))\nprint('note', file=sys.stderr)"

    def respond(body: dict) -> Reply:
        results = tool_results(body)
        if not results:
            return Reply(tool_calls=[("python", {"code": code, "timeout_s": 30})])
        return Reply(text=f"It printed {results[0]['stdout'].split()[-1]}.")

    fake.responder = respond
    run_id = submit(api, session, ["python"])

    run = wait_for_run(run_id, {"succeeded", "failed", "dead"}, timeout=120)

    assert run.status == "succeeded", run.error
    (call,) = run.result["tool_calls"]
    child = Run.objects.get(pk=call["run"])
    assert child.kind == "python" and child.parent_id == run.pk and child.status == "succeeded"
    assert child.worker_hostname == sandbox_worker.hostname  # not the llm worker: it serves no sandbox
    # the sandbox's own working directory: the code ran under bubblewrap, not in a worker
    assert call["result"]["stdout"] == "/workspace 285\n" and call["result"]["exit_code"] == 0
    assert "note" in call["result"]["stderr"] and call["arguments"] == {"code": code, "timeout_s": 30}
    assert tool_results(fake.chat_requests()[1].body)[0] == call["result"]
    assert run.result["message"]["content"] == "It printed 285."
