"""Child runs (an `llm` run's tool calls): same owner and session as their parent, and
cancelled with it."""

from __future__ import annotations

import pytest

from apps.core.exceptions import ValidationFailed
from apps.runs.models import Run
from apps.runs.services import run_cancel, run_submit
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
