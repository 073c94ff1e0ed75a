"""The dashboard page, server side (the live part runs in a browser: tests/e2e/test_dashboard_browser.py)."""

from __future__ import annotations

import pytest
from django.test import Client

from apps.runs.models import Run
from apps.sessions.services import session_create

pytestmark = pytest.mark.django_db


def signed_in(user: object) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_dashboard_needs_a_signed_in_person_and_the_login_page_leads_there(user):
    anonymous = Client()
    assert anonymous.get("/dashboard/")["Location"] == "/login/?next=/dashboard/"
    page = anonymous.get("/login/?next=/dashboard/")
    assert page.status_code == 200 and b'id="login-form"' in page.content
    signed = anonymous.post(
        "/login/", {"username": "alice", "password": "pw-unused-123", "next": "/dashboard/"}
    )
    assert signed.status_code == 302 and signed["Location"] == "/dashboard/"
    assert anonymous.get("/dashboard").status_code == 200  # without its slash too


def test_it_shows_the_persons_own_sessions_and_the_selected_sessions_runs(user, other_user):
    older = session_create(owner=user, name="older-session")
    busy = session_create(owner=user, name="busy-session")
    session_create(owner=other_user, name="mallorys-session")
    run = Run.objects.create(
        owner=user, session=busy, kind="sleep", queue="cpu", status="running", progress=0.4
    )

    page = signed_in(user).get("/dashboard/").content.decode()
    assert "older-session" in page and "busy-session" in page and "mallorys-session" not in page
    # the most recently used session is shown, its run with its status, progress and live stream
    assert f'data-run="{run.pk}" data-status="running"' in page and 'aria-valuenow="40"' in page
    assert f'data-session="{busy.pk}"' in page and f"/api/v1/sessions/{busy.pk}/events" in page
    assert f"/api/v1/plots/rd?session={busy.pk}" in page and "/admin/" not in page

    other = signed_in(user).get(f"/dashboard/?session={older.pk}").content.decode()
    assert f'data-session="{older.pk}"' in other and str(run.pk) not in other


def test_a_session_of_someone_else_is_not_found_and_staff_get_admin_links(user, other_user, admin_user):
    theirs = session_create(owner=other_user, name="theirs")
    assert signed_in(user).get(f"/dashboard/?session={theirs.pk}").status_code == 404
    assert signed_in(user).get("/dashboard/?session=not-a-uuid").status_code == 404
    mine = session_create(owner=admin_user, name="ada's")
    page = signed_in(admin_user).get("/dashboard/").content.decode()
    assert f"/admin/compute_sessions/session/{mine.pk}/change/" in page
