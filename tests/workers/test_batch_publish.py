"""A batch's messages go out in one pipelined publish (kombu's publish batch on Redis), each
run's own message, which a worker consumes like any other."""

from __future__ import annotations

import pytest
from kombu.transport.redis import PublishBatch

from apps.core.broker import broker_ready_counts
from apps.runs.models import Run, RunStatus
from apps.runs.services import RunRequest, run_submit_batch
from tests.workers.conftest import wait_for_run

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

RUNS = 30


def test_a_batch_is_published_one_message_a_run_and_every_run_succeeds(session, start_worker, monkeypatch):
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
    # one round trip: every run's message (and its task-sent event) in one pipeline
    assert len([size for size in flushes if size]) == 1
    assert broker_ready_counts(["cpu"]) == {"cpu": RUNS}

    start_worker("batch-worker")
    for run in runs:
        done = wait_for_run(run.pk, {"succeeded", "failed"}, timeout=60)
        assert done.status == "succeeded" and done.result == {"i": run.payload["i"]}
