from __future__ import annotations

import pytest
from django.test import Client, override_settings
from django.utils import timezone

from apps.core.metrics import forget_cached_figures
from apps.core.services import worker_heartbeat_record
from apps.runs.models import Run, RunStatus

pytestmark = pytest.mark.django_db


def test_health_needs_no_auth():
    response = Client().get("/health")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_ready_is_503_naming_the_missing_worker():
    response = Client().get("/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["database"] == "ok" and body["checks"]["broker"] == "ok"
    assert body["checks"]["workers"] == "no live worker"
    assert "workers" in body["error"]["message"]


def test_ready_is_200_with_a_live_worker():
    worker_heartbeat_record(hostname="w1@host", queues=["cpu"], pid=1)
    response = Client().get("/ready")
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "ready"


@override_settings(CELERY_BROKER_URL="redis://127.0.0.1:1/0")
def test_ready_names_a_broker_that_is_down():
    worker_heartbeat_record(hostname="w1@host", queues=["cpu"], pid=1)
    response = Client().get("/ready")
    assert response.status_code == 503
    assert response.json()["checks"]["broker"].startswith("broker unreachable")
    assert response.json()["checks"]["workers"] == "ok"


def test_metrics_expose_http_and_run_figures(api, session):
    forget_cached_figures()
    api.get("/api/v1/sessions")
    run = Run.objects.create(owner=session.owner, session=session, kind="echo", queue="cpu")
    now = timezone.now()
    Run.objects.filter(pk=run.pk).update(
        status=RunStatus.SUCCEEDED, started_at=now, finished_at=now, duration_seconds=0.3
    )
    Run.objects.create(owner=session.owner, session=session, kind="sleep", queue="cpu", status="queued")

    response = Client().get("/metrics")
    assert response.status_code == 200
    text = response.content.decode()
    assert 'limitgraph_http_requests_total{method="GET",status="200",view="session-list"}' in text
    assert 'limitgraph_runs_submitted_total{kind="echo"} 1.0' in text
    assert 'limitgraph_runs_finished_total{kind="echo",status="succeeded"} 1.0' in text
    assert 'limitgraph_run_duration_seconds_bucket{kind="echo",le="0.1",queue="cpu"} 0.0' in text
    assert 'limitgraph_run_duration_seconds_bucket{kind="echo",le="0.5",queue="cpu"} 1.0' in text
    assert 'limitgraph_run_duration_seconds_count{kind="echo",queue="cpu"} 1.0' in text
    assert 'limitgraph_queue_depth{queue="cpu"} 1.0' in text


def test_scrapes_within_the_ttl_reuse_the_database_figures(django_assert_num_queries):
    from apps.core.metrics import render_latest

    forget_cached_figures()
    render_latest()
    with django_assert_num_queries(0):
        payload, _ = render_latest()
    assert b"limitgraph_workers_alive" in payload


def test_ready_reports_a_missing_sandbox_without_failing():
    worker_heartbeat_record(hostname="w1@host", queues=["cpu"], pid=1)
    body = Client().get("/ready").json()
    assert body["status"] == "ready" and "sandbox" not in body["checks"]
    assert body["details"]["sandbox"]["status"] == "no_worker"


def test_ready_names_why_the_sandbox_is_unavailable():
    report = {"available": False, "mode": None, "reason": "bubblewrap (bwrap) is not installed: install it"}
    worker_heartbeat_record(hostname="w1@host", queues=["sandbox"], pid=1, capabilities={"sandbox": report})
    response = Client().get("/ready")
    assert response.status_code == 200
    sandbox = response.json()["details"]["sandbox"]
    assert sandbox["status"] == "unavailable"
    assert sandbox["message"] == "w1@host: bubblewrap (bwrap) is not installed: install it"
    assert sandbox["workers"]["w1@host"]["available"] is False


@override_settings(SANDBOX_REQUIRED=True)
def test_ready_is_503_without_a_usable_sandbox_when_it_is_required():
    worker_heartbeat_record(hostname="w1@host", queues=["cpu"], pid=1)
    response = Client().get("/ready")
    assert response.status_code == 503
    assert response.json()["checks"]["sandbox"].startswith("sandbox no_worker")
    report = {"available": True, "mode": "bwrap", "reason": ""}
    worker_heartbeat_record(hostname="w2@host", queues=["sandbox"], pid=2, capabilities={"sandbox": report})
    response = Client().get("/ready")
    assert response.status_code == 200 and response.json()["checks"]["sandbox"] == "ok"
    assert response.json()["details"]["sandbox"]["status"] == "ok"
