"""The claim and completion sent together (TransactionTogether): no path leaves a transaction
open on the connection, or commits a caller's work, and awkward values travel intact through
client-side binding."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction

from apps.core.bulk import transaction_together
from apps.runs.models import Run, RunStatus
from apps.runs.services import run_claim, run_complete, run_submit
from apps.traces.services import trace_verify

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="statements sent together: PostgreSQL"),
]

IDLE = 0  # psycopg.pq.TransactionStatus.IDLE


def queued_run(session, payload=None) -> Run:
    run, _ = run_submit(user=session.owner, session_id=session.pk, kind="echo", payload=payload or {"x": 1})
    Run.objects.filter(pk=run.pk).update(status=RunStatus.QUEUED)
    return run


def transaction_status() -> int:
    return connection.connection.info.transaction_status


def test_a_together_commit_whose_statements_fail_leaves_no_transaction_open(session):
    # commit() without execute() sends BEGIN ... COMMIT itself: an error in between must not
    # leave the server's transaction open (aborted) under a connection Django takes for idle
    with pytest.raises(DatabaseError), transaction_together() as together:
        together.commit([("SELECT 1/0", ())])
    left = transaction_status()
    if left != IDLE:
        connection.connection.execute("ROLLBACK")  # (so that the test's teardown can run)
    assert left == IDLE


def test_a_claim_while_django_autocommit_is_off_does_not_commit_the_callers_work(session):
    run, other = queued_run(session), queued_run(session)
    transaction.set_autocommit(False)
    try:
        Run.objects.filter(pk=other.pk).update(priority=9)  # the caller's own, not yet committed
        try:
            run_claim(run_id=run.pk, hostname="w")
        except transaction.TransactionManagementError:
            pass  # (its event's on_commit, after its COMMIT: manual transaction management)
        transaction.rollback()
    finally:
        transaction.set_autocommit(True)
    assert Run.objects.get(pk=other.pk).priority != 9  # the caller's rollback undid its write


def test_an_interrupt_between_the_claims_round_trips_rolls_it_back(session, monkeypatch):
    from apps.traces import services as traces

    run = queued_run(session)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(traces.ChainWrite, "__init__", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_claim(run_id=run.pk, hostname="w")
    assert transaction_status() == IDLE
    stored = Run.objects.get(pk=run.pk)
    assert (stored.status, stored.attempts) == (RunStatus.QUEUED, 0)
    assert list(stored.trace.provenance.values_list("action", flat=True)) == ["trace.created"]


def test_a_claim_whose_entry_fails_to_store_claims_nothing(session, monkeypatch):
    from apps.traces import services as traces

    run = queued_run(session)
    statements = traces.ChainWrite.statements
    monkeypatch.setattr(traces.ChainWrite, "statements", lambda self: [*statements(self), ("SELECT 1/0", ())])
    with pytest.raises(DatabaseError):
        run_claim(run_id=run.pk, hostname="w")
    assert transaction_status() == IDLE
    stored = Run.objects.get(pk=run.pk)
    assert (stored.status, stored.attempts, stored.trace.entry_count) == (RunStatus.QUEUED, 0, 1)
    assert stored.trace.provenance.count() == 1


def test_percent_quotes_and_backslashes_travel_intact_through_a_claim_and_completion(session):
    awkward = {"t": "%s %% %(x)s ' \" \\ \u2028 ; COMMIT; --", "n": [1.5, None]}
    run = queued_run(session, payload={"x": 1})
    hostname = "w%s%%'\\;--"
    claimed = run_claim(run_id=run.pk, hostname=hostname)
    assert claimed is not None
    assert run_complete(run=claimed, attempt=1, result=awkward)
    stored = Run.objects.get(pk=run.pk)
    assert (stored.status, stored.result, stored.worker_hostname) == (RunStatus.SUCCEEDED, awkward, hostname)
    assert set(stored.trace.provenance.exclude(action="trace.created").values_list("actor", flat=True)) == {
        hostname
    }
    assert trace_verify(trace=stored.trace).valid
    assert transaction_status() == IDLE


def test_a_stale_attempts_completion_after_a_requeue_and_reclaim_writes_nothing(session):
    from django.utils import timezone

    from apps.runs.services.reconcile import run_reconcile

    run = queued_run(session)
    first = run_claim(run_id=run.pk, hostname="a")
    Run.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timezone.timedelta(days=1))
    run_reconcile()  # the lease lapsed: back to pending under attempt 1
    Run.objects.filter(pk=run.pk).update(status=RunStatus.QUEUED)
    second = run_claim(run_id=run.pk, hostname="b")
    assert (first.attempts, second.attempts) == (1, 2)
    entries = second.trace.provenance.count()

    assert not run_complete(run=first, attempt=1, result={"stale": True})
    assert transaction_status() == IDLE
    assert second.trace.provenance.count() == entries
    assert run_complete(run=second, attempt=2, result={"x": 1})
    stored = Run.objects.get(pk=run.pk)
    assert (stored.status, stored.result, stored.worker_hostname) == (RunStatus.SUCCEEDED, {"x": 1}, "b")
    assert trace_verify(trace=stored.trace).valid


def test_a_submission_stores_its_run_trace_and_entry_in_one_round_trip(session):
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        run, created = run_submit(user=session.owner, session_id=session.pk, kind="echo", payload={"x": 3})
    writes = [q["sql"] for q in queries if "INSERT" in q["sql"]]
    assert created and len(writes) == 1 and writes[0].startswith("BEGIN;") and writes[0].endswith("COMMIT")
    stored = Run.objects.get(pk=run.pk)
    assert (stored.status, stored.payload) == (RunStatus.QUEUED, {"x": 3})
    assert trace_verify(trace=stored.trace).valid
    assert transaction_status() == IDLE


def test_a_batch_whose_last_insert_fails_stores_nothing(session, last_insert_fails):
    from apps.runs.models import RunBatch
    from apps.runs.services import RunRequest, run_submit_batch

    requests = [RunRequest(session_id=session.pk, kind="echo", payload={"i": i}) for i in range(3)]
    with pytest.raises(DatabaseError):
        run_submit_batch(user=session.owner, requests=requests)
    assert (Run.objects.count(), RunBatch.objects.count()) == (0, 0)
    assert transaction_status() == IDLE
