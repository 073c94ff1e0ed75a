"""The run task as Celery sees it: a failed run is a failed task (Flower shows it so)."""

from __future__ import annotations

import pytest

from apps.runs.models import Run, RunStatus
from apps.runs.services import run_submit
from workers.runs import RunFailed, execute_run_task

pytestmark = pytest.mark.django_db(transaction=True)


def queued(session, kind, payload):
    run, _ = run_submit(user=session.owner, session_id=session.pk, kind=kind, payload=payload)
    Run.objects.filter(pk=run.pk).update(status=RunStatus.QUEUED)
    return run


def test_a_failed_run_fails_its_task(session, settings):
    settings.MAX_RESULT_BYTES = 10
    run = queued(session, "echo", {"too": "large for ten bytes"})
    outcome = execute_run_task.apply(args=(str(run.pk),))
    assert outcome.state == "FAILURE" and isinstance(outcome.result, RunFailed)
    assert "ResultTooLarge" in str(outcome.result)
    assert Run.objects.get(pk=run.pk).status == RunStatus.FAILED


def test_a_succeeded_run_succeeds_and_a_redelivery_is_skipped(session):
    run = queued(session, "echo", {"x": 1})
    assert execute_run_task.apply(args=(str(run.pk),)).get() == "succeeded"
    assert execute_run_task.apply(args=(str(run.pk),)).get() == "skipped"
