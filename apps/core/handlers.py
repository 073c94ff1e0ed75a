"""JSON error pages for requests that never reach a DRF view (unknown URLs, crashes)."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse

from apps.core.errors import json_error


def not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return json_error(404, "not_found", "Not found.")


def bad_request(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return json_error(400, "bad_request", "Bad request.")


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return json_error(403, "permission_denied", "You do not have permission to do this.")


def server_error(request: HttpRequest) -> JsonResponse:
    return json_error(500, "server_error", "Internal server error.")
