"""JWT access and refresh tokens beside tokens and API keys: refresh rotates, the used
refresh token is blacklisted, and blacklisting is a log-out."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

PASSWORD = "pw-unused-123"  # tests/conftest.py's make_user


def _pair(username: str) -> dict:
    response = APIClient().post(
        "/api/v1/auth/token", {"username": username, "password": PASSWORD}, format="json"
    )
    assert response.status_code == 200, response.json()
    return response.json()


def _bearer(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def test_an_access_token_authenticates_as_its_user(user, other_user, session):
    pair = _pair(user.username)

    assert _bearer(pair["access"]).get(f"/api/v1/sessions/{session.pk}").status_code == 200
    # owner scoping holds for JWT like for any credential
    other = _pair(other_user.username)
    assert _bearer(other["access"]).get(f"/api/v1/sessions/{session.pk}").status_code == 404


def test_a_wrong_password_is_a_401_in_the_error_shape(user):
    response = APIClient().post(
        "/api/v1/auth/token", {"username": user.username, "password": "no"}, format="json"
    )

    assert response.status_code == 401
    assert set(response.json()["error"]) == {"code", "message", "fields"}


def test_a_forged_access_token_is_refused(user):
    pair = _pair(user.username)
    header, payload, signature = pair["access"].split(".")
    forged = f"{header}.{payload}.{signature[::-1]}"

    response = _bearer(forged).get("/api/v1/sessions")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "token_not_valid"


def test_refresh_rotates_and_a_used_refresh_token_is_dead(user):
    pair = _pair(user.username)

    refreshed = APIClient().post("/api/v1/auth/token/refresh", {"refresh": pair["refresh"]}, format="json")
    assert refreshed.status_code == 200
    assert set(refreshed.json()) == {"access", "refresh"} and refreshed.json()["refresh"] != pair["refresh"]
    assert _bearer(refreshed.json()["access"]).get("/api/v1/sessions").status_code == 200

    replayed = APIClient().post("/api/v1/auth/token/refresh", {"refresh": pair["refresh"]}, format="json")
    assert replayed.status_code == 401


def test_blacklisting_logs_out(user):
    pair = _pair(user.username)

    response = APIClient().post("/api/v1/auth/token/blacklist", {"refresh": pair["refresh"]}, format="json")

    assert response.status_code == 200
    again = APIClient().post("/api/v1/auth/token/refresh", {"refresh": pair["refresh"]}, format="json")
    assert again.status_code == 401


def test_a_jwt_login_may_create_api_keys(user):
    pair = _pair(user.username)

    response = _bearer(pair["access"]).post("/api/v1/api-keys", {"name": "from-jwt"}, format="json")

    assert response.status_code == 201
