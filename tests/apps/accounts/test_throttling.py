"""Rate limits: token buckets per API key, token or address, per role and per endpoint,
429 with Retry-After in the error shape. Rates here are per hour, so no test depends on
how fast the machine is: a bucket refills in minutes, not while a test runs."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest
from django.core.cache import caches
from django.test import override_settings
from rest_framework.test import APIClient

from apps.core.ratelimit import Bucket, parse_limits
from tests.conftest import client_for, with_role

pytestmark = pytest.mark.django_db

OPEN = "100000/min"


@pytest.fixture(autouse=True)
def fresh_counters():
    caches["default"].clear()
    yield
    caches["default"].clear()


def limits(**entries: str) -> override_settings:
    return override_settings(RATE_LIMITS={"user": OPEN, "anon": OPEN, **entries})


def _statuses(client: APIClient, count: int, url: str = "/api/v1/sessions") -> list[int]:
    return [client.get(url).status_code for _ in range(count)]


def test_limits_are_written_rate_period_and_burst():
    assert parse_limits("60/min:10,1000/hour") == (
        Bucket(rate=60, period=60, burst=10),
        Bucket(rate=1000, period=3600, burst=1000),
    )
    assert parse_limits("5/s") == (Bucket(rate=5, period=1, burst=5),)
    assert parse_limits("none") == () and parse_limits("") == ()
    for bad in ("60", "60/fortnight", "0/min", "5/min:0", "ten/min"):
        with pytest.raises(ValueError):
            parse_limits(bad)


def test_the_burst_is_a_token_bucket_and_the_refusal_a_429_with_retry_after(api):
    with limits(user="6/hour:3"):
        assert _statuses(api, 3) == [200, 200, 200]

        response = api.get("/api/v1/sessions")

    assert response.status_code == 429
    # one token every 10 minutes
    assert 590 <= int(response["Retry-After"]) <= 600
    error = response.json()["error"]
    assert error["code"] == "throttled" and "6/hour (burst 3)" in error["message"]


def test_every_bucket_of_a_limit_counts(api):
    with limits(user="1000/hour:1000,3/day"):
        assert _statuses(api, 4) == [200, 200, 200, 429]


def test_a_refused_request_takes_no_token(api):
    with limits(user="2/hour"):
        assert _statuses(api, 2) == [200, 200]
        assert _statuses(api, 5) == [429] * 5
    with limits(user="3/hour"):  # another bucket: the refusals above spent nothing
        assert _statuses(api, 4) == [200, 200, 200, 429]


def test_each_api_key_token_and_address_has_its_own_budget(api, other_api, user):
    keys = [api.post("/api/v1/api-keys", {"name": f"k{i}"}, format="json").json()["key"] for i in range(2)]
    key_clients = []
    for key in keys:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
        key_clients.append(client)

    with limits(user="2/hour", anon="1/hour"):
        for client in (api, other_api, *key_clients):
            assert _statuses(client, 3) == [200, 200, 429]
        here, there = APIClient(REMOTE_ADDR="192.0.2.1"), APIClient(REMOTE_ADDR="192.0.2.2")
        assert _statuses(here, 2, "/api/v1/") == [200, 429]
        assert _statuses(there, 1, "/api/v1/") == [200]


def test_an_endpoint_limit_counts_apart_from_the_general_one(api):
    with limits(user="5/hour", **{"view:session-list": "2/hour"}):
        assert _statuses(api, 3, "/api/v1/sessions") == [200, 200, 429]
        # the refused request spent nothing: 2 of the 5 are gone
        assert _statuses(api, 4, "/api/v1/runs") == [200, 200, 200, 429]


def test_roles_have_limits_of_their_own(api, make_user):
    admin = client_for(with_role(make_user("adele"), "admin"))
    reviewer = client_for(with_role(make_user("rhea"), "reviewer"))
    entries = {"role:admin": "none", "role:reviewer": "4/hour", "view:session-list:reviewer": "3/hour"}

    with limits(user="2/hour", **entries):
        assert _statuses(api, 3) == [200, 200, 429]
        assert _statuses(admin, 30) == [200] * 30
        assert _statuses(reviewer, 4) == [200, 200, 200, 429]
        assert _statuses(reviewer, 2, "/api/v1/runs") == [200, 429]


def test_the_password_login_for_jwt_is_limited_by_address(user):
    with limits(anon="2/hour"):
        client = APIClient(REMOTE_ADDR="192.0.2.7")
        statuses = [
            client.post(
                "/api/v1/auth/token", {"username": "alice", "password": "guess"}, format="json"
            ).status_code
            for _ in range(3)
        ]
    assert statuses == [401, 401, 429]


def test_on_redis_the_buckets_live_in_redis(api):
    # the Lua path: the same arithmetic, atomic on Redis's clock
    redis = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": os.environ["CELERY_BROKER_URL"],
        "KEY_PREFIX": f"test-{uuid.uuid4().hex}",
    }
    with override_settings(CACHES={"default": redis}), limits(user="6/hour:3"):
        assert _statuses(api, 4) == [200, 200, 200, 429]
        response = api.get("/api/v1/sessions")
        assert response.status_code == 429 and 590 <= int(response["Retry-After"]) <= 600
        assert caches["default"]._cache.get_client().keys(f"{redis['KEY_PREFIX']}:*")
        caches["default"].clear()


def _settings_value(expression: str, **env: str) -> str:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import django; django.setup(); from django.conf import settings; print(*[{expression}])",
        ],
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("THROTTLE_")},
            "DJANGO_SETTINGS_MODULE": "config.settings",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_defaults_are_seed_003s_and_the_old_variables_override_them():
    assert _settings_value("settings.RATE_LIMITS['user'], settings.RATE_LIMITS['anon']") == (
        "60/min:10,1000/hour 60/min:10,1000/hour"
    )
    overridden = _settings_value(
        "settings.RATE_LIMITS['user'], settings.RATE_LIMITS['anon'], settings.RATE_LIMITS['view:run-batch']",
        THROTTLE_USER="600/min",
        THROTTLE_ANON="30/min",
        RATE_LIMITS='{"view:run-batch": "10/min:2"}',
    )
    assert overridden == "600/min 30/min 10/min:2"
