"""Liveness, readiness and the Prometheus scrape: plain Django views, no auth."""

from __future__ import annotations

from celery import current_app
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET

from apps.core.metrics import render_latest
from apps.core.selectors import worker_live_list

BROKER_CHECK_TIMEOUT_SECONDS = 2.0


@require_GET
def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any driver error means not ready
        return f"database unreachable: {type(exc).__name__}"
    return None


def _check_broker() -> str | None:
    try:
        with current_app.connection_for_write(settings.CELERY_BROKER_URL) as conn:
            conn.ensure_connection(max_retries=1, timeout=BROKER_CHECK_TIMEOUT_SECONDS)
    except Exception as exc:
        return f"broker unreachable: {type(exc).__name__}"
    return None


def _check_workers() -> str | None:
    try:
        if not worker_live_list():
            return "no live worker"
    except Exception as exc:
        return f"cannot read worker heartbeats: {type(exc).__name__}"
    return None


@require_GET
def ready(request: HttpRequest) -> JsonResponse:
    checks = {
        "database": _check_database(),
        "broker": _check_broker(),
    }
    checks["workers"] = _check_workers() if checks["database"] is None else "database down"
    failing = {name: reason for name, reason in checks.items() if reason}
    body = {
        "status": "ready" if not failing else "not_ready",
        "checks": {name: (reason or "ok") for name, reason in checks.items()},
    }
    if failing:
        body["error"] = {
            "code": "not_ready",
            "message": "; ".join(f"{name}: {reason}" for name, reason in failing.items()),
            "fields": failing,
        }
    return JsonResponse(body, status=503 if failing else 200)


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    payload, content_type = render_latest()
    return HttpResponse(payload, content_type=content_type)
