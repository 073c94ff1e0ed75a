"""Credential lookups cached in the shared (Redis) cache: a cached token or key costs no
query, and whatever revokes a credential takes effect on the next request."""

from __future__ import annotations

import os
import uuid
from datetime import timedelta

import pytest
import redis
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from apps.accounts.models import ApiKey
from apps.accounts.services import api_key_create, api_key_revoke
from tests.conftest import client_for

pytestmark = pytest.mark.django_db

URL = "/api/v1/sessions"


@pytest.fixture
def redis_cache(settings):
    prefix = f"authcache-test-{uuid.uuid4().hex}"
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": os.environ["CELERY_BROKER_URL"],
            "KEY_PREFIX": prefix,
        }
    }
    settings.RATE_LIMITS = {"user": "none", "anon": "none"}
    settings.AUTH_CACHE_SECONDS = 60
    return prefix


def _queries_on(table: str, client: APIClient) -> tuple[int, int]:
    with CaptureQueriesContext(connection) as queries:
        status = client.get(URL).status_code
    return status, sum(table in query["sql"] for query in queries.captured_queries)


def test_a_cached_token_costs_no_query_and_deleting_it_refuses_the_next_request(
    redis_cache, user, django_capture_on_commit_callbacks
):
    client = client_for(user)
    assert _queries_on("authtoken_token", client) == (200, 1)
    assert _queries_on("authtoken_token", client) == (200, 0)
    # what the cache holds is keyed by a digest and holds no secret
    stored = redis.Redis.from_url(os.environ["CELERY_BROKER_URL"])
    values = [stored.get(name) for name in stored.scan_iter(f"{redis_cache}:*")]
    secret = Token.objects.get(user=user).key.encode()
    assert values and not any(secret in value for value in values if value)

    with django_capture_on_commit_callbacks(execute=True):
        Token.objects.get(user=user).delete()
    response = client.get(URL)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"


def test_a_deactivated_user_is_refused_at_once(redis_cache, user, django_capture_on_commit_callbacks):
    client = client_for(user)
    assert client.get(URL).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        user.is_active = False
        user.save()
    assert client.get(URL).status_code == 401


def test_a_revoked_key_is_refused_at_once_and_an_expired_one_when_it_expires(
    redis_cache, user, django_capture_on_commit_callbacks
):
    api_key, key = api_key_create(user=user, name="ci")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    assert _queries_on("accounts_apikey", client) == (200, 2)  # read, and its first use noted
    assert _queries_on("accounts_apikey", client) == (200, 0)

    with django_capture_on_commit_callbacks(execute=True):
        api_key_revoke(api_key=api_key)
    assert client.get(URL).status_code == 401

    expiring, key = api_key_create(user=user, name="soon", expires_at=timezone.now() + timedelta(hours=1))
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    assert _queries_on("accounts_apikey", client) == (200, 2)
    # two hours on, the cached key is past its expiry: refused without asking the database
    later = timezone.now() + timedelta(hours=2)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(timezone, "now", lambda: later)
        assert _queries_on("accounts_apikey", client) == (401, 0)
    assert ApiKey.objects.get(pk=expiring.pk).revoked_at is None


def test_without_a_reachable_cache_credentials_come_from_the_database(settings, user):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
        }
    }
    settings.RATE_LIMITS = {"user": "none", "anon": "none"}
    client = client_for(user)
    assert _queries_on("authtoken_token", client) == (200, 1)
    assert _queries_on("authtoken_token", client) == (200, 1)


def test_with_the_in_process_cache_nothing_is_cached(settings, user):
    # locmem is per process: another process could not see an invalidation
    settings.RATE_LIMITS = {"user": "none", "anon": "none"}
    client = client_for(user)
    assert _queries_on("authtoken_token", client) == (200, 1)
    assert _queries_on("authtoken_token", client) == (200, 1)
