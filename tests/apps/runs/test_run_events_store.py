"""Run events (an `llm` run's partial output) are stored per run, newest kept, owner-scoped."""

from __future__ import annotations

import pytest

from apps.runs.models import RunEvent
from apps.runs.selectors import run_events_for_user
from apps.runs.services import run_event_append, run_submit

pytestmark = pytest.mark.django_db


def test_a_run_keeps_about_its_newest_events(user, session, settings):
    settings.RUN_EVENTS_MAX_PER_RUN = 5
    run, _ = run_submit(user=user, session_id=session.pk, kind="sleep", payload={"seconds": 1})
    for index in range(200):
        run_event_append(run=run, attempt=1, type="output", data={"text": str(index)})
    kept = list(RunEvent.objects.filter(run=run).values_list("data__text", flat=True))
    # trimmed every 50th insert: never more than the bound plus one trim period
    assert 5 <= len(kept) < 5 + 50 and kept[-1] == "199"
    assert kept == [str(i) for i in range(200 - len(kept), 200)]


def test_events_are_read_after_an_id_and_only_by_the_owner(user, other_user, session):
    run, _ = run_submit(user=user, session_id=session.pk, kind="sleep", payload={"seconds": 1})
    first = run_event_append(run=run, attempt=1, type="output", data={"text": "a"})
    run_event_append(run=run, attempt=1, type="output", data={"text": "b"})
    assert [e.data["text"] for e in run_events_for_user(user=user, run_id=run.pk, after=first.pk)] == ["b"]
    assert run_events_for_user(user=other_user, run_id=run.pk) is None
