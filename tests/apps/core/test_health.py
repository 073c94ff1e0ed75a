from __future__ import annotations

import re

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


@pytest.mark.parametrize("path", ["/health", "/ready", "/metrics"])
@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_other_methods_are_a_json_405_not_a_csrf_page(path, method):
    # CsrfViewMiddleware used to answer these with Django's HTML 403 page
    response = Client(enforce_csrf_checks=True).generic(method, path)

    assert response.status_code == 405
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "method_not_allowed"
    assert response["Allow"] == "GET, HEAD"


def test_metrics_refuse_an_address_outside_the_allow_list():
    response = Client(REMOTE_ADDR="203.0.113.9").get("/metrics")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "metrics_forbidden"


def test_metrics_answer_loopback_by_default():
    assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="::1").get("/metrics").status_code == 200


def test_metrics_refuse_a_proxied_request_even_from_loopback():
    # a reverse proxy on the same host connects from 127.0.0.1 on everyone's behalf
    client = Client(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.9")

    assert client.get("/metrics").status_code == 403


@override_settings(METRICS_BEARER_TOKEN="s3cret-scrape-token", METRICS_ALLOWED_IPS=[])
def test_metrics_with_a_bearer_token_from_anywhere():
    client = Client(REMOTE_ADDR="203.0.113.9")

    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-scrape-token").status_code == 200
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    assert client.get("/metrics").status_code == 403
    assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics").status_code == 403


@override_settings(METRICS_ALLOWED_IPS=["10.0.0.0/8"])
def test_metrics_allow_list_takes_networks():
    assert Client(REMOTE_ADDR="10.20.30.40").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="11.0.0.1").get("/metrics").status_code == 403


def test_metric_labels_come_from_closed_sets():
    # given requests with methods and paths a client made up
    client = Client()
    for index in range(20):
        client.generic(f"RANDOM{index}", f"/no-such-path-{index}")
        client.generic(f"BREW{index}", "/health")

    text = client.get("/metrics").content.decode()
    methods = set(re.findall(r'limitgraph_http_requests_total\{method="([^"]*)"', text))
    views = set(re.findall(r'limitgraph_http_requests_total\{[^}]*view="([^"]*)"', text))

    # then they fold into one value each
    assert methods <= {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "other"}
    assert "other" in methods
    assert not any(view.startswith("/no-such-path") for view in views)
    assert 'method="other",status="404",view="<unresolved>"' in text
    assert 'method="other",status="405",view="health"' in text
