"""One error shape for every 4xx/5xx the API returns.

    {"error": {"code": "...", "message": "...", "fields": {...}}}

`code` is stable (clients branch on it); `message` is for people; `fields`
maps an input field to its problems (nested for nested input).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from apps.core.exceptions import ApplicationError


def error_body(code: str, message: str, fields: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def json_error(status_code: int, code: str, message: str) -> JsonResponse:
    return JsonResponse(error_body(code, message), status=status_code)


# What a lost or refused database connection raises (a pool that cannot lend one in time
# included): the request can be retried, so it is a 503, not a crash.
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError)


def database_unavailable() -> JsonResponse:
    message = "The database is unavailable for a moment; nothing was stored. Retry later."
    response = json_error(503, "database_unavailable", message)
    response["Retry-After"] = str(settings.DATABASE_RETRY_AFTER_SECONDS)
    return response


def _flatten_detail(detail: Any) -> Any:
    """ErrorDetail trees -> plain lists/dicts of strings."""
    if isinstance(detail, dict):
        return {str(key): _flatten_detail(value) for key, value in detail.items()}
    if isinstance(detail, list):
        return [_flatten_detail(item) for item in detail]
    return str(detail)


def _first_message(fields: Any) -> str:
    if isinstance(fields, dict):
        for key, value in fields.items():
            message = _first_message(value)
            return message if key == "non_field_errors" else f"{key}: {message}"
    if isinstance(fields, list) and fields:
        return _first_message(fields[0])
    return str(fields)


def application_error_response(exc: ApplicationError) -> Response:
    fields = _flatten_detail(exc.fields)
    message = exc.message
    if fields and exc.code == "invalid" and message == exc.default_message:
        message = f"Invalid input. {_first_message(fields)}"
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
    return Response(error_body(exc.code, message, fields), status=exc.status, headers=headers)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ApplicationError):
        return application_error_response(exc)
    if isinstance(exc, DATABASE_UNAVAILABLE):
        return database_unavailable()
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # unexpected: let Django log it and answer 500

    detail = exc.detail if isinstance(exc, exceptions.APIException) else response.data
    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten_detail(detail if isinstance(detail, dict) else {"non_field_errors": detail})
        code = "invalid"
        message = f"Invalid input. {_first_message(fields)}"
    else:
        fields = {}
        if isinstance(detail, dict) and "detail" in detail:
            # {"detail", "code", "messages"}: simplejwt's refusals, whose `code` says which
            code = str(detail.get("code") or "error")
            message = str(detail["detail"])
        else:
            codes = exc.get_codes() if isinstance(exc, exceptions.APIException) else "error"
            code = codes if isinstance(codes, str) else "error"
            message = _first_message(_flatten_detail(detail))
    response.data = error_body(code, message, fields)
    return response
