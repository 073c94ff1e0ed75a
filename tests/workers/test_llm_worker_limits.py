"""An `llm` run that fails while its tool runs are going, on a real worker (threads pool, also
serving the cpu queue its children run on): its own time, LLM_MAX_RUN_SECONDS (short here),
passes while two child runs sleep. The run fails naming the bound, its worker stops both
children, and the session's usage keeps the tokens the run's model call spent."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import redis
from django.conf import settings as django_settings

from apps.llm.models import LlmUsage
from apps.runs.models import Run
from apps.traces.models import ProvenanceEntry
from tests.fakes import llm_tools  # noqa: F401  (registers nap here too)
from tests.fakes.llm_servers import FakeLLMServer, Reply
from tests.workers.conftest import WorkerProcess, process_env, running_worker, wait_for_run

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

RUN_SECONDS = 3


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeLLMServer]:
    server = FakeLLMServer("anthropic")
    yield server
    server.stop()


def providers_of(fake: FakeLLMServer) -> dict:
    return {"claude": {"api": "anthropic", "base_url": fake.base_url, "models": ["c"]}}


@pytest.fixture(scope="module")
def worker(fake, django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[WorkerProcess]:
    redis.Redis.from_url(django_settings.CELERY_BROKER_URL).flushdb()
    env = process_env(
        LLM_PROVIDERS=json.dumps(providers_of(fake)),
        LLM_TOOL_MODULES="tests.fakes.llm_tools",
        LLM_MAX_RUN_SECONDS=str(RUN_SECONDS),
    )
    log = tmp_path_factory.mktemp("llm-limits-worker") / "worker.log"
    with running_worker(
        django_db_blocker,
        "llm-limits",
        "io,cpu,control",
        log,
        env,
        ("--pool", "threads", "--concurrency", "4"),
    ) as process:
        yield process


@pytest.fixture(autouse=True)
def providers(settings, fake):
    fake.reset()
    settings.LLM_PROVIDERS = providers_of(fake)


def test_a_run_past_its_time_fails_and_its_worker_stops_the_children_in_flight(api, session, worker, fake):
    fake.responder = lambda body: Reply(
        tool_calls=[("nap", {"seconds": 60}), ("nap", {"seconds": 59})], usage=(17, 4)
    )
    payload = {
        "provider": "claude",
        "model": "c",
        "messages": [{"role": "user", "content": "Rest."}],
        "tools": ["nap"],
    }
    response = api.post(
        "/api/v1/runs", {"session": str(session.pk), "kind": "llm", "payload": payload}, format="json"
    )
    assert response.status_code == 201, response.content
    run_id = response.json()["id"]

    run = wait_for_run(run_id, {"succeeded", "failed", "cancelled", "dead"}, timeout=60)

    assert run.status == "failed" and run.error["type"] == "LlmLimitExceeded", run.error
    assert f"took over {RUN_SECONDS}s (LLM_MAX_RUN_SECONDS)" in run.error["message"]
    children = list(Run.objects.filter(parent_id=run_id))
    assert len(children) == 2
    for child in children:
        ended = wait_for_run(child.pk, {"cancelled", "succeeded", "failed"}, timeout=30)
        assert ended.status == "cancelled" and ended.started_at is not None  # stopped mid-sleep
        (asked,) = ProvenanceEntry.objects.filter(trace__run_id=child.pk, action="run.cancel_requested")
        assert asked.actor == worker.hostname and asked.data == {"parent": run_id}  # no user asked
    assert len(fake.chat_requests()) == 1
    usage = LlmUsage.objects.get(session=session, provider="claude", model="c")
    assert (usage.input_tokens, usage.output_tokens, usage.runs) == (17, 4, 1)
