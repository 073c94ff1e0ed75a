from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from apps.core import metrics
from apps.core.errors import json_error
from apps.core.logging import request_id_var

REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestIdMiddleware:
    """Take the caller's X-Request-ID (or make one), log with it, and echo it back."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        given = request.headers.get("X-Request-ID", "")
        # fullmatch: "$" also matches before a final newline, which no header value may hold
        request_id = given if REQUEST_ID_PATTERN.fullmatch(given) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response["X-Request-ID"] = request_id
        return response


class RequestBodyLimitMiddleware:
    """413 before any view reads a body whose declared length is over the limit.

    The limit is MAX_REQUEST_BODY_BYTES, or the setting that the view class names in
    `request_body_limit_setting` (an upload that streams its body to storage).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return json_error(400, "invalid_content_length", "Content-Length is not a number.")
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view_func: Callable[..., HttpResponse], view_args: Any, view_kwargs: Any
    ) -> HttpResponse | None:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
        view_class = getattr(view_func, "cls", None) or getattr(view_func, "view_class", None)
        limit = getattr(settings, getattr(view_class, "request_body_limit_setting", "MAX_REQUEST_BODY_BYTES"))
        if length > limit:
            return json_error(413, "request_too_large", f"Request body exceeds {limit} bytes.")
        return None


# Label values come from closed sets: a client picks the method and the path, and every
# distinct label value is a new time series in every scrape from then on.
METRIC_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
OTHER_METHOD = "other"
UNRESOLVED_VIEW = "<unresolved>"


class PrometheusMiddleware:
    """Counts requests and their latency by view name, method and status.

    `view` is a URL name of the project (or UNRESOLVED_VIEW), `method` one of
    METRIC_METHODS or OTHER_METHOD.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        view = (match.view_name or match.url_name) if match else UNRESOLVED_VIEW
        method = request.method if request.method in METRIC_METHODS else OTHER_METHOD
        metrics.observe_http_request(
            view=view or "<unnamed>",
            method=method,
            status=response.status_code,
            seconds=time.perf_counter() - started,
        )
        return response


class NoStoreMiddleware:
    """`Cache-Control: no-store` on every answer to a request that carried credentials.

    What one user's credentials fetched must not be kept by a browser, a proxy or a shared
    cache for the next person. DRF authenticates inside the view and sets the user on the
    Django request, so this looks after the response: at the header as well as the user.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        user = getattr(request, "user", None)
        if "HTTP_AUTHORIZATION" in request.META or (user is not None and user.is_authenticated):
            response["Cache-Control"] = "no-store"
        return response
