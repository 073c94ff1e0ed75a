"""Governance in the run pipeline, through the API: blocked inputs, withheld outputs,
review decisions, the merge gate, all audited."""

from __future__ import annotations

import pytest

from apps.audit.models import AuditEntry
from apps.audit.services import audit_verify
from apps.governance.models import Flag, TraceReview
from apps.runs.models import Run, RunStatus
from apps.runs.services import run_claim
from workers.execution import run_execute

pytestmark = pytest.mark.django_db

RUNS = "/api/v1/runs"


def submit(api, session, payload, kind="echo"):
    response = api.post(RUNS, {"session": str(session.pk), "kind": kind, "payload": payload}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def audit_actions() -> list[str]:
    return list(AuditEntry.objects.order_by("seq").values_list("action", flat=True))


def test_a_blocked_input_is_never_sent_and_waits_in_the_queue(
    api, reviewer_api, strict_session, sent, django_capture_on_commit_callbacks
):
    prompt = "please [[jailbreak:9]] now"
    with django_capture_on_commit_callbacks(execute=True):
        body = submit(api, strict_session, {"prompt": prompt})
    assert body["status"] == "blocked" and sent == []
    assert "jailbreak" in body["hold_reason"] and "block_severity" in body["hold_reason"]

    flags = api.get(f"/api/v1/traces/{body['trace']}/flags").json()["results"]
    assert [(f["flag"], f["severity"], f["state"]) for f in flags] == [("jailbreak", 9, "open")]
    span = flags[0]["span"]
    assert span["field"] == "payload.prompt" and prompt[span["start"] : span["end"]] == "[[jailbreak:9]]"
    assert flags[0]["policy_version"] == "strict@v1"

    queue = reviewer_api.get("/api/v1/governance/queue").json()["results"]
    assert [(r["trace"], r["state"], r["run_status"]) for r in queue] == [
        (body["trace"], "quarantined", "blocked")
    ]
    assert audit_actions() == ["flag.raised", "run.blocked", "trace.quarantined"]

    # released with a note: the run is queued (and executes); the decision is audited
    with django_capture_on_commit_callbacks(execute=True):
        released = reviewer_api.post(
            f"/api/v1/governance/traces/{body['trace']}/release", {"note": "a test prompt"}, format="json"
        )
    assert released.status_code == 200 and released.json()["state"] == "released"
    assert Run.objects.get(pk=body["id"]).status == RunStatus.QUEUED and sent == [Run.objects.get().pk]
    assert Flag.objects.get().state == "released"
    assert audit_actions()[-1] == "trace.released" and audit_verify().valid


def test_reject_ends_the_run_failed_with_the_reviewers_reason(api, reviewer_api, strict_session, sent):
    body = submit(api, strict_session, {"prompt": "[[malicious:6]]"})
    assert body["status"] == "blocked"
    rejected = reviewer_api.post(
        f"/api/v1/governance/traces/{body['trace']}/reject", {"note": "no"}, format="json"
    )
    assert rejected.status_code == 200
    run = Run.objects.get(pk=body["id"])
    assert run.status == RunStatus.FAILED and run.error == {
        "type": "Rejected",
        "message": "rejected by review: no",
    }
    assert TraceReview.objects.get().state == "rejected" and sent == []


def test_a_decision_needs_a_note_and_a_reviewer_who_is_not_the_submitter(
    api, reviewer, reviewer_api, strict_session, sent
):
    body = submit(api, strict_session, {"prompt": "[[jailbreak:9]]"})
    url = f"/api/v1/governance/traces/{body['trace']}/release"
    assert reviewer_api.post(url, {"note": ""}, format="json").status_code == 400
    assert api.post(url, {"note": "mine"}, format="json").status_code == 403  # a submitter
    # a reviewer's own run
    from apps.sessions.services import session_create
    from tests.conftest import client_for

    own = submit(
        client_for(reviewer),
        session_create(owner=reviewer, name="r", policy="strict"),
        {"p": "[[jailbreak:9]]"},
    )
    denied = reviewer_api.post(
        f"/api/v1/governance/traces/{own['trace']}/release", {"note": "ok"}, format="json"
    )
    assert denied.status_code == 403 and "own runs" in denied.json()["error"]["message"]


def test_allowed_inputs_with_low_findings_run_and_wait_for_review_before_merge(
    api, reviewer_api, strict_session, sent
):
    body = submit(api, strict_session, {"prompt": "[[unverified:2]]"})
    assert body["status"] in ("pending", "queued")  # strict: human review, but not blocked
    assert TraceReview.objects.get().state == "pending"


@pytest.mark.django_db(transaction=True)
def test_a_quarantined_output_is_withheld_until_released_and_the_merge_gate_lists_every_reason(
    api, reviewer_api, strict_session, sent
):
    body = submit(api, strict_session, {"text": "the answer is [[high_risk:6]]"})
    assert body["status"] in ("pending", "queued")
    # strict scans inputs too: severity 6 quarantines the trace, the run is not blocked (block from 8)
    Run.objects.filter(pk=body["id"]).update(status=RunStatus.QUEUED)
    assert run_execute(run=run_claim(run_id=body["id"], hostname="w")) == "succeeded"

    shown = api.get(f"{RUNS}/{body['id']}").json()
    assert shown["status"] == "succeeded" and shown["result"] is None and shown["result_withheld"]
    assert "high_risk" in shown["hold_reason"]
    assert {f["source"] for f in api.get(f"/api/v1/traces/{body['trace']}/flags").json()["results"]} == {
        "input",
        "output",
    }

    merge = api.post(f"/api/v1/traces/{body['trace']}/merge")
    assert merge.status_code == 409
    reasons = merge.json()["error"]["fields"]["reasons"]
    assert any("quarantined" in r for r in reasons) and any("withheld" in r for r in reasons)
    assert any("merge_max_severity" in r for r in reasons)
    assert AuditEntry.objects.filter(action="merge.blocked").count() == 1

    reviewer_api.post(f"/api/v1/governance/traces/{body['trace']}/release", {"note": "fine"}, format="json")
    assert api.get(f"{RUNS}/{body['id']}").json()["result"] == {"text": "the answer is [[high_risk:6]]"}
    merged = api.post(f"/api/v1/traces/{body['trace']}/merge")
    assert merged.status_code == 200 and merged.json()["merged"] is True
    # a merged trace is read-only
    refused = api.post(f"/api/v1/traces/{body['trace']}/provenance", {"action": "note"}, format="json")
    assert refused.status_code == 409
    assert audit_verify().valid and "trace.merged" in audit_actions()


def test_code_is_scanned_as_code(api, strict_session, sent):
    from apps.governance.scanning import scan_value

    findings = scan_value(
        {"code": "import os\nos.system('x')"}, path="payload", source="input", kind="python"
    )
    assert [(f["flag"], f["span"]["field"]) for f in findings] == [("unsafe", "payload.code")]
    assert scan_value({"code": "os.system"}, path="payload", source="input", kind="echo") == []


def test_a_workers_duration_history_is_read_once_per_interval(
    api, session, sent, settings, django_assert_num_queries
):
    from apps.governance import checks

    settings.GOVERNANCE_METRIC_HISTORY_SECONDS = 60
    checks._histories.clear()
    run_id = submit(api, session, {"a": 1})["id"]
    run = Run.objects.get(pk=run_id)
    Run.objects.filter(pk=run_id).update(status=RunStatus.SUCCEEDED, duration_seconds=0.5)

    with django_assert_num_queries(1):
        first = checks._duration_history(run)
    with django_assert_num_queries(0):
        again = checks._duration_history(run)
    assert first == again == []  # the run itself is left out of its own history

    settings.GOVERNANCE_METRIC_HISTORY_SECONDS = 0
    other = Run.objects.get(pk=submit(api, session, {"a": 2})["id"])
    assert checks._duration_history(other) == [0.5]


def test_a_run_shorter_than_the_duration_minimum_is_not_judged_on_its_duration(api, session, sent, settings):
    from datetime import timedelta

    from django.utils import timezone

    from apps.governance import checks
    from apps.runs.pipeline import OutputSubject

    run = Run.objects.select_related("session__policy__active_version").get(
        pk=submit(api, session, {"a": 1})["id"]
    )
    run.started_at = timezone.now() - timedelta(seconds=1500)  # the test checker flags > 1000 s

    settings.GOVERNANCE_DURATION_MIN_SECONDS = 1.0
    flagged = checks.check_outputs(OutputSubject(run=run, result={}))
    assert [f["flag"] for f in flagged.findings] == ["anomaly"]

    settings.GOVERNANCE_DURATION_MIN_SECONDS = 2000.0
    assert checks.check_outputs(OutputSubject(run=run, result={})) is None
