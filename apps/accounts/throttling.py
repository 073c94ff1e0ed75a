"""Rate limits per client (API key, token, JWT user, session user or address), shared by
every web process through the cache (apps.core.ratelimit).

RATE_LIMITS (config/settings.py) holds the limits, each a string like "60/min:10,1000/hour":

- "anon": clients without credentials (by address); "user": clients with credentials;
- "role:<role>" (admin, reviewer, submitter): replaces "user" for clients with that role
  (the highest role that has an entry);
- "view:<url name>" and "view:<url name>:<role or anon>": an extra limit on one endpoint,
  counted apart from the client's general one (the role's entry first).

"none" lifts a limit.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import TYPE_CHECKING

from django.conf import settings
from rest_framework import exceptions
from rest_framework.authtoken.models import Token
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from apps.accounts import roles
from apps.accounts.models import ApiKey
from apps.core.ratelimit import Bucket, parse_limits, take

if TYPE_CHECKING:  # rest_framework.views imports this module through its settings
    from rest_framework.views import APIView


@lru_cache(maxsize=256)
def _buckets(spec: str) -> tuple[Bucket, ...]:
    return parse_limits(spec)


def client_identity(request: Request, address: str) -> str:
    """Whose budget a request spends: its credential's, else its address's."""
    auth = request.auth
    if isinstance(auth, ApiKey):
        return f"key:{auth.pk}"
    if isinstance(auth, Token):
        return f"token:{auth.user_id}"
    user = request.user
    if user is not None and user.is_authenticated:
        # a JWT or a session: one budget per user, however many tokens they hold
        return f"user:{user.pk}"
    return f"addr:{address}"


def _role(request: Request, configured: dict[str, str]) -> str:
    user = request.user
    if user is None or not user.is_authenticated:
        return "anon"
    if not any(name.startswith("role:") or name.count(":") == 2 for name in configured):
        return "user"  # no role has limits of its own: spare the group query
    for role, holds in ((roles.ADMIN, roles.is_admin), (roles.REVIEWER, roles.is_reviewer)):
        if holds(user):
            return role
    return roles.SUBMITTER


class ClientRateThrottle(BaseThrottle):
    """DRF throttle over RATE_LIMITS; a refusal is a 429 naming the limit, with Retry-After."""

    def allow_request(self, request: Request, view: APIView) -> bool:
        configured: dict[str, str] = settings.RATE_LIMITS
        role = _role(request, configured)
        general = configured.get(f"role:{role}") if role != "anon" else None
        if general is None:
            general = configured.get("anon" if role == "anon" else "user", "")
        identity = client_identity(request, self.get_ident(request))
        limits = [(f"client:{identity}", _buckets(general))]
        match = getattr(request, "resolver_match", None)
        name = match.url_name if match else None
        if name:
            endpoint = configured.get(f"view:{name}:{role}") or configured.get(f"view:{name}")
            if endpoint:
                limits.append((f"view:{name}:{identity}", _buckets(endpoint)))
        wait = take(limits)
        if wait > 0:
            described = "; ".join(str(bucket) for _, buckets in limits for bucket in buckets)
            seconds = math.ceil(wait)
            raise exceptions.Throttled(
                wait=seconds, detail=f"Rate limit exceeded ({described}): retry in {seconds} s."
            )
        return True
