from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from apps.accounts.models import ApiKey

pytestmark = pytest.mark.django_db


def key_client(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    return client


def test_created_key_is_shown_once_and_stored_only_as_a_hash(api):
    response = api.post("/api/v1/api-keys", {"name": "ci"}, format="json")
    assert response.status_code == 201
    key = response.json()["key"]
    stored = ApiKey.objects.get()
    assert stored.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert key.startswith(f"lg_{stored.prefix}_")
    assert key not in str(ApiKey.objects.values().get())
    listed = api.get("/api/v1/api-keys").json()["results"]
    assert listed[0]["prefix"] == stored.prefix and "key" not in listed[0]


def test_api_key_authenticates_until_revoked(api, session):
    key = api.post("/api/v1/api-keys", {"name": "ci"}, format="json").json()["key"]
    client = key_client(key)
    assert client.get(f"/api/v1/sessions/{session.pk}").status_code == 200
    assert ApiKey.objects.get().last_used_at is not None

    key_id = ApiKey.objects.get().pk
    assert api.post(f"/api/v1/api-keys/{key_id}/revoke").json()["revoked_at"]

    response = client.get(f"/api/v1/sessions/{session.pk}")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"


def test_delete_revokes(api):
    api.post("/api/v1/api-keys", {"name": "x"}, format="json")
    key_id = ApiKey.objects.get().pk
    assert api.delete(f"/api/v1/api-keys/{key_id}").status_code == 200
    assert not ApiKey.objects.get().is_active


def test_wrong_key_is_401():
    assert key_client("lg_deadbeef_nope").get("/api/v1/runs").status_code == 401


def test_cannot_revoke_someone_elses_key(api, other_api):
    api.post("/api/v1/api-keys", {"name": "mine"}, format="json")
    key_id = ApiKey.objects.get().pk
    assert other_api.post(f"/api/v1/api-keys/{key_id}/revoke").status_code == 404
    assert ApiKey.objects.get().is_active


def test_create_api_key_command_prints_a_working_key(user, capsys, session):
    call_command("create_api_key", user.username, "--name", "script")
    key = capsys.readouterr().out.strip()
    assert key_client(key).get(f"/api/v1/sessions/{session.pk}").status_code == 200


def test_create_api_key_command_unknown_user(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="No user named"):
        call_command("create_api_key", "ghost")


def _make_key(api, **body) -> dict:
    response = api.post("/api/v1/api-keys", {"name": "k", **body}, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def test_an_api_key_cannot_create_keys(api):
    key = _make_key(api)["key"]

    response = key_client(key).post("/api/v1/api-keys", {"name": "child"}, format="json")

    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "api_key_not_allowed" and "password-backed" in error["message"]
    assert ApiKey.objects.count() == 1


def test_a_session_login_can_create_keys(user):
    client = APIClient()
    client.force_login(user)
    assert client.post("/api/v1/api-keys", {"name": "web"}, format="json").status_code == 201


def test_an_expired_key_no_longer_authenticates(api, session):
    soon = timezone.now() + timedelta(hours=1)
    created = _make_key(api, expires_at=soon.isoformat())
    assert created["expires_at"] is not None
    client = key_client(created["key"])
    assert client.get(f"/api/v1/sessions/{session.pk}").status_code == 200

    ApiKey.objects.filter(pk=created["id"]).update(expires_at=timezone.now() - timedelta(seconds=1))

    assert client.get(f"/api/v1/sessions/{session.pk}").status_code == 401


def test_an_expiry_in_the_past_is_refused(api):
    past = (timezone.now() - timedelta(minutes=1)).isoformat()
    response = api.post("/api/v1/api-keys", {"name": "k", "expires_at": past}, format="json")

    assert response.status_code == 400
    assert "expires_at" in response.json()["error"]["fields"]


@override_settings(API_KEYS_PER_USER=2)
def test_keys_per_user_are_capped(api, other_api):
    first = _make_key(api)
    _make_key(api)

    response = api.post("/api/v1/api-keys", {"name": "third"}, format="json")
    assert response.status_code == 409 and response.json()["error"]["code"] == "api_key_limit"
    assert other_api.post("/api/v1/api-keys", {"name": "theirs"}, format="json").status_code == 201

    api.post(f"/api/v1/api-keys/{first['id']}/revoke")
    assert api.post("/api/v1/api-keys", {"name": "third"}, format="json").status_code == 201


def test_last_used_at_is_written_at_most_once_a_minute(api, session):
    created = _make_key(api)
    client = key_client(created["key"])
    recently = timezone.now() - timedelta(seconds=30)
    ApiKey.objects.filter(pk=created["id"]).update(last_used_at=recently)

    client.get(f"/api/v1/sessions/{session.pk}")
    assert ApiKey.objects.get(pk=created["id"]).last_used_at == recently

    ApiKey.objects.filter(pk=created["id"]).update(last_used_at=recently - timedelta(minutes=1))
    client.get(f"/api/v1/sessions/{session.pk}")
    assert ApiKey.objects.get(pk=created["id"]).last_used_at > recently


def test_rotation_gives_a_new_key_and_the_old_one_an_overlap(api, session):
    old = _make_key(api)
    before = timezone.now()

    response = api.post(f"/api/v1/api-keys/{old['id']}/rotate", {"overlap_seconds": 600}, format="json")

    assert response.status_code == 201, response.json()
    new = response.json()
    assert new["key"] != old["key"] and new["rotated_from"] == old["id"] and new["created_by_key"] is None
    old_row = ApiKey.objects.get(pk=old["id"])
    assert before + timedelta(seconds=590) < old_row.expires_at < timezone.now() + timedelta(seconds=610)
    # both work during the overlap
    for key in (old["key"], new["key"]):
        assert key_client(key).get(f"/api/v1/sessions/{session.pk}").status_code == 200
    # after it, only the new one
    ApiKey.objects.filter(pk=old["id"]).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert key_client(old["key"]).get(f"/api/v1/sessions/{session.pk}").status_code == 401
    assert key_client(new["key"]).get(f"/api/v1/sessions/{session.pk}").status_code == 200


def test_rotation_overlap_is_bounded_and_needs_a_live_key(api):
    old = _make_key(api)
    too_long = settings.API_KEY_MAX_ROTATION_OVERLAP_SECONDS + 1

    response = api.post(f"/api/v1/api-keys/{old['id']}/rotate", {"overlap_seconds": too_long}, format="json")
    assert response.status_code == 400 and "overlap_seconds" in response.json()["error"]["fields"]

    api.post(f"/api/v1/api-keys/{old['id']}/revoke")
    response = api.post(f"/api/v1/api-keys/{old['id']}/rotate", {"overlap_seconds": 0}, format="json")
    assert response.status_code == 409 and response.json()["error"]["code"] == "api_key_inactive"


def test_a_key_rotates_only_itself_and_its_successor_does_not_outlive_it(api):
    expiry = timezone.now() + timedelta(days=1)
    first = _make_key(api, expires_at=expiry.isoformat())
    second = _make_key(api)
    client = key_client(first["key"])

    refused = client.post(f"/api/v1/api-keys/{second['id']}/rotate", {}, format="json")
    assert refused.status_code == 403

    later = (expiry + timedelta(days=30)).isoformat()
    response = client.post(
        f"/api/v1/api-keys/{first['id']}/rotate", {"overlap_seconds": 0, "expires_at": later}, format="json"
    )
    assert response.status_code == 201
    successor = ApiKey.objects.get(pk=response.json()["id"])
    assert successor.created_by_key_id == first["id"]
    assert successor.expires_at == expiry


def _rotate_with_itself(key: dict) -> dict:
    response = key_client(key["key"]).post(f"/api/v1/api-keys/{key['id']}/rotate", {}, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def test_revoking_with_cascade_revokes_every_key_made_with_it(api, session):
    # given a leaked key that rotated itself, and its successor that did the same
    leaked = _make_key(api)
    child = (
        key_client(leaked["key"]).post(f"/api/v1/api-keys/{leaked['id']}/rotate", {}, format="json").json()
    )
    grandchild = (
        key_client(child["key"]).post(f"/api/v1/api-keys/{child['id']}/rotate", {}, format="json").json()
    )
    unrelated = _make_key(api)

    plain = api.post(f"/api/v1/api-keys/{child['id']}/revoke")
    assert plain.json()["cascaded"] == []
    assert key_client(grandchild["key"]).get(f"/api/v1/sessions/{session.pk}").status_code == 200

    response = api.delete(f"/api/v1/api-keys/{leaked['id']}?cascade=true")

    assert response.status_code == 200
    assert sorted(response.json()["cascaded"]) == sorted([child["id"], grandchild["id"]])
    for key in (leaked, child, grandchild):
        assert key_client(key["key"]).get(f"/api/v1/sessions/{session.pk}").status_code == 401
    assert key_client(unrelated["key"]).get(f"/api/v1/sessions/{session.pk}").status_code == 200
