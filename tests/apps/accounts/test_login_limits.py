"""Failed password logins are limited per address and per username (the admin's, the
dashboard's and the JWT endpoint), spellings of a username share one budget, a success
spends nothing, and a refusal is a 429 with Retry-After before the password is checked."""

from __future__ import annotations

import os
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import caches
from django.test import Client, override_settings
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery-9"
OPEN = "100000/min"


@pytest.fixture(autouse=True)
def fresh_counters(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast: many logins
    caches["default"].clear()
    yield
    caches["default"].clear()


@pytest.fixture
def staff(db):
    return get_user_model().objects.create_user(username="alice", password=PASSWORD, is_staff=True)


def limits(address: str = OPEN, username: str = OPEN) -> override_settings:
    return override_settings(LOGIN_FAILURES_PER_ADDRESS=address, LOGIN_FAILURES_PER_USERNAME=username)


def admin_login(username: str, password: str, address: str = "192.0.2.1"):
    return Client(REMOTE_ADDR=address).post("/admin/login/", {"username": username, "password": password})


def jwt_login(username: str, password: str, address: str = "192.0.2.1"):
    return APIClient(REMOTE_ADDR=address).post(
        "/api/v1/auth/token", {"username": username, "password": password}, format="json"
    )


def test_admin_failures_per_username_are_limited_whatever_the_spelling(staff):
    with limits(username="3/hour"):
        # each from another address, each a different spelling of the same name
        spellings = ["alice", "Alice", " ALICE ", "al ice"]
        statuses = [
            admin_login(name, "guess", f"192.0.2.{i}").status_code for i, name in enumerate(spellings)
        ]
        # the right password is refused too once the budget is spent: no guess gets through
        refused = admin_login("alice", PASSWORD, "192.0.2.99")

    assert statuses == [200, 200, 200, 429]  # the admin answers a failed login with its form again
    assert refused.status_code == 429 and 1100 <= int(refused["Retry-After"]) <= 1200
    assert refused["Content-Type"].startswith("text/html") and b"Too many" in refused.content
    assert "_auth_user_id" not in refused.wsgi_request.session


def test_failures_per_address_are_limited_across_usernames(staff):
    with limits(address="2/hour"):
        statuses = [admin_login(f"user{i}", "guess").status_code for i in range(3)]
        elsewhere = admin_login("user9", "guess", "192.0.2.2")
    assert statuses == [200, 200, 429] and elsewhere.status_code == 200


def test_a_successful_login_spends_nothing(staff):
    with limits(username="2/hour"):
        for _ in range(4):
            response = admin_login("alice", PASSWORD)
            assert response.status_code == 302, response.content
        assert [admin_login("alice", "guess").status_code for _ in range(3)] == [200, 200, 429]


def test_the_jwt_endpoint_answers_in_the_error_shape(staff):
    with limits(username="2/hour"):
        statuses = [jwt_login("ALICE", "guess", f"192.0.2.{i}").status_code for i in range(2)]
        refused = jwt_login("alice", PASSWORD, "192.0.2.50")
        # another user is not locked out by alice's failures
        other = jwt_login("bob", "guess", "192.0.2.51")

    assert statuses == [401, 401] and other.status_code == 401
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    error = refused.json()["error"]
    assert error["code"] == "throttled" and "failed sign-in attempts" in error["message"]


def test_the_dashboard_login_is_limited_too(staff):
    with limits(username="1/hour"):
        first = Client().post("/login/", {"username": "alice", "password": "guess"})
        second = Client().post("/login/", {"username": "alice", "password": PASSWORD})
    assert first.status_code == 200 and second.status_code == 429


def test_on_redis_the_failures_live_in_redis(staff):
    redis = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": os.environ["CELERY_BROKER_URL"],
        "KEY_PREFIX": f"test-{uuid.uuid4().hex}",
    }
    with override_settings(CACHES={"default": redis}), limits(username="2/hour"):
        try:
            # a success gives back what it took (the Lua path), failures count
            assert admin_login("alice", PASSWORD).status_code == 302
            assert [admin_login("Alice", "guess").status_code for _ in range(3)] == [200, 200, 429]
            assert caches["default"]._cache.get_client().keys(f"{redis['KEY_PREFIX']}:*")
        finally:
            caches["default"].clear()
