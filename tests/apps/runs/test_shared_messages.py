"""Short runs of a batch sent several to a message: claimed together, completed together,
every guarantee of a single run kept (compare-and-set claim, fencing, provenance, cancel,
lost-message repair)."""

from __future__ import annotations

import pytest
from django.utils import timezone

from apps.runs.models import Run, RunStatus
from apps.runs.services import RunRequest, run_cancel, run_claim, run_reconcile, run_submit_batch
from apps.runs.services.lifecycle import (
    completion_prepare,
    run_claim_many,
    run_complete_many,
    run_heartbeat_many,
)
from apps.traces.services import trace_verify
from workers.execution import _WaitingRuns, run_execute_many

pytestmark = pytest.mark.django_db


def batch(session, n: int, kind: str = "echo", payload=None) -> list[Run]:
    requests = [RunRequest(session_id=session.pk, kind=kind, payload=payload or {"i": i}) for i in range(n)]
    runs, _ = run_submit_batch(user=session.owner, requests=requests)
    return runs


def actions(run: Run) -> list[str]:
    return list(run.trace.provenance.order_by("seq").values_list("action", flat=True))


def test_a_batch_of_short_runs_shares_messages_of_at_most_the_configured_size(
    session, sent, settings, django_capture_on_commit_callbacks
):
    settings.RUN_MESSAGE_MAX_RUNS = 4
    with django_capture_on_commit_callbacks(execute=True):
        runs = batch(session, 10)
    sizes = sorted(sum(r.task_id == task_id for r in runs) for task_id in {r.task_id for r in runs})
    assert sizes == [2, 4, 4]
    assert len(sent) == 10  # every run went out, in three messages
    stored = dict(Run.objects.values_list("pk", "task_id"))
    assert all(stored[run.pk] == run.task_id for run in runs)


def test_runs_of_a_kind_that_computes_for_long_keep_a_message_each(session, sent, settings):
    settings.RUN_MESSAGE_MAX_RUNS = 25
    runs = batch(session, 5, kind="sleep", payload={"seconds": 0.01})
    assert len({run.task_id for run in runs}) == 5


def test_claim_many_wins_only_queued_uncancelled_runs_and_chains_each_start(session, sent):
    a, b, c, d = batch(session, 4)
    assert run_claim(run_id=b.pk, hostname="other") is not None  # taken by another worker
    Run.objects.filter(pk=c.pk).update(cancel_requested=True)

    claimed = run_claim_many(run_ids=[str(d.pk), str(a.pk), str(b.pk), str(c.pk)], hostname="w1")

    assert [run.pk for run in claimed] == [d.pk, a.pk]  # the order asked, the winners only
    assert all(run.status == RunStatus.RUNNING and run.attempts == 1 for run in claimed)
    assert Run.objects.get(pk=b.pk).worker_hostname == "other"
    assert Run.objects.get(pk=c.pk).status == RunStatus.QUEUED
    assert actions(a) == ["trace.created", "run.started"] and trace_verify(trace=a.trace).valid
    assert run_claim_many(run_ids=[str(a.pk), str(d.pk)], hostname="w2") == []  # never twice


def test_complete_many_is_fenced_by_each_runs_attempt(session, sent):
    a, b = batch(session, 2)
    claimed = run_claim_many(run_ids=[str(a.pk), str(b.pk)], hostname="w1")
    completions = [
        completion_prepare(run=run, attempt=run.attempts, result={"n": run.pk.hex}) for run in claimed
    ]
    # b was handed to another worker meanwhile (the reconciler, a second delivery)
    Run.objects.filter(pk=b.pk).update(status=RunStatus.QUEUED)
    retaken = run_claim(run_id=b.pk, hostname="w2")
    assert retaken.attempts == 2

    assert run_complete_many(completions=completions) == [True, False]

    done, other = Run.objects.get(pk=a.pk), Run.objects.get(pk=b.pk)
    assert done.status == RunStatus.SUCCEEDED and done.result == {"n": a.pk.hex} and done.progress == 1.0
    assert other.status == RunStatus.RUNNING and other.result is None and other.worker_hostname == "w2"
    assert actions(a) == ["trace.created", "run.started", "run.succeeded", "trace.outputs"]
    assert "run.succeeded" not in actions(b)
    a.trace.refresh_from_db()
    assert trace_verify(trace=a.trace).valid and a.trace.outputs == {"result": {"n": a.pk.hex}}


def test_heartbeat_many_keeps_held_runs_and_drops_cancelled_and_lost_ones(session, sent):
    a, b, c = batch(session, 3)
    claimed = run_claim_many(run_ids=[str(a.pk), str(b.pk), str(c.pk)], hostname="w1")
    old = timezone.now() - timezone.timedelta(seconds=60)
    Run.objects.update(heartbeat_at=old)
    Run.objects.filter(pk=b.pk).update(cancel_requested=True)
    Run.objects.filter(pk=c.pk).update(attempts=5)  # lost to another attempt

    kept = run_heartbeat_many(runs=[(run, run.attempts) for run in claimed])

    assert kept == {a.pk}
    assert Run.objects.get(pk=a.pk).heartbeat_at > old
    assert Run.objects.get(pk=b.pk).heartbeat_at == old


def test_executing_a_shared_message_runs_each_and_its_duration_is_its_own(session, sent):
    runs = batch(session, 3)
    claimed = run_claim_many(run_ids=[str(run.pk) for run in runs], hostname="w1")
    statuses = run_execute_many(runs=claimed)
    assert set(statuses.values()) == {"succeeded"}
    stored = {run.pk: run for run in Run.objects.filter(pk__in=[r.pk for r in runs])}
    in_turn = [stored[run.pk] for run in runs]
    for run in in_turn:
        assert run.result == {"i": run.payload["i"]} and run.duration_seconds < 1.0
        assert run.started_at is not None and run.started_at <= run.finished_at
    for before, after in zip(in_turn, in_turn[1:], strict=False):
        # each started when its turn came, not when the message was claimed
        assert after.started_at >= before.finished_at


def test_the_lease_round_of_waiting_runs_drops_the_cancelled_and_the_lost(session, sent):
    a, b, c = batch(session, 3)
    claimed = run_claim_many(run_ids=[str(a.pk), str(b.pk), str(c.pk)], hostname="w1")
    waiting = _WaitingRuns(claimed)
    assert waiting.take(claimed[0])  # a's turn: it is no longer waiting
    Run.objects.filter(pk=b.pk).update(cancel_requested=True)
    Run.objects.filter(pk=a.pk).update(cancel_requested=True)  # a is executing: its own context's

    waiting.beat()

    assert waiting.take(claimed[2]) and not waiting.take(claimed[1])


def test_a_waiting_run_dropped_before_its_turn_is_cancelled_not_executed(session, sent, monkeypatch):
    a, b = batch(session, 2)
    claimed = run_claim_many(run_ids=[str(a.pk), str(b.pk)], hostname="w1")
    Run.objects.filter(pk=b.pk).update(cancel_requested=True)
    take = _WaitingRuns.take
    monkeypatch.setattr(_WaitingRuns, "take", lambda self, run: take(self, run) and run.pk != b.pk)
    statuses = run_execute_many(runs=claimed)
    assert statuses == {a.pk: "succeeded", b.pk: "cancelled"}
    cancelled = Run.objects.get(pk=b.pk)
    assert cancelled.status == RunStatus.CANCELLED and cancelled.result is None


def test_a_claimed_run_that_never_started_is_requeued_not_failed_for_time(session, sent, settings):
    settings.RUN_LEASE_SECONDS = 30
    (a,) = batch(session, 1)
    (claimed,) = run_claim_many(run_ids=[str(a.pk)], hostname="dead")
    assert Run.objects.get(pk=a.pk).started_at is None  # waiting its turn: not started
    long_ago = timezone.now() - timezone.timedelta(seconds=3600)  # past echo's 60 s limit
    Run.objects.filter(pk=a.pk).update(heartbeat_at=long_ago)

    assert run_reconcile().requeued == 1
    assert Run.objects.get(pk=a.pk).status == RunStatus.QUEUED


def test_one_failing_result_does_not_lose_the_others(session, sent, monkeypatch):
    runs = batch(session, 3)
    claimed = run_claim_many(run_ids=[str(run.pk) for run in runs], hostname="w1")
    claimed[1].payload = {"not json": {1, 2}}  # echo returns it: not storable
    statuses = run_execute_many(runs=claimed)
    assert [statuses[run.pk] for run in runs] == ["succeeded", "failed", "succeeded"]
    assert Run.objects.get(pk=runs[1].pk).error["type"] == "TypeError"


def test_cancelling_one_run_does_not_revoke_the_message_the_others_share(session, sent, monkeypatch):
    revoked = []
    monkeypatch.setattr("apps.runs.services.lifecycle._revoke", revoked.append)
    a, b = batch(session, 2)
    run_cancel(user=session.owner, run_id=a.pk)
    assert revoked == []  # b still needs the message
    run_cancel(user=session.owner, run_id=b.pk)
    assert revoked == [b.task_id]  # the last one waiting: nothing left to deliver


def test_the_lost_message_check_counts_messages_not_runs(session, sent, monkeypatch, settings):
    settings.RUN_MESSAGE_MAX_RUNS = 25
    settings.RUN_LOST_MESSAGE_GRACE_SECONDS = 0
    runs = batch(session, 10)  # one message
    sent.clear()
    monkeypatch.setattr("apps.runs.services.reconcile.broker_ready_counts", lambda queues: {"cpu": 1})
    assert run_reconcile().resent == 0 and sent == []

    monkeypatch.setattr("apps.runs.services.reconcile.broker_ready_counts", lambda queues: {"cpu": 0})
    assert run_reconcile().resent == 10
    task_ids = set(Run.objects.values_list("task_id", flat=True))
    assert len(task_ids) == 10 and runs[0].task_id not in task_ids  # each its own message now


def test_a_shared_message_says_its_runs_in_a_plain_repr_within_celerys_limit(
    session, monkeypatch, settings, django_capture_on_commit_callbacks
):
    """The message is Celery's own (as_task_v2 runs); only the transport's send is caught."""
    from celery import current_app

    settings.RUN_MESSAGE_MAX_RUNS = 40
    headers = []

    def caught(producer, name, message, **options):
        headers.append(message.headers)

    monkeypatch.setattr(current_app.amqp, "send_task_message", caught)
    with django_capture_on_commit_callbacks(execute=True):
        runs = batch(session, 41)
    first, second = headers
    assert first["argsrepr"].startswith(repr(([str(run.pk) for run in runs[:3]],))[:-3])
    assert len(first["argsrepr"]) == 1024 and first["argsrepr"].endswith("...")
    assert second["argsrepr"] == repr((str(runs[40].pk),)) and second["kwargsrepr"] == "{}"  # its own message
