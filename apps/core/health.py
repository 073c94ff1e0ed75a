"""Liveness, readiness and the Prometheus scrape: plain Django views.

/health and /ready need no credentials; /metrics answers the addresses in
METRICS_ALLOWED_IPS (loopback by default, so a Prometheus on the same host works as
it is) and any client with `Authorization: Bearer <METRICS_BEARER_TOKEN>`.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Callable
from functools import wraps
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from apps.core.errors import json_error
from apps.core.metrics import render_latest
from apps.core.queues import Queue
from apps.core.selectors import worker_live_list

# Set by a reverse proxy: a request that carries one came through it, so its REMOTE_ADDR
# (the proxy's, often loopback) says nothing about the client.
FORWARDING_HEADERS = ("HTTP_FORWARDED", "HTTP_X_FORWARDED_FOR", "HTTP_X_REAL_IP")


def read_only_json_view(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """GET and HEAD only; another method is a JSON 405 naming them.

    CSRF-exempt: these views change nothing, and CsrfViewMiddleware would otherwise
    answer a POST with Django's HTML page before the method is even looked at.
    """

    @wraps(view)
    def wrapper(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        if request.method not in ("GET", "HEAD"):
            response = json_error(405, "method_not_allowed", f'Method "{request.method}" not allowed.')
            response["Allow"] = "GET, HEAD"
            return response
        return view(request, *args, **kwargs)

    return csrf_exempt(wrapper)


BROKER_CHECK_TIMEOUT_SECONDS = 2.0

# Extra entries of /ready's `details`, filled by the apps that own them (apps.core imports no
# domain app): name -> a function returning a JSON-ready dict. They inform; they never make
# /ready fail, and one that raises reports its error instead.
_READY_DETAILS: dict[str, Callable[[], dict[str, Any]]] = {}


def register_ready_detail(name: str, report: Callable[[], dict[str, Any]]) -> None:
    _READY_DETAILS[name] = report


def _extra_details() -> dict[str, Any]:
    details = {}
    for name, report in _READY_DETAILS.items():
        try:
            details[name] = report()
        except Exception as exc:
            details[name] = {"status": "unknown", "message": f"{type(exc).__name__}: {exc}"[:300]}
    return details


@read_only_json_view
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


def _sandbox_details() -> dict[str, Any]:
    """The python sandbox as the live workers on its queue report it (each checks its own
    at start: bubblewrap present, a trivial program runs)."""
    try:
        workers = worker_live_list(queue=Queue.SANDBOX.value)
    except Exception as exc:
        return {"status": "unknown", "message": f"cannot read worker heartbeats: {type(exc).__name__}"}
    reports = {worker.hostname: (worker.capabilities or {}).get("sandbox") or {} for worker in workers}
    if not reports:
        return {"status": "no_worker", "message": "no live worker serves the sandbox queue", "workers": {}}
    usable = {host: report for host, report in reports.items() if report.get("available")}
    if any(report.get("mode") == "bwrap" for report in usable.values()):
        status, message = "ok", "python runs are sandboxed (bubblewrap)"
    elif usable:
        status, message = "unsandboxed", "python runs WITHOUT isolation (SANDBOX_ALLOW_UNSANDBOXED)"
    else:
        status = "unavailable"
        message = "; ".join(
            f"{host}: {report.get('reason') or 'no sandbox reported'}" for host, report in reports.items()
        )
    workers_detail = {
        host: {key: report.get(key) for key in ("available", "mode", "reason", "bwrap", "checked_at")}
        for host, report in reports.items()
    }
    return {"status": status, "message": message, "workers": workers_detail}


@read_only_json_view
def ready(request: HttpRequest) -> JsonResponse:
    checks = {
        "database": _check_database(),
        "broker": _check_broker(),
    }
    checks["workers"] = _check_workers() if checks["database"] is None else "database down"
    sandbox = _sandbox_details() if checks["database"] is None else {"status": "unknown"}
    if settings.SANDBOX_REQUIRED:
        # Only where python runs are the point of the deployment: elsewhere a platform
        # without sandbox workers still serves every other kind, so /ready only reports it.
        usable = sandbox["status"] in ("ok", "unsandboxed")
        checks["sandbox"] = None if usable else f"sandbox {sandbox['status']}: {sandbox.get('message', '')}"
    failing = {name: reason for name, reason in checks.items() if reason}
    body: dict[str, Any] = {
        "status": "ready" if not failing else "not_ready",
        "checks": {name: (reason or "ok") for name, reason in checks.items()},
        "details": {"sandbox": sandbox, **_extra_details()},
    }
    if failing:
        body["error"] = {
            "code": "not_ready",
            "message": "; ".join(f"{name}: {reason}" for name, reason in failing.items()),
            "fields": failing,
        }
    return JsonResponse(body, status=503 if failing else 200)


def _metrics_allowed(request: HttpRequest) -> bool:
    token = settings.METRICS_BEARER_TOKEN
    if token:
        given = request.headers.get("Authorization", "")
        if hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return True
    if any(request.META.get(header) for header in FORWARDING_HEADERS):
        return False
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(
        address in ipaddress.ip_network(allowed, strict=False) for allowed in settings.METRICS_ALLOWED_IPS
    )


@read_only_json_view
def metrics(request: HttpRequest) -> HttpResponse:
    if not _metrics_allowed(request):
        return json_error(
            403,
            "metrics_forbidden",
            "Send 'Authorization: Bearer <METRICS_BEARER_TOKEN>', or scrape from an address in "
            "METRICS_ALLOWED_IPS.",
        )
    payload, content_type = render_latest()
    return HttpResponse(payload, content_type=content_type)
