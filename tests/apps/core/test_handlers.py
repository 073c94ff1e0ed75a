"""A database outage met outside a DRF view is a 503 with Retry-After, not a 500."""

from __future__ import annotations

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.db import OperationalError
from django.test import Client


@pytest.mark.django_db
def test_the_admin_meeting_a_lost_database_answers_503_in_the_error_shape(monkeypatch, settings):
    def lost(self):
        raise OperationalError("connection to server at 127.0.0.1 failed: Connection refused")

    monkeypatch.setattr(SessionStore, "load", lost)
    client = Client(raise_request_exception=False)
    client.cookies[settings.SESSION_COOKIE_NAME] = "a" * 32

    response = client.get("/admin/")

    assert response.status_code == 503
    assert response["Retry-After"] == str(settings.DATABASE_RETRY_AFTER_SECONDS)
    assert response.json()["error"]["code"] == "database_unavailable"


@pytest.mark.django_db
def test_an_api_view_meeting_a_lost_database_answers_503(monkeypatch, api):
    from django.db.models.query import QuerySet

    def lost(*args, **kwargs):
        raise OperationalError("the connection pool lent no connection in time")

    monkeypatch.setattr(QuerySet, "_fetch_all", lost)
    response = api.get("/api/v1/sessions")

    assert response.status_code == 503 and int(response["Retry-After"]) > 0
    assert response.json()["error"]["code"] == "database_unavailable"
