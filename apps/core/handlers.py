"""JSON error pages for requests that never reach a DRF view (unknown URLs, crashes)."""

from __future__ import annotations

import sys

from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import csrf

from apps.core.errors import DATABASE_UNAVAILABLE, database_unavailable, json_error


def not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return json_error(404, "not_found", "Not found.")


def bad_request(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    if isinstance(exception, DisallowedHost):
        # A Host header not in ALLOWED_HOSTS never reaches a view, so no link is built from it.
        return json_error(400, "disallowed_host", "The Host header names no host this server serves.")
    return json_error(400, "bad_request", "Bad request.")


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return json_error(403, "permission_denied", "You do not have permission to do this.")


def server_error(request: HttpRequest) -> JsonResponse:
    # Django calls this inside its `except`: a database outage met outside a DRF view (the
    # session or auth middleware, the admin) is a 503 there too.
    if isinstance(sys.exc_info()[1], DATABASE_UNAVAILABLE):
        return database_unavailable()
    return json_error(500, "server_error", "Internal server error.")


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW: the error shape, but for the admin, which keeps Django's page."""
    if request.path.startswith("/admin/"):
        return csrf.csrf_failure(request, reason)
    return json_error(403, "csrf_failed", f"CSRF check failed: {reason}")
