"""The pipeline's hooks: input checks decide pending / held / blocked before anything is
sent; output checks withhold a result; only a release clears either; the reconciler never
sends a run that is not cleared to run."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.runs import pipeline
from apps.runs.models import Run, RunStatus
from apps.runs.pipeline import Check, CheckResult, Decision
from apps.runs.services import run_claim, run_reconcile, run_release
from workers.execution import run_execute

pytestmark = pytest.mark.django_db

RUNS = "/api/v1/runs"


def actions(run: Run) -> list[str]:
    return list(run.trace.provenance.order_by("seq").values_list("action", flat=True))


@pytest.fixture
def input_check():
    recorded = []

    def check(subject: pipeline.InputSubject) -> CheckResult | None:
        word = subject.payload.get("verdict")
        if word is None:
            return None
        finding = {"flag": "test", "severity": 5, "reason": f"asked to {word}"}
        return CheckResult(Decision[word.upper()], reason=f"payload says {word}", findings=(finding,))

    def record(run: Run, result: CheckResult) -> None:
        # inside the storing transaction: the run and its trace exist already
        recorded.append((run.pk, run.trace.pk, result.decision))

    pipeline.register_input_check(Check(name="test-input", check=check, record=record))
    yield recorded
    pipeline.unregister_check("test-input")


@pytest.fixture
def output_check():
    def check(subject: pipeline.OutputSubject) -> CheckResult | None:
        if subject.result.get("secret"):
            return CheckResult(Decision.HOLD, reason="the result mentions a secret")
        return None

    pipeline.register_output_check(Check(name="test-output", check=check))
    yield
    pipeline.unregister_check("test-output")


def submit(api, session, payload):
    response = api.post(RUNS, {"session": str(session.pk), "kind": "echo", "payload": payload}, format="json")
    assert response.status_code == 201, response.content
    return Run.objects.select_related("trace").get(pk=response.json()["id"])


@pytest.mark.parametrize("verdict,status", [("hold", RunStatus.HELD), ("block", RunStatus.BLOCKED)])
def test_an_input_check_holds_or_blocks_before_anything_is_sent(
    api, session, sent, input_check, verdict, status, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        run = submit(api, session, {"verdict": verdict})
    assert run.status == status and run.hold_reason == f"payload says {verdict}" and sent == []
    assert actions(run) == ["trace.created", "run.checked"]
    checked = run.trace.provenance.get(action="run.checked").data
    assert checked["decision"] == status.value
    assert checked["checks"][0]["findings"][0]["reason"] == f"asked to {verdict}"
    assert input_check == [(run.pk, run.trace.pk, Decision[verdict.upper()])]

    # the reconciler leaves it alone however old it is
    Run.objects.filter(pk=run.pk).update(created_at=timezone.now() - timedelta(hours=1))
    assert run_reconcile().resent == 0 and sent == []

    # a release clears it: pending, then sent on commit
    with django_capture_on_commit_callbacks(execute=True):
        assert run_release(run=run, actor="reviewer", note="looked fine") is True
    run.refresh_from_db()
    assert run.status == RunStatus.QUEUED and sent == [run.pk] and actions(run)[-1] == "run.released"


def test_allowed_inputs_go_straight_to_the_queue(
    api, session, sent, input_check, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        run = submit(api, session, {"verdict": "allow"})
    run.refresh_from_db()
    assert run.status == RunStatus.QUEUED and sent == [run.pk]
    with django_capture_on_commit_callbacks(execute=True):
        unchecked = submit(api, session, {"plain": True})
    assert "run.checked" not in actions(unchecked)  # a check that returns None leaves no entry


def test_a_batch_with_one_blocked_run_stores_it_blocked_and_sends_the_others(
    api, session, sent, input_check, django_capture_on_commit_callbacks
):
    runs = [
        {"session": str(session.pk), "kind": "echo", "payload": p} for p in ({}, {"verdict": "block"}, {})
    ]
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(f"{RUNS}/batch", {"runs": runs}, format="json")
    statuses = [row["status"] for row in response.json()["runs"]]
    assert statuses[1] == "blocked" and len(sent) == 2


@pytest.mark.django_db(transaction=True)
def test_an_output_check_withholds_the_result_until_released(api, session, sent, output_check):
    run = submit(api, session, {"secret": "hunter2"})
    Run.objects.filter(pk=run.pk).update(status=RunStatus.QUEUED)

    assert run_execute(run=run_claim(run_id=run.pk, hostname="w")) == "succeeded"

    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED and run.result_withheld and run.result == {"secret": "hunter2"}
    shown = api.get(f"{RUNS}/{run.pk}").json()
    assert shown["result"] is None and shown["result_withheld"] is True
    assert shown["hold_reason"] == "the result mentions a secret"
    trace = api.get(f"/api/v1/traces/{run.trace.pk}").json()
    assert "hunter2" not in str(trace["outputs"]) and "result_sha256" in trace["outputs"]
    assert "run.output_checked" in actions(run)

    assert run_release(run=run, actor="reviewer") is True
    assert api.get(f"{RUNS}/{run.pk}").json()["result"] == {"secret": "hunter2"}


def test_release_does_nothing_to_a_run_that_is_neither_held_nor_withheld(api, session, sent):
    run = submit(api, session, {})
    assert run_release(run=run, actor="reviewer") is False
