"""Run state changes: compare-and-set claims, fencing by attempt, the reconciler."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from apps.runs import services
from apps.runs.models import Run, RunStatus
from apps.runs.services import run_claim, run_complete, run_reconcile, run_submit
from workers.execution import run_execute

pytestmark = pytest.mark.django_db


def queued_run(session, kind="sleep", payload=None) -> Run:
    run, _ = run_submit(
        user=session.owner, session_id=session.pk, kind=kind, payload=payload or {"seconds": 1}
    )
    Run.objects.filter(pk=run.pk).update(status=RunStatus.QUEUED, queued_at=timezone.now())
    return Run.objects.get(pk=run.pk)


def age_heartbeat(run: Run, seconds: float) -> None:
    Run.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=seconds))


def actions(run: Run) -> list[str]:
    return list(run.trace.provenance.order_by("seq").values_list("action", flat=True))


def test_only_one_claim_wins(session):
    run = queued_run(session)
    first = run_claim(run_id=run.pk, hostname="a")
    second = run_claim(run_id=run.pk, hostname="b")
    assert first is not None and second is None
    assert Run.objects.get(pk=run.pk).worker_hostname == "a"


def test_a_stale_attempt_cannot_complete(session):
    run = queued_run(session)
    stale = run_claim(run_id=run.pk, hostname="a")
    Run.objects.filter(pk=run.pk).update(status=RunStatus.QUEUED)  # as the reconciler would
    fresh = run_claim(run_id=run.pk, hostname="b")
    assert fresh.attempts == 2

    assert run_complete(run=stale, attempt=1, result={"by": "a"}) is False
    assert run_complete(run=fresh, attempt=2, result={"by": "b"}) is True
    assert Run.objects.get(pk=run.pk).result == {"by": "b"}
    assert actions(run).count("run.succeeded") == 1


def test_reconciler_requeues_a_run_whose_worker_went_silent(session, sent):
    run = queued_run(session)
    run_claim(run_id=run.pk, hostname="dead")
    age_heartbeat(run, 60)

    report = run_reconcile()

    assert report.requeued == 1 and sent == [run.pk]
    run.refresh_from_db()
    assert run.status == RunStatus.QUEUED and run.worker_hostname == "" and run.attempts == 1
    assert actions(run)[-1] == "run.requeued"


def test_reconciler_leaves_a_live_run_alone(session, sent):
    run = queued_run(session)
    run_claim(run_id=run.pk, hostname="alive")
    age_heartbeat(run, 1)  # within the lease
    assert run_reconcile().requeued == 0
    assert Run.objects.get(pk=run.pk).status == RunStatus.RUNNING and sent == []


@override_settings(RUN_MAX_ATTEMPTS=2)
def test_reconciler_fails_a_run_after_its_last_attempt(session, sent):
    run = queued_run(session)
    Run.objects.filter(pk=run.pk).update(attempts=1)
    run_claim(run_id=run.pk, hostname="dead")
    age_heartbeat(run, 60)

    assert run_reconcile().failed == 1
    run.refresh_from_db()
    assert run.status == RunStatus.DEAD and run.error["type"] == "WorkerLost" and sent == []


def test_reconciler_fails_a_run_killed_at_its_time_limit(session, sent):
    run = queued_run(session)
    run_claim(run_id=run.pk, hostname="w")
    Run.objects.filter(pk=run.pk).update(started_at=timezone.now() - timedelta(hours=2))
    age_heartbeat(run, 60)

    run_reconcile()

    run.refresh_from_db()
    assert run.status == RunStatus.FAILED and run.error["type"] == "TimeLimitExceeded" and sent == []


def test_reconciler_finishes_an_orphaned_cancel(session, sent):
    run = queued_run(session)
    run_claim(run_id=run.pk, hostname="dead")
    Run.objects.filter(pk=run.pk).update(cancel_requested=True)
    age_heartbeat(run, 60)
    run_reconcile()
    assert Run.objects.get(pk=run.pk).status == RunStatus.CANCELLED and sent == []


def test_reconciler_sends_runs_whose_message_was_never_sent_or_was_lost(session, sent):
    never_sent, _ = run_submit(user=session.owner, session_id=session.pk, kind="echo", payload={})
    # the broker was down when it was published: back to pending
    Run.objects.filter(pk=never_sent.pk).update(
        status=RunStatus.PENDING, created_at=timezone.now() - timedelta(minutes=5)
    )
    lost = queued_run(session)
    Run.objects.filter(pk=lost.pk).update(queued_at=timezone.now() - timedelta(hours=1))
    fresh = queued_run(session)

    assert run_reconcile().resent == 2
    assert sorted(sent, key=str) == sorted([never_sent.pk, lost.pk], key=str)
    # the lost one was stamped again, so the next pass does not send it twice
    assert run_reconcile().resent == 0
    assert Run.objects.get(pk=fresh.pk).status == RunStatus.QUEUED


def test_cancel_twice_records_one_request(session):
    run = queued_run(session)
    run_claim(run_id=run.pk, hostname="w")
    services.run_cancel(user=session.owner, run_id=run.pk)
    services.run_cancel(user=session.owner, run_id=run.pk)
    assert actions(run).count("run.cancel_requested") == 1


@override_settings(MAX_RESULT_BYTES=100)
def test_a_result_over_the_limit_fails_the_run(session):
    run = queued_run(session, kind="echo", payload={"blob": "x" * 200})
    claimed = run_claim(run_id=run.pk, hostname="w")
    assert run_execute(run=claimed) == "failed"
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED and run.error["type"] == "ResultTooLarge" and run.result is None


@override_settings(TRACE_INLINE_RESULT_BYTES=50)
def test_large_results_stay_on_the_run_and_the_trace_keeps_their_digest(session):
    run = queued_run(session, kind="echo", payload={"blob": "x" * 100})
    assert run_execute(run=run_claim(run_id=run.pk, hostname="w")) == "succeeded"
    run.refresh_from_db()
    assert run.result == {"blob": "x" * 100}
    assert set(run.trace.outputs) == {"result_sha256", "result_bytes"}


def test_a_claim_and_a_completion_each_cost_few_round_trips_and_chain_their_entries(session):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from apps.core.bulk import can_execute_together
    from apps.traces.services import trace_verify

    run = queued_run(session, kind="echo", payload={"x": 1})
    with CaptureQueriesContext(connection) as claim:
        claimed = run_claim(run_id=run.pk, hostname="a")
    with CaptureQueriesContext(connection) as completion:
        assert run_complete(run=claimed, attempt=1, result={"x": 1}) is True
    if can_execute_together():
        # (inside the test's transaction each atomic block adds a savepoint and its release)
        # claim: [claim, lock trace], the run read, [entry, head]; was 6 statements
        assert len(claim) <= 5, [q["sql"][:60] for q in claim]
        # completion: [fenced update, lock trace], [entries, head]; was 4 statements
        assert len(completion) <= 4, [q["sql"][:60] for q in completion]
    assert actions(run)[-3:] == ["run.started", "run.succeeded", "trace.outputs"]
    verification = trace_verify(trace=Run.objects.get(pk=run.pk).trace)
    assert verification.valid and verification.entries == len(actions(run))
