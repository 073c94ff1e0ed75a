"""Two submissions under one Idempotency-Key at the same moment: both pass the lookup, both
insert, the unique key lets one win; the other answers with the winner's run (or a conflict
when it asked for something else), never a 500 and never a second run."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection

from apps.core.exceptions import Conflict
from apps.runs.models import Run, RunBatch
from apps.runs.services import submission

pytestmark = pytest.mark.django_db(transaction=True)


def _race(
    user: Any, session: Any, payloads: list[dict], monkeypatch: pytest.MonkeyPatch, *, batch: bool = False
) -> list[Any]:
    both_looked = threading.Barrier(len(payloads), timeout=10)
    prepare = submission._prepare

    def after_both_lookups(*args: Any, **kwargs: Any) -> Any:
        both_looked.wait()  # each found no run under the key before either inserts
        return prepare(*args, **kwargs)

    monkeypatch.setattr(submission, "_prepare", after_both_lookups)
    outcomes: list[Any] = [None] * len(payloads)

    def submit(index: int) -> None:
        try:
            if batch:
                request = submission.RunRequest(session_id=session.pk, kind="echo", payload=payloads[index])
                outcomes[index] = submission.run_submit_batch(
                    user=user, requests=[request], idempotency_key="k-1"
                )
            else:
                outcomes[index] = submission.run_submit(
                    user=user,
                    session_id=session.pk,
                    kind="echo",
                    payload=payloads[index],
                    idempotency_key="k-1",
                )
        except Exception as exc:  # noqa: BLE001 (the outcome under test)
            outcomes[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(len(payloads))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return outcomes


def test_the_same_request_twice_at_once_stores_one_run_and_both_get_it(user, session, sent, monkeypatch):
    outcomes = _race(user, session, [{"text": "a"}, {"text": "a"}], monkeypatch)
    assert all(isinstance(outcome, tuple) for outcome in outcomes), outcomes
    (run_a, created_a), (run_b, created_b) = outcomes
    assert run_a.pk == run_b.pk
    assert sorted([created_a, created_b]) == [False, True]
    assert Run.objects.filter(owner=user, idempotency_key="k-1").count() == 1
    assert sent == [run_a.pk]


def test_a_different_request_under_the_key_at_once_is_a_conflict(user, session, sent, monkeypatch):
    outcomes = _race(user, session, [{"text": "a"}, {"text": "b"}], monkeypatch)
    won = [outcome for outcome in outcomes if isinstance(outcome, tuple)]
    refused = [outcome for outcome in outcomes if isinstance(outcome, Conflict)]
    assert len(won) == 1 and len(refused) == 1, outcomes
    assert Run.objects.filter(owner=user, idempotency_key="k-1").count() == 1


def test_the_same_batch_twice_at_once_stores_it_once_and_both_get_it(user, session, sent, monkeypatch):
    outcomes = _race(user, session, [{"text": "a"}, {"text": "a"}], monkeypatch, batch=True)
    assert all(isinstance(outcome, tuple) for outcome in outcomes), outcomes
    (runs_a, created_a), (runs_b, created_b) = outcomes
    assert [run.pk for run in runs_a] == [run.pk for run in runs_b]
    assert sorted([created_a, created_b]) == [False, True]
    assert RunBatch.objects.filter(owner=user, idempotency_key="k-1").count() == 1
    assert Run.objects.filter(owner=user).count() == 1
