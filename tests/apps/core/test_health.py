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
