"""Responses to credentials are never cached; HTTPS settings by variable; CORS closed
unless origins are named."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client, override_settings
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


def test_answers_to_credentials_are_no_store(api, user, session):
    session_client = Client()
    session_client.force_login(user)
    key = api.post("/api/v1/api-keys", {"name": "k"}, format="json").json()["key"]
    key_client = APIClient()
    key_client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")

    for client in (api, session_client, key_client):
        for url in (f"/api/v1/sessions/{session.pk}", "/api/v1/sessions", "/api/v1/runs/not-a-run"):
            assert client.get(url)["Cache-Control"] == "no-store", url
    # a refused credential too: the error says whose key it was not
    bad = APIClient()
    bad.credentials(HTTP_AUTHORIZATION="Api-Key lg_nope_nope")
    assert bad.get("/api/v1/sessions")["Cache-Control"] == "no-store"


def test_anonymous_probes_are_not_marked():
    assert "no-store" not in Client().get("/health").get("Cache-Control", "")


def _settings(expression: str, **env: str) -> object:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json, django; django.setup(); from django.conf import settings; "
            f"print(json.dumps({expression}))",
        ],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


SECURITY = (
    "[settings.SECURE_HSTS_SECONDS, settings.SESSION_COOKIE_SECURE, settings.CSRF_COOKIE_SECURE, "
    "getattr(settings, 'SECURE_PROXY_SSL_HEADER', None), settings.CORS_ALLOWED_ORIGINS]"
)


def test_https_settings_are_off_by_default_and_on_by_variable():
    assert _settings(SECURITY) == [0, False, False, None, []]
    assert _settings(
        SECURITY,
        SECURE_HSTS_SECONDS="31536000",
        SECURE_COOKIES="1",
        SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO,https",
        CORS_ALLOWED_ORIGINS="https://app.example,https://other.example",
    ) == [
        31536000,
        True,
        True,
        ["HTTP_X_FORWARDED_PROTO", "https"],
        ["https://app.example", "https://other.example"],
    ]


@override_settings(SECURE_HSTS_SECONDS=3600, SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"))
def test_hsts_is_sent_on_https_behind_the_proxy():
    secure = Client().get("/health", HTTP_X_FORWARDED_PROTO="https")
    plain = Client().get("/health")

    assert secure["Strict-Transport-Security"] == "max-age=3600"
    assert "Strict-Transport-Security" not in plain


def _preflight(origin: str):
    return Client().options(
        "/api/v1/sessions",
        HTTP_ORIGIN=origin,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization,content-type",
    )


def test_cors_is_closed_by_default():
    response = _preflight("https://app.example")

    assert "Access-Control-Allow-Origin" not in response


@override_settings(CORS_ALLOWED_ORIGINS=["https://app.example"])
def test_cors_opens_to_the_named_origins_only():
    allowed = _preflight("https://app.example")
    other = _preflight("https://evil.example")

    assert allowed["Access-Control-Allow-Origin"] == "https://app.example"
    assert "authorization" in allowed["Access-Control-Allow-Headers"]
    assert "Access-Control-Allow-Credentials" not in allowed
    assert "Access-Control-Allow-Origin" not in other
