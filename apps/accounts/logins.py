"""Failed password logins limited per client address and per username, on the same cache
buckets as the API's rate limits (apps.core.ratelimit: Redis-backed, shared by every web process).

Every password login takes one request from both buckets before the password is checked, and
a login that succeeds gives it back: only failures count, and concurrent guesses cannot slip
past a check made before they fail. With a bucket empty the login is refused with 429 and
Retry-After, whatever the password. Usernames are compared trimmed, without inner whitespace,
NFKC-normalised and case-folded, so "Alice", " alice" and "ALICE" share one budget.

Covers the admin's login, the dashboard's and the API's POST /api/v1/auth/token (JWT).
"""

from __future__ import annotations

import hashlib
import json
import math
import unicodedata
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.html import escape
from rest_framework.throttling import BaseThrottle

from apps.core.errors import error_body
from apps.core.ratelimit import Limits, give_back, parse_limits, take

# URL names of the views that check a password: the admin's and the dashboard's sign-in
# forms, which redirect on success, and the JWT endpoint, which answers 200.
FORM_LOGINS = frozenset({"admin:login", "login"})
API_LOGINS = frozenset({"auth-token"})


def username_key(username: str) -> str:
    """One key for every spelling of a username a client could vary to dodge the limit."""
    folded = "".join(unicodedata.normalize("NFKC", username).casefold().split())
    return hashlib.sha256(folded.encode()).hexdigest()[:32]


def _username(request: HttpRequest, api: bool) -> str | None:
    field = get_user_model().USERNAME_FIELD
    if not api:
        value = request.POST.get(field)
    else:
        try:
            data = json.loads(request.body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            return None
        value = data.get(field) if isinstance(data, dict) else None
    return None if value is None else str(value)


def login_limits(request: HttpRequest, *, api: bool) -> Limits:
    address = BaseThrottle().get_ident(request)  # NUM_PROXIES, as the API's throttle reads it
    limits: Limits = [(f"login:addr:{address}", parse_limits(settings.LOGIN_FAILURES_PER_ADDRESS))]
    username = _username(request, api)
    if username:
        limits.append(
            (f"login:user:{username_key(username)}", parse_limits(settings.LOGIN_FAILURES_PER_USERNAME))
        )
    return limits


def _refused(api: bool, wait: float) -> HttpResponse:
    seconds = math.ceil(wait)
    message = f"Too many failed sign-in attempts for this username or address: retry in {seconds} s."
    if api:
        response: HttpResponse = JsonResponse(error_body("throttled", message), status=429)
    else:
        # the admin's and the dashboard's pages are HTML
        response = HttpResponse(
            "<!doctype html><title>Too many attempts</title>"
            f"<h1>Too many attempts</h1><p>{escape(message)}</p>",
            status=429,
            content_type="text/html; charset=utf-8",
        )
    response["Retry-After"] = str(seconds)
    return response


class LoginThrottleMiddleware:
    """After CSRF's check (last in MIDDLEWARE): the login views' POSTs spend from the failure
    budgets (process_view, once the URL is resolved and the body limit enforced); a success
    gives the spending back."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        spent: tuple[Limits, bool] | None = getattr(request, "_login_spent", None)
        if spent is not None:
            limits, api = spent
            succeeded = 200 <= response.status_code < 300 if api else response.status_code == 302
            if succeeded:
                give_back(limits)
        return response

    def process_view(
        self, request: HttpRequest, view_func: Callable[..., HttpResponse], view_args: Any, view_kwargs: Any
    ) -> HttpResponse | None:
        match = request.resolver_match
        name = match.view_name if match else None
        if request.method != "POST" or name not in FORM_LOGINS | API_LOGINS:
            return None
        api = name in API_LOGINS
        limits = login_limits(request, api=api)
        wait = take(limits)
        if wait > 0:
            return _refused(api, wait)
        request._login_spent = (limits, api)  # type: ignore[attr-defined]
        return None
