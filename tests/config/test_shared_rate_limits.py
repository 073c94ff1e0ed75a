"""Rate limits hold across web processes: two gunicorn servers sharing one Redis cache
spend one budget between them (with a per-process cache each would allow its own)."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable

import pytest
from rest_framework.authtoken.models import Token

from tests.config.test_gunicorn import start_server  # noqa: F401 (fixture)

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _get(url: str, token: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"Token {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (local URL)
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_two_processes_share_one_budget_through_redis(user, start_server: Callable[..., int]):  # noqa: F811
    token = Token.objects.create(user=user).key
    cache_url = f"{os.environ['CELERY_BROKER_URL']}?key_prefix=ratelimit-{uuid.uuid4().hex}"
    ports = [start_server(CACHE_URL=cache_url, THROTTLE_USER="4/hour") for _ in range(2)]

    statuses = []
    for index in range(6):
        status, headers, body = _get(f"http://127.0.0.1:{ports[index % 2]}/api/v1/sessions", token)
        statuses.append(status)

    # four between them, not four each
    assert statuses == [200, 200, 200, 200, 429, 429]
    assert int(headers["Retry-After"]) > 0
    assert json.loads(body)["error"]["code"] == "throttled"
