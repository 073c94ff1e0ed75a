"""Flags by people, the pre-submit scan, stats, the queue, the audit log, and every
(role, action) pair that must be refused."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection

from apps.audit.models import AuditEntry
from apps.governance.models import Flag
from apps.sessions.services import session_create
from apps.traces.services import trace_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def trace(user, session):
    return trace_create(user=user, session_id=session.pk, inputs={"x": 1})


@pytest.fixture
def foreign_trace(other_user):
    session = session_create(owner=other_user, name="theirs")
    return trace_create(user=other_user, session_id=session.pk)


def flag(client, trace_id, severity=4, flag_type="unverified"):
    body = {"trace": str(trace_id), "flag": flag_type, "severity": severity, "reason": "looks odd"}
    return client.post("/api/v1/governance/flag", body, format="json")


def test_a_submitter_flags_their_own_trace_only(api, trace, foreign_trace):
    created = flag(api, trace.pk)
    assert created.status_code == 201
    body = created.json()
    assert (body["auto_detected"], body["raised_by"], body["source"]) == (False, "alice", "manual")
    assert flag(api, foreign_trace.pk).status_code == 404
    assert Flag.objects.count() == 1 and AuditEntry.objects.filter(action="flag.raised").count() == 1


def test_a_reviewer_flags_any_trace_and_a_severe_flag_quarantines_it(reviewer_api, foreign_trace):
    assert flag(reviewer_api, foreign_trace.pk, severity=9, flag_type="malicious").status_code == 201
    queue = reviewer_api.get("/api/v1/governance/queue").json()["results"]
    assert [(r["trace"], r["state"], r["severity"]) for r in queue] == [
        (str(foreign_trace.pk), "quarantined", 9)
    ]


def test_bad_flags_are_400(api, trace):
    assert flag(api, trace.pk, severity=11).status_code == 400
    assert flag(api, trace.pk, flag_type="spooky").status_code == 400


def test_scan_gives_findings_and_the_verdict_of_the_sessions_policy(api, session, user):
    strict = session_create(owner=user, name="s", policy="strict")
    text = "fine, then [[jailbreak:6]]"
    default = api.post(
        "/api/v1/governance/scan", {"text": text, "session": str(session.pk)}, format="json"
    ).json()
    assert default["verdict"] == "allow" and default["policy"]["name"] == "default"
    assert default["findings"][0]["span"] == {"field": "text", "start": 11, "end": 26}
    judged = api.post(
        "/api/v1/governance/scan", {"text": text, "session": str(strict.pk)}, format="json"
    ).json()
    assert judged["verdict"] == "block" and judged["policy"]["name"] == "strict"


def test_stats_count_by_type_band_detector_and_state(reviewer_api, api, trace):
    flag(api, trace.pk, severity=9, flag_type="malicious")
    flag(api, trace.pk, severity=2)
    stats = reviewer_api.get("/api/v1/governance/stats").json()
    assert stats["flags_by_type"] == {"malicious": 1, "unverified": 1}
    assert stats["flags_by_severity_band"] == {"low": 1, "medium": 0, "high": 0, "critical": 1}
    assert stats["flags_by_detector"] == {"person:alice": 2}
    assert stats["reviews_by_state"] == {"quarantined": 1}


def test_audit_verify_names_the_first_tampered_entry(admin_api, api, trace):
    for severity in (2, 3, 4):
        flag(api, trace.pk, severity=severity)
    assert admin_api.get("/api/v1/governance/audit/verify").json() == {
        "valid": True,
        "broken_at": None,
        "reason": None,
        "entries": 3,
    }
    assert [e["seq"] for e in admin_api.get("/api/v1/governance/audit").json()["results"]] == [3, 2, 1]
    with connection.cursor() as cursor:  # as an attacker with database access would
        cursor.execute("UPDATE audit_auditentry SET actor = 'mallory' WHERE seq = 2")
    broken = admin_api.get("/api/v1/governance/audit/verify").json()
    assert broken["valid"] is False and broken["broken_at"] == 2


FORBIDDEN = [
    # (who, method, path template, body, status)
    ("submitter", "get", "/api/v1/governance/queue", None, 403),
    ("submitter", "get", "/api/v1/governance/stats", None, 403),
    ("submitter", "get", "/api/v1/governance/audit", None, 403),
    ("submitter", "get", "/api/v1/governance/audit/verify", None, 403),
    ("reviewer", "get", "/api/v1/governance/audit", None, 403),
    ("reviewer", "get", "/api/v1/governance/audit/verify", None, 403),
    ("submitter", "post", "/api/v1/governance/traces/{trace}/release", {"note": "x"}, 403),
    ("submitter", "post", "/api/v1/governance/traces/{trace}/reject", {"note": "x"}, 403),
    ("submitter", "post", "/api/v1/governance/policies", {"name": "mine"}, 403),
    ("submitter", "patch", "/api/v1/governance/policies/{policy}", {"scan_outputs": False}, 403),
    ("submitter", "post", "/api/v1/governance/policies/{policy}/approve", None, 403),
    ("submitter", "post", "/api/v1/governance/policies/{policy}/versions/1/activate", None, 403),
    ("reviewer", "post", "/api/v1/governance/policies/{policy}/versions/1/activate", None, 403),
    (
        "submitter",
        "post",
        "/api/v1/governance/flag",
        {"trace": "{foreign}", "flag": "anomaly", "severity": 3, "reason": "r"},
        404,
    ),
    ("submitter", "get", "/api/v1/traces/{foreign}/flags", None, 404),
    ("submitter", "post", "/api/v1/traces/{foreign}/merge", None, 404),
    ("submitter", "get", "/api/v1/runs/{foreign_run}", None, 404),
    (
        "submitter",
        "post",
        "/api/v1/governance/scan",
        {"text": "hello there", "session": "{foreign_session}"},
        404,
    ),
]


@pytest.mark.parametrize("who,method,path,body,expected", FORBIDDEN)
def test_every_forbidden_role_action_pair_is_refused(
    who, method, path, body, expected, api, reviewer_api, other_user, reviewer
):
    from apps.governance.models import TraceReview
    from apps.policies.models import Policy
    from apps.runs.models import Run

    theirs = session_create(owner=other_user, name="theirs", policy="strict")
    foreign = trace_create(user=other_user, session_id=theirs.pk)
    run = Run.objects.create(owner=other_user, session=theirs, kind="echo", queue="cpu")
    policy = Policy.objects.get(name="strict")
    TraceReview.objects.create(trace=foreign, state="quarantined", policy_version=policy.active_version)
    values = {
        "trace": foreign.pk,
        "foreign": foreign.pk,
        "policy": policy.pk,
        "foreign_run": run.pk,
        "foreign_session": theirs.pk,
    }

    def fill(value):
        if isinstance(value, str):
            return value.format(**values)
        if isinstance(value, dict):
            return {key: fill(item) for key, item in value.items()}
        return value

    client = {"submitter": api, "reviewer": reviewer_api}[who]
    response = getattr(client, method)(fill(path), fill(body) if body else None, format="json")
    assert response.status_code == expected, response.content
    assert set(response.json()["error"]) == {"code", "message", "fields"}


def test_unknown_ids_are_404_for_everyone(reviewer_api):
    missing = uuid.uuid4()
    assert (
        reviewer_api.post(
            f"/api/v1/governance/traces/{missing}/release", {"note": "x"}, format="json"
        ).status_code
        == 404
    )
    assert reviewer_api.get(f"/api/v1/traces/{missing}/flags").status_code == 404
