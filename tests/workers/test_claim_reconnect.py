"""Back to back tasks skip the connection's health check; a connection that died in between
fails the claim, which reconnects and claims the run all the same."""

from __future__ import annotations

import psycopg
import pytest
from django.db import connection

from apps.runs.models import Run, RunStatus
from apps.runs.services import run_submit
from workers import bootstrap
from workers.runs import execute_run_task

pytestmark = pytest.mark.django_db(transaction=True)


def kill_backend_of_this_connection() -> None:
    settings = connection.settings_dict
    pid = connection.connection.info.backend_pid
    with psycopg.connect(
        host=settings["HOST"],
        port=settings["PORT"] or 5432,
        user=settings["USER"],
        password=settings["PASSWORD"],
        dbname=settings["NAME"],
        autocommit=True,
    ) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])


@pytest.mark.skipif(connection.vendor != "postgresql", reason="terminates a PostgreSQL backend")
def test_a_claim_on_a_connection_that_died_between_tasks_reconnects_and_runs(session):
    run, _ = run_submit(user=session.owner, session_id=session.pk, kind="echo", payload={"x": 1})
    Run.objects.filter(pk=run.pk).update(status=RunStatus.QUEUED)
    bootstrap._note_task_end()  # as if a task had just ended on this connection
    bootstrap._check_database_connections(sender=execute_run_task)
    assert connection.health_check_done  # no ping before the next run task
    kill_backend_of_this_connection()

    outcome = execute_run_task.apply(args=(str(run.pk),))

    assert outcome.successful(), outcome.traceback
    stored = Run.objects.get(pk=run.pk)
    assert (stored.status, stored.result, stored.attempts) == (RunStatus.SUCCEEDED, {"x": 1}, 1)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="statements sent together: PostgreSQL")
def test_a_worker_claims_and_completes_a_run_in_two_round_trips_each(session):
    from django.test.utils import CaptureQueriesContext

    from apps.runs.services import run_claim, run_complete
    from apps.traces.services import trace_verify

    run, _ = run_submit(user=session.owner, session_id=session.pk, kind="echo", payload={"x": 2})
    Run.objects.filter(pk=run.pk).update(status=RunStatus.QUEUED)
    assert not connection.in_atomic_block  # as in a worker: no transaction of Django's around
    with CaptureQueriesContext(connection) as claim:
        claimed = run_claim(run_id=run.pk, hostname="w")
    with CaptureQueriesContext(connection) as completion:
        assert run_complete(run=claimed, attempt=1, result={"x": 2})
    assert (len(claim), len(completion)) == (2, 2), [q["sql"][:40] for q in [*claim, *completion]]
    stored = Run.objects.get(pk=run.pk)
    assert (stored.status, stored.result) == (RunStatus.SUCCEEDED, {"x": 2})
    actions = list(stored.trace.provenance.order_by("seq").values_list("action", flat=True))
    assert actions == ["trace.created", "run.started", "run.succeeded", "trace.outputs"]
    assert trace_verify(trace=stored.trace).valid
    # a lost claim leaves nothing behind, its transaction closed
    assert run_claim(run_id=run.pk, hostname="other") is None
    assert not connection.in_atomic_block and connection.connection.info.transaction_status == 0
