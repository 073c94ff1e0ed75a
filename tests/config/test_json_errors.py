"""Every error the project's URLs answer is in the JSON error shape: wrong methods, missing
CSRF tokens, foreign Host headers. Django's admin keeps its own HTML pages."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from tests.config.test_urls import ROUTES, _concrete

pytestmark = pytest.mark.django_db

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "BREW"]
# Pages for people in a browser (the dashboard and its sign-in, Django's auth views) answer in
# HTML, like the admin; every API and probe route answers in JSON.
HTML_PAGES = ("login/", "logout/", "dashboard/")


def _assert_json_error(response, where: str) -> None:
    if response.status_code < 400:
        return
    # JSON, or the schema view's own JSON media type
    assert response["Content-Type"].endswith("json"), (where, response.status_code, response.content[:200])
    error = response.json()["error"]
    assert set(error) == {"code", "message", "fields"}, where


@pytest.fixture
def session_client(user) -> Client:
    # a browser's session login, without the CSRF token a browser page would send
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


@pytest.mark.parametrize("route", [route for route in ROUTES if route not in HTML_PAGES])
def test_every_method_on_every_route_fails_in_json(route, session_client):
    path = _concrete(route)
    for client_name, client in (("anonymous", Client(enforce_csrf_checks=True)), ("session", session_client)):
        for method in METHODS:
            response = client.generic(method, path, data=b"{}", content_type="application/json")
            _assert_json_error(response, f"{client_name} {method} {path}")


def test_a_session_post_without_a_csrf_token_is_a_json_403(session_client):
    response = session_client.post("/api/v1/sessions", data=b'{"name": "x"}', content_type="application/json")

    assert response.status_code == 403
    assert "CSRF" in response.json()["error"]["message"]


def test_django_csrf_failures_are_json_outside_the_admin(rf):
    from django.middleware.csrf import _get_failure_view

    from apps.core.handlers import csrf_failure

    assert _get_failure_view() is csrf_failure  # CSRF_FAILURE_VIEW
    api = csrf_failure(rf.post("/health"), reason="CSRF cookie not set.")
    admin = csrf_failure(rf.post("/admin/login/"), reason="CSRF cookie not set.")

    assert api.status_code == 403 and api["Content-Type"] == "application/json"
    assert json.loads(api.content)["error"]["code"] == "csrf_failed"
    assert admin.status_code == 403 and admin["Content-Type"].startswith("text/html")


def test_a_foreign_host_is_a_json_400_and_never_reaches_a_link():
    response = Client(HTTP_HOST="evil.example").get("/api/v1/")

    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "disallowed_host"
    assert b"evil.example" not in response.content
