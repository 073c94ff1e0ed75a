"""Every admin page a reviewer uses renders, and the run admin's cancel works."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from apps.rd.services import rd_sweep_record
from apps.runs.models import Run, RunStatus
from apps.runs.services import run_submit
from apps.traces.models import Trace

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(session):
    admin = get_user_model().objects.create_superuser("root", "root@example.com", "pw-unused-123")
    client = Client()
    client.force_login(admin)
    run, _ = run_submit(user=session.owner, session_id=session.pk, kind="echo", payload={"x": 1})
    points = [{"level": level, "rate": 1.0 / level, "distortion": 0.1 * level} for level in (1, 2, 3)]
    rd_sweep_record(run=run, nodes=3, points=points, knee=points[1])
    return client


@pytest.mark.parametrize(
    "model",
    [
        "runs.run",
        "traces.trace",
        "compute_sessions.session",
        "accounts.apikey",
        "core.workerheartbeat",
        "rd.rdcurve",
    ],
)
def test_changelists_render(admin_client, model):
    app_label, model_name = model.split(".")
    response = admin_client.get(reverse(f"admin:{app_label}_{model_name}_changelist"))
    assert response.status_code == 200


def test_admin_is_branded_with_a_link_to_the_api_docs(admin_client):
    body = admin_client.get(reverse("admin:index")).content.decode()
    assert "limitgraph" in body and 'href="/api/v1/docs/"' in body


def test_trace_page_shows_its_chain(admin_client):
    trace = Trace.objects.get()
    response = admin_client.get(reverse("admin:traces_trace_change", args=[trace.pk]))
    assert response.status_code == 200
    body = response.content.decode()
    assert "valid (1 entries)" in body and "trace.created" in body


def test_cancel_action(admin_client):
    run = Run.objects.get()
    response = admin_client.post(
        reverse("admin:runs_run_changelist"),
        {"action": "cancel", "_selected_action": [str(run.pk)]},
        follow=True,
    )
    assert response.status_code == 200
    assert Run.objects.get(pk=run.pk).status == RunStatus.CANCELLED
