from __future__ import annotations

import pytest
from django.db import connection

pytestmark = pytest.mark.django_db


def test_trace_create_append_verify(api, session):
    created = api.post(
        "/api/v1/traces",
        {"session": str(session.pk), "inputs": {"q": "hi"}, "metadata": {"source": "client"}},
        format="json",
    )
    assert created.status_code == 201
    trace_id = created.json()["id"]

    appended = api.post(
        f"/api/v1/traces/{trace_id}/provenance",
        {"action": "review.note", "data": {"ok": True}},
        format="json",
    )
    assert appended.status_code == 201
    assert appended.json()["seq"] == 2 and appended.json()["actor"] == "alice"

    entries = api.get(f"/api/v1/traces/{trace_id}/provenance").json()["results"]
    assert [e["action"] for e in entries] == ["trace.created", "review.note"]
    assert api.get(f"/api/v1/traces/{trace_id}/verify").json() == {
        "valid": True,
        "broken_at": None,
        "reason": None,
        "entries": 2,
    }
    assert api.get("/api/v1/traces", {"session": str(session.pk)}).json()["count"] == 1

    with connection.cursor() as cursor:
        cursor.execute("UPDATE traces_provenanceentry SET data = '{\"ok\": false}' WHERE seq = 2")
    verdict = api.get(f"/api/v1/traces/{trace_id}/verify").json()
    assert verdict["valid"] is False and verdict["broken_at"] == 2


@pytest.mark.parametrize(
    "body,field",
    [
        ({"action": "Bad Action!"}, "action"),
        ({"action": "x", "data": [1]}, "data"),
        ({"action": "x" * 101}, "action"),
        ({}, "action"),
    ],
)
def test_bad_provenance_append_is_400(api, session, body, field):
    trace_id = api.post("/api/v1/traces", {"session": str(session.pk)}, format="json").json()["id"]
    response = api.post(f"/api/v1/traces/{trace_id}/provenance", body, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


def test_trace_in_someone_elses_session_is_refused(other_api, session):
    response = other_api.post("/api/v1/traces", {"session": str(session.pk)}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"session": ["Session not found."]}


@pytest.mark.parametrize("action", ["run.succeeded", "trace.outputs", "trace.created"])
def test_platform_actions_cannot_be_appended_by_clients(api, session, action):
    trace_id = api.post("/api/v1/traces", {"session": str(session.pk)}, format="json").json()["id"]
    response = api.post(f"/api/v1/traces/{trace_id}/provenance", {"action": action}, format="json")
    assert response.status_code == 400 and "platform only" in str(response.json()["error"]["fields"])
