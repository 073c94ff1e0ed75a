"""The `python` kind's payload and queue policy, checked at submit (no worker)."""

from __future__ import annotations

import pytest
from django.test import override_settings

from apps.core.services import worker_heartbeat_record
from apps.runs.kinds.python import CODE_FIELD
from apps.runs.models import Run

pytestmark = pytest.mark.django_db


def submit(api, session, payload):
    return api.post(
        "/api/v1/runs", {"session": str(session.pk), "kind": "python", "payload": payload}, format="json"
    )


def payload_errors(response) -> dict:
    assert response.status_code == 400, response.content
    return response.json()["error"]["fields"]["payload"]


def test_the_issues_payload_is_accepted_on_the_sandbox_queue(api, session):
    payload = {"code": "print(1)", "timeout_s": 10, "memory_mb": 256, "env": {}, "interpreter": "python3"}
    response = submit(api, session, {**payload, "files": []})
    assert response.status_code == 201, response.content
    run = Run.objects.get()
    assert run.queue == "sandbox" and run.payload[CODE_FIELD] == "print(1)"
    assert run.payload == {**payload, "timeout_s": 10.0, "files": []}


@override_settings(SANDBOX_DEFAULT_TIMEOUT_SECONDS=7.0, SANDBOX_DEFAULT_MEMORY_MB=128)
def test_defaults_are_stored_with_the_run(api, session):
    assert submit(api, session, {"code": ""}).status_code == 201
    assert Run.objects.get().payload == {
        "code": "",
        "timeout_s": 7.0,
        "memory_mb": 128,
        "env": {},
        "interpreter": None,
        "files": [],
    }


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "code"),
        ({"code": 5}, "code"),
        ({"code": "x", "timeout": 3}, "timeout"),
        ({"code": "x", "timeout_s": "10"}, "timeout_s"),
        ({"code": "x", "timeout_s": 0}, "timeout_s"),
        ({"code": "x", "timeout_s": 100_000}, "timeout_s"),
        ({"code": "x", "memory_mb": 8}, "memory_mb"),
        ({"code": "x", "memory_mb": 10**6}, "memory_mb"),
        ({"code": "x", "memory_mb": 256.5}, "memory_mb"),
        ({"code": "x", "env": []}, "env"),
        ({"code": "x", "env": {"DATABASE_URL": "postgres://me"}}, "env"),
        ({"code": "x", "env": {"APP_X": 1}}, "env"),
        ({"code": "x", "env": {"APP-X": "1"}}, "env"),
        ({"code": "x", "env": {"APP_X=Y": "1"}}, "env"),
        ({"code": "x", "interpreter": "perl"}, "interpreter"),
        ({"code": "x", "files": "abc"}, "files"),
        ({"code": "x", "files": ["not-a-uuid"]}, "files"),
        ({"code": "x", "files": ["0" * 8 + "-0000-0000-0000-" + "0" * 12] * 2}, "files"),
    ],
)
def test_bad_payloads_are_400_naming_the_field(api, session, payload, field):
    assert field in payload_errors(submit(api, session, payload))
    assert Run.objects.count() == 0


def test_an_env_name_outside_the_allow_list_is_refused_naming_the_list(api, session):
    errors = payload_errors(submit(api, session, {"code": "x", "env": {"SECRET_KEY": "x", "LANG": "C"}}))
    assert errors["env"] == ["'SECRET_KEY' is not allowed (SANDBOX_ENV_ALLOWLIST: LANG, LC_*, TZ, APP_*)."]


@override_settings(MAX_PAYLOAD_BYTES=2048)
def test_code_is_bounded_by_the_payload_limit(api, session):
    response = submit(api, session, {"code": "#" * 4000})
    assert response.status_code in (400, 413)
    assert Run.objects.count() == 0


def test_submission_is_refused_while_every_live_sandbox_worker_cannot_sandbox(api, session):
    unavailable = {"available": False, "reason": "bubblewrap (bwrap) is not installed: install it"}
    worker_heartbeat_record(hostname="w1@a", queues=["sandbox"], pid=1, capabilities={"sandbox": unavailable})
    refused = submit(api, session, {"code": "print(1)"})
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "no_capable_worker"
    assert "w1@a: bubblewrap (bwrap) is not installed" in refused.json()["error"]["message"]

    # one capable worker is enough
    capable = {"available": True, "mode": "bwrap", "reason": ""}
    worker_heartbeat_record(hostname="w2@b", queues=["sandbox"], pid=2, capabilities={"sandbox": capable})
    assert submit(api, session, {"code": "print(1)"}).status_code == 201


def test_without_any_sandbox_worker_a_run_waits_on_its_queue(api, session):
    response = submit(api, session, {"code": "print(1)"})
    assert response.status_code == 201 and response.json()["status"] in ("pending", "queued")
