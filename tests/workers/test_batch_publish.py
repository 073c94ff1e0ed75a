"""A batch's messages go out in one pipelined publish (kombu's publish batch on Redis); the
short runs of a kind that shares messages go RUN_MESSAGE_MAX_RUNS to a message, which a worker
claims, executes and completes together."""

from __future__ import annotations

import pytest
from kombu.transport.redis import PublishBatch

from apps.core.broker import broker_ready_counts
from apps.runs.models import Run, RunStatus
from apps.runs.services import RunRequest, run_submit_batch
from apps.traces.services import trace_verify
from tests.workers.conftest import wait_for_run

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

RUNS = 30


def test_a_batch_is_published_in_one_flush_short_runs_share_messages_and_every_run_succeeds(
    session, start_worker, monkeypatch, settings
):
    settings.RUN_MESSAGE_MAX_RUNS = 25
    flushes = []
    original = PublishBatch.flush

    def counting_flush(self: PublishBatch) -> None:
        flushes.append(self._buffered)
        original(self)

    monkeypatch.setattr(PublishBatch, "flush", counting_flush)
    # (the start_worker fixture has emptied the broker; no worker runs yet)
    requests = [RunRequest(session_id=session.pk, kind="echo", payload={"i": i}) for i in range(RUNS)]
    runs, created = run_submit_batch(user=session.owner, requests=requests)

    assert created and Run.objects.filter(batch=runs[0].batch, status=RunStatus.QUEUED).count() == RUNS
    # one round trip: every message in one pipeline
    assert len([size for size in flushes if size]) == 1
    # 30 echo runs: one message of 25 and one of 5, each run knowing its message's id
    assert broker_ready_counts(["cpu"]) == {"cpu": 2}
    assert sorted(len([r for r in runs if r.task_id == t]) for t in {r.task_id for r in runs}) == [5, 25]

    start_worker("batch-worker")
    for run in runs:
        done = wait_for_run(run.pk, {"succeeded", "failed"}, timeout=60)
        assert done.status == "succeeded" and done.result == {"i": run.payload["i"]}
        assert done.attempts == 1 and done.duration_seconds < 5
        verification = trace_verify(trace=done.trace)
        actions = list(done.trace.provenance.order_by("seq").values_list("action", flat=True))
        assert verification.valid and actions == [
            "trace.created",
            "run.started",
            "run.succeeded",
            "trace.outputs",
        ]


def test_with_one_run_a_message_each_run_is_its_own_message(session, start_worker, settings):
    settings.RUN_MESSAGE_MAX_RUNS = 1
    requests = [RunRequest(session_id=session.pk, kind="echo", payload={"i": i}) for i in range(5)]
    runs, _ = run_submit_batch(user=session.owner, requests=requests)
    assert broker_ready_counts(["cpu"]) == {"cpu": 5}
    assert len({run.task_id for run in runs}) == 5
