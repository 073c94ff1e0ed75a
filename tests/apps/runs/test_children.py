"""Child runs (an `llm` run's tool calls): same owner and session as their parent, and
stopped when it ends other than by succeeding (cancelled, failed for good, dead), by whoever
ends it; left going while it waits for a retry, for its next attempt to take back."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.core.exceptions import ValidationFailed
from apps.runs.models import Run, RunStatus
from apps.runs.services import run_cancel, run_claim, run_fail, run_mark_cancelled, run_reconcile, run_submit
from apps.sessions.services import session_create

pytestmark = pytest.mark.django_db


def sleep_run(user, session, parent=None) -> Run:
    run, _ = run_submit(user=user, session_id=session.pk, kind="sleep", payload={"seconds": 5}, parent=parent)
    return run


def test_cancelling_a_parent_cancels_its_waiting_and_running_descendants(user, session):
    parent = sleep_run(user, session)
    child = sleep_run(user, session, parent=parent)
    grandchild = sleep_run(user, session, parent=child)
    done = sleep_run(user, session, parent=parent)
    Run.objects.filter(pk=child.pk).update(status="running")
    Run.objects.filter(pk=done.pk).update(status="succeeded")

    run_cancel(user=user, run_id=parent.pk)

    statuses = dict(Run.objects.values_list("pk", "status"))
    assert statuses[parent.pk] == "cancelled" and statuses[grandchild.pk] == "cancelled"
    # a running child is asked to stop (at its next progress check); an ended one is left alone
    assert Run.objects.get(pk=child.pk).cancel_requested and statuses[child.pk] == "running"
    assert statuses[done.pk] == "succeeded"


def test_a_child_belongs_to_its_parents_owner_and_session(user, other_user, session):
    parent = sleep_run(user, session)
    elsewhere = session_create(owner=user, name="elsewhere")
    with pytest.raises(ValidationFailed) as refused:
        sleep_run(user, elsewhere, parent=parent)
    assert "parent" in refused.value.fields
    theirs = session_create(owner=other_user, name="theirs")
    with pytest.raises(ValidationFailed):
        sleep_run(other_user, theirs, parent=parent)


def running_parent_with_children(user, session) -> tuple[Run, Run, Run]:
    parent = sleep_run(user, session)
    Run.objects.filter(pk=parent.pk).update(status=RunStatus.QUEUED)
    parent = run_claim(run_id=parent.pk, hostname="parent-worker")
    running, waiting = sleep_run(user, session, parent=parent), sleep_run(user, session, parent=parent)
    Run.objects.filter(pk=running.pk).update(status=RunStatus.RUNNING)
    return parent, running, waiting


@pytest.mark.parametrize(
    "end, status",
    [
        (lambda run: run_fail(run=run, attempt=1, error_type="ValueError", message="x"), "failed"),
        (lambda run: run_fail(run=run, attempt=1, error_type="TimeoutError", message="x"), "pending"),
        (lambda run: run_mark_cancelled(run=run, attempt=1), "cancelled"),
    ],
)
def test_a_parent_ending_on_its_worker_stops_its_children_unless_it_will_run_again(
    user, session, sent, end, status
):
    parent, running, waiting = running_parent_with_children(user, session)

    end(parent)

    assert Run.objects.get(pk=parent.pk).status == status
    running, waiting = Run.objects.get(pk=running.pk), Run.objects.get(pk=waiting.pk)
    if status == "pending":  # a retry: its next attempt finds the same children again
        assert not running.cancel_requested and not waiting.is_final
    else:
        assert running.cancel_requested and waiting.status == "cancelled"
        actors = set(
            running.trace.provenance.filter(action="run.cancel_requested").values_list("actor", flat=True)
        )
        assert actors == {"parent-worker"}


def test_the_reconciler_stops_the_children_of_a_parent_it_fails(user, session, sent):
    parent, running, waiting = running_parent_with_children(user, session)
    Run.objects.filter(pk=parent.pk).update(
        started_at=timezone.now() - timedelta(hours=2), heartbeat_at=timezone.now() - timedelta(minutes=5)
    )

    run_reconcile()

    assert Run.objects.get(pk=parent.pk).status == "failed"
    assert Run.objects.get(pk=running.pk).cancel_requested
    assert Run.objects.get(pk=waiting.pk).status == "cancelled"
