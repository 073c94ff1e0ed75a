from __future__ import annotations

import hashlib

import pytest
from django.core.management import call_command
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
