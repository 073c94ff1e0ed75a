from __future__ import annotations

import json
import uuid

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from apps.runs.models import Run, RunBatch, RunStatus
from apps.sessions.services import session_create
from apps.traces.models import Trace

pytestmark = pytest.mark.django_db

RUNS = "/api/v1/runs"


def submit(api, session, kind="echo", payload=None, **extra):
    body = {"session": str(session.pk), "kind": kind, "payload": payload if payload is not None else {"a": 1}}
    return api.post(RUNS, body, format="json", **extra)


def assert_error_shape(response, status, code=None):
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "fields"}
    assert body["error"]["message"]
    if code:
        assert body["error"]["code"] == code
    return body["error"]


@pytest.mark.parametrize(
    "method,path",
    [
        ("get", "/api/v1/sessions"),
        ("post", "/api/v1/sessions"),
        ("get", RUNS),
        ("post", RUNS),
        ("post", RUNS + "/batch"),
        ("get", "/api/v1/traces"),
        ("get", "/api/v1/api-keys"),
        ("get", f"/api/v1/runs/{uuid.uuid4()}"),
    ],
)
def test_unauthenticated_requests_get_401(method, path):
    response = getattr(APIClient(), method)(path, {}, format="json")
    error = assert_error_shape(response, 401, "not_authenticated")
    assert "credentials" in error["message"]


def test_bad_token_gets_401():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token nope")
    assert_error_shape(client.get(RUNS), 401)


def test_submit_returns_201_with_run_and_trace(api, session):
    response = submit(api, session)
    assert response.status_code == 201
    body = response.json()
    assert body["status"] in ("pending", "queued")
    assert body["kind"] == "echo" and body["payload"] == {"a": 1}
    run = Run.objects.get(pk=body["id"])
    assert run.owner.username == "alice" and run.queue == "cpu"
    assert body["trace"] == str(Trace.objects.get(run=run).pk)


def test_submit_enqueues_only_after_commit(api, session, django_capture_on_commit_callbacks, monkeypatch):
    sent = []
    monkeypatch.setattr(
        "apps.runs.services.submission.send_run", lambda run, producer=None: sent.append(run.pk) or True
    )
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = submit(api, session)
    assert sent == []  # nothing went out before the commit
    for callback in callbacks:  # the commit: the send (and the run's event)
        callback()
    run = Run.objects.get(pk=response.json()["id"])
    assert sent == [run.pk] and run.status == RunStatus.QUEUED and run.task_id


def test_same_idempotency_key_returns_the_same_run(api, session):
    first = submit(api, session, HTTP_IDEMPOTENCY_KEY="order-42")
    second = submit(api, session, HTTP_IDEMPOTENCY_KEY="order-42")
    assert first.status_code == 201 and second.status_code == 200
    assert first.json()["id"] == second.json()["id"]
    assert Run.objects.count() == 1


def test_idempotency_key_is_scoped_per_user(api, other_api, session, other_user):
    other_session = session_create(owner=other_user, name="theirs")
    mine = submit(api, session, HTTP_IDEMPOTENCY_KEY="k")
    theirs = submit(other_api, other_session, HTTP_IDEMPOTENCY_KEY="k")
    assert mine.status_code == theirs.status_code == 201
    assert mine.json()["id"] != theirs.json()["id"]


def test_idempotency_key_reused_for_a_different_request_is_409(api, session):
    submit(api, session, HTTP_IDEMPOTENCY_KEY="k1")
    response = submit(api, session, payload={"different": True}, HTTP_IDEMPOTENCY_KEY="k1")
    assert_error_shape(response, 409, "conflict")
    assert Run.objects.count() == 1


@pytest.mark.parametrize(
    "body,field",
    [
        ({"session": None, "kind": "echo", "payload": {}}, "session"),
        ({"session": "not-a-uuid", "kind": "echo"}, "session"),
        ({"kind": "nope"}, "kind"),
        ({"kind": "sleep", "payload": {"seconds": -1}}, "payload"),
        ({"kind": "sleep", "payload": {"seconds": 10_000}}, "payload"),
        ({"kind": "sleep", "payload": {}}, "payload"),
        ({"kind": "sleep", "payload": {"seconds": "soon"}}, "payload"),
        ({"kind": "echo", "payload": [1, 2]}, "payload"),
        ({"kind": "echo", "priority": 10}, "priority"),
    ],
)
def test_invalid_submit_is_400_with_the_error_shape(api, session, body, field):
    body = {"session": str(session.pk), **body}
    body = {key: value for key, value in body.items() if value is not None}
    response = api.post(RUNS, body, format="json")
    error = assert_error_shape(response, 400, "invalid")
    assert field in error["fields"]
    assert Run.objects.count() == 0


def test_a_session_id_sent_as_a_json_integer_is_400(api, session):
    # DRF's UUIDField read an integer as the UUID's number: the session's own was accepted
    for path, body in (
        (RUNS, {"session": session.pk.int, "kind": "echo"}),
        (RUNS + "/batch", {"runs": [{"session": session.pk.int, "kind": "echo"}]}),
        (
            RUNS + "/batch",
            {"runs": [{"session": str(session.pk), "kind": "echo"}, {"session": True, "kind": "echo"}]},
        ),
    ):
        error = assert_error_shape(api.post(path, body, format="json"), 400, "invalid")
        assert "Must be a valid UUID." in json.dumps(error["fields"])
    assert Run.objects.count() == 0 and RunBatch.objects.count() == 0


@pytest.mark.parametrize("key", ["k\n", "k\r\n", "\n"])
def test_an_idempotency_key_with_a_line_break_is_400(api, session, key):
    # "$" matched before a final newline: "k\n" was stored as a key
    error = assert_error_shape(submit(api, session, HTTP_IDEMPOTENCY_KEY=key), 400, "invalid")
    assert "Idempotency-Key" in error["fields"]
    assert Run.objects.count() == 0


def test_malformed_json_is_400(api):
    response = api.generic("POST", RUNS, "{not json", content_type="application/json")
    assert_error_shape(response, 400, "parse_error")


def test_nan_is_rejected(api, session):
    body = '{"session": "' + str(session.pk) + '", "kind": "echo", "payload": {"x": NaN}}'
    response = api.generic("POST", RUNS, body, content_type="application/json")
    assert_error_shape(response, 400)


@override_settings(MAX_REQUEST_BODY_BYTES=2048)
def test_oversized_body_is_413(api, session):
    response = submit(api, session, payload={"blob": "x" * 4096})
    assert_error_shape(response, 413, "request_too_large")
    assert Run.objects.count() == 0


@override_settings(MAX_PAYLOAD_BYTES=100)
def test_oversized_payload_is_400_naming_the_limit(api, session):
    response = submit(api, session, payload={"blob": "x" * 200})
    error = assert_error_shape(response, 400)
    assert "limit is 100" in json.dumps(error["fields"])


def test_another_users_objects_are_404(api, other_api, session):
    run_id = submit(api, session).json()["id"]
    trace_id = Trace.objects.get(run_id=run_id).pk
    for path in (
        f"/api/v1/sessions/{session.pk}",
        f"{RUNS}/{run_id}",
        f"{RUNS}/{run_id}/progress",
        f"/api/v1/traces/{trace_id}",
        f"/api/v1/traces/{trace_id}/verify",
        f"/api/v1/traces/{trace_id}/provenance",
    ):
        assert_error_shape(other_api.get(path), 404, "not_found")
        assert api.get(path).status_code == 200
    assert_error_shape(other_api.post(f"{RUNS}/{run_id}/cancel"), 404)
    assert other_api.get(RUNS).json()["count"] == 0
    # submitting into someone else's session is refused as if it did not exist
    response = submit(other_api, session)
    assert_error_shape(response, 400)
    assert response.json()["error"]["fields"] == {"session": ["Session not found."]}


def test_staff_see_everyone(make_user, api, session):
    from tests.conftest import client_for

    submit(api, session)
    staff = client_for(make_user("root", is_staff=True))
    assert staff.get(RUNS).json()["count"] == 1
    assert staff.get(f"/api/v1/sessions/{session.pk}").status_code == 200


def test_list_filters(api, session, user):
    other_session = session_create(owner=user, name="s2")
    submit(api, session, kind="echo")
    submit(api, session, kind="sleep", payload={"seconds": 1})
    submit(api, other_session, kind="echo")
    Run.objects.filter(kind="sleep").update(status=RunStatus.SUCCEEDED)

    assert api.get(RUNS).json()["count"] == 3
    assert api.get(RUNS, {"session": str(session.pk)}).json()["count"] == 2
    assert api.get(RUNS, {"kind": "sleep"}).json()["count"] == 1
    assert api.get(RUNS, {"status": "succeeded", "session": str(session.pk)}).json()["count"] == 1
    assert_error_shape(api.get(RUNS, {"status": "bogus"}), 400)


def test_batch_submit_creates_all(api, session):
    runs = [{"session": str(session.pk), "kind": "echo", "payload": {"i": i}} for i in range(5)]
    response = api.post(f"{RUNS}/batch", {"runs": runs}, format="json")
    assert response.status_code == 201
    assert [r["payload"]["i"] for r in response.json()["runs"]] == list(range(5))
    assert Run.objects.count() == 5 and Trace.objects.count() == 5


def test_batch_submit_is_all_or_nothing(api, session, other_user):
    other_session = session_create(owner=other_user, name="theirs")
    good = {"session": str(session.pk), "kind": "echo", "payload": {}}
    for bad in (
        {"session": str(session.pk), "kind": "sleep", "payload": {"seconds": -5}},
        {"session": str(session.pk), "kind": "unknown"},
        {"session": str(other_session.pk), "kind": "echo"},
    ):
        response = api.post(f"{RUNS}/batch", {"runs": [good, good, bad, good]}, format="json")
        error = assert_error_shape(response, 400)
        assert list(error["fields"]["runs"]) == ["2"]
    assert Run.objects.count() == 0 and Trace.objects.count() == 0


def test_batch_submit_fails_whole_when_a_write_fails(api, session, last_insert_fails):
    # A failure in the middle of the writes (not only validation) must roll everything back:
    # here the last insert (the traces' first entries) breaks a constraint.
    from django.db import IntegrityError

    runs = [{"session": str(session.pk), "kind": "echo", "payload": {}}] * 4
    with pytest.raises(IntegrityError):
        api.post(f"{RUNS}/batch", {"runs": runs}, format="json")
    assert Run.objects.count() == 0 and Trace.objects.count() == 0
    assert RunBatch.objects.count() == 0


@override_settings(MAX_BATCH_RUNS=3)
def test_batch_over_the_limit_is_400(api, session):
    runs = [{"session": str(session.pk), "kind": "echo"}] * 4
    error = assert_error_shape(api.post(f"{RUNS}/batch", {"runs": runs}, format="json"), 400)
    assert "At most 3" in error["message"]


@override_settings(MAX_BATCH_RUNS=3)
def test_a_batch_over_the_limit_is_refused_before_its_items_are_checked(api):
    # each of 200,000 numbers got its own error before the limit was checked: a 1 MB body,
    # a 13 MB answer
    body = '{"runs": [' + ",".join(["1"] * 200_000) + "]}"
    response = api.generic("POST", f"{RUNS}/batch", body, content_type="application/json")
    error = assert_error_shape(response, 400, "invalid")
    assert error["fields"] == {"runs": ["At most 3 runs per batch; got 200000."]}
    assert len(response.content) < 500


def test_cancel_a_queued_run(api, session):
    run_id = submit(api, session).json()["id"]
    Run.objects.filter(pk=run_id).update(status=RunStatus.QUEUED)
    response = api.post(f"{RUNS}/{run_id}/cancel")
    assert response.status_code == 202 and response.json()["status"] == "cancelled"
    # a worker receiving the message now does nothing
    from apps.runs.services import run_claim

    assert run_claim(run_id=run_id, hostname="w1") is None


def test_cancel_a_finished_run_is_409(api, session):
    run_id = submit(api, session).json()["id"]
    Run.objects.filter(pk=run_id).update(status=RunStatus.SUCCEEDED)
    assert_error_shape(api.post(f"{RUNS}/{run_id}/cancel"), 409, "conflict")


def test_unknown_url_is_json_404(api):
    assert_error_shape(api.get("/api/v1/nothing-here"), 404, "not_found")


def test_idempotent_replay_of_a_normalised_payload_is_200(api, session):
    # sleep's validator turns 5 into 5.0: the replay must still be recognised as the same request
    body = {"session": str(session.pk), "kind": "sleep", "payload": {"seconds": 5}}
    first = api.post(RUNS, body, format="json", HTTP_IDEMPOTENCY_KEY="sleep-5")
    second = api.post(RUNS, body, format="json", HTTP_IDEMPOTENCY_KEY="sleep-5")
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["id"] == second.json()["id"]


@pytest.mark.parametrize("payload", [{"text": "a\x00b"}, {"a\x00": 1}, {"nested": [{"x": "\x00"}]}])
def test_nul_characters_are_400_not_500(api, session, payload):
    error = assert_error_shape(submit(api, session, payload=payload), 400)
    assert "NUL" in json.dumps(error["fields"])
    response = api.post("/api/v1/traces", {"session": str(session.pk), "inputs": payload}, format="json")
    assert_error_shape(response, 400)


def test_list_limit_is_capped(api, session):
    from apps.core.pagination import MAX_PAGE_SIZE

    for _ in range(3):
        submit(api, session)
    response = api.get(RUNS, {"limit": 10**6})
    assert response.status_code == 200 and response.json()["count"] == 3
    assert f"limit={MAX_PAGE_SIZE}" in (response.json()["next"] or f"limit={MAX_PAGE_SIZE}")


def test_schema_and_docs_need_auth(api):
    assert_error_shape(APIClient().get("/api/v1/schema/"), 401)
    assert api.get("/api/v1/schema/").status_code == 200


def test_session_owner_sees_runs_submitted_into_the_session_by_staff(make_user, api, session):
    from tests.conftest import client_for

    staff = client_for(make_user("root", is_staff=True))
    run_id = submit(staff, session).json()["id"]
    assert api.get(f"{RUNS}/{run_id}").status_code == 200


def test_progress_endpoint(api, session):
    run_id = submit(api, session).json()["id"]
    Run.objects.filter(pk=run_id).update(status=RunStatus.RUNNING, progress=0.25, attempts=1)
    body = api.get(f"{RUNS}/{run_id}/progress").json()
    assert (body["status"], body["progress"], body["attempts"]) == ("running", 0.25, 1)


def test_cancelling_any_run_that_already_ended_is_409_naming_its_status(api, session):
    run_id = submit(api, session).json()["id"]
    assert api.post(f"{RUNS}/{run_id}/cancel").status_code == 202
    error = assert_error_shape(api.post(f"{RUNS}/{run_id}/cancel"), 409, "conflict")
    assert "(cancelled)" in error["message"]
    Run.objects.filter(pk=run_id).update(status=RunStatus.FAILED)
    assert "(failed)" in assert_error_shape(api.post(f"{RUNS}/{run_id}/cancel"), 409)["message"]


def test_batch_idempotency_key_replays_the_same_batch(api, session):
    runs = [{"session": str(session.pk), "kind": "echo", "payload": {"i": i}} for i in range(3)]
    first = api.post(f"{RUNS}/batch", {"runs": runs}, format="json", HTTP_IDEMPOTENCY_KEY="batch-1")
    again = api.post(f"{RUNS}/batch", {"runs": runs}, format="json", HTTP_IDEMPOTENCY_KEY="batch-1")
    assert first.status_code == 201 and again.status_code == 200
    assert [r["id"] for r in again.json()["runs"]] == [r["id"] for r in first.json()["runs"]]
    assert Run.objects.count() == 3

    other = [*runs[:2], {"session": str(session.pk), "kind": "echo", "payload": {"i": 99}}]
    conflict = api.post(f"{RUNS}/batch", {"runs": other}, format="json", HTTP_IDEMPOTENCY_KEY="batch-1")
    assert_error_shape(conflict, 409, "conflict")
    fresh = api.post(f"{RUNS}/batch", {"runs": runs}, format="json", HTTP_IDEMPOTENCY_KEY="batch-2")
    assert fresh.status_code == 201 and Run.objects.count() == 6


def test_the_run_list_is_slim_and_the_detail_is_whole(api, session):
    run_id = submit(api, session, payload={"big": "x" * 1000}).json()["id"]
    row = api.get(RUNS).json()["results"][0]
    assert row["id"] == run_id and "payload" not in row and "result" not in row
    assert api.get(f"{RUNS}/{run_id}").json()["payload"] == {"big": "x" * 1000}


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("depth", [40, 500, 5000, 100_000])
def test_deeply_nested_payloads_are_400_naming_the_limit(api, session, depth):
    body = json.dumps({"session": str(session.pk), "kind": "echo", "payload": {"x": "HOLE"}})
    body = body.replace('"HOLE"', nested(depth))
    error = assert_error_shape(api.post(RUNS, body, content_type="application/json"), 400)
    assert "levels (the limit)" in json.dumps(error)
    assert Run.objects.count() == 0


@pytest.mark.parametrize("depth", [1000, 100_000])
def test_deeply_nested_bodies_anywhere_are_400(api, session, depth):
    for path in ("/api/v1/sessions", "/api/v1/traces", RUNS + "/batch"):
        error = assert_error_shape(api.post(path, nested(depth), content_type="application/json"), 400)
        assert "64 levels (the limit)" in error["message"]


def test_services_scope_the_session_themselves(session, other_user):
    from apps.core.exceptions import ValidationFailed
    from apps.runs.services import run_submit

    with pytest.raises(ValidationFailed) as refused:
        run_submit(user=other_user, session_id=session.pk, kind="echo", payload={})
    assert refused.value.fields == {"session": ["Session not found."]} and Run.objects.count() == 0
