"""A user's own session, its policy and the policy's active version, as every submission reads
them, kept in the shared (Redis) cache: a cached one costs no query, and a change to a session
or a policy takes effect on the next read."""

from __future__ import annotations

import os
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.policies.services import policy_approve, policy_create, policy_edit
from apps.sessions.selectors import session_get_for_user
from apps.sessions.services import session_create, session_delete

pytestmark = pytest.mark.django_db


@pytest.fixture
def redis_cache(settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": os.environ["CELERY_BROKER_URL"],
            "KEY_PREFIX": f"sessioncache-test-{uuid.uuid4().hex}",
        }
    }
    settings.SESSION_CACHE_SECONDS = 60


def read(user, session_id):
    with CaptureQueriesContext(connection) as queries:
        found = session_get_for_user(user=user, session_id=session_id)
    return found, len(queries.captured_queries)


def test_a_cached_session_costs_no_query_and_is_what_the_database_holds(redis_cache, user, session):
    from_database, queries = read(user, session.pk)
    assert queries == 1
    cached, queries = read(user, session.pk)
    assert queries == 0
    version = from_database.policy.active_version
    assert (cached.pk, cached.name, cached.created_at, cached.owner) == (
        from_database.pk,
        from_database.name,
        from_database.created_at,
        user,
    )
    assert cached.policy.pk == from_database.policy.pk and cached.policy.name == from_database.policy.name
    assert cached.policy.active_version.pk == version.pk
    assert cached.policy.active_version.block_severity == version.block_severity
    assert cached.policy.active_version.blocked_flags == version.blocked_flags
    assert read(user, session.pk)[0] is not cached  # fresh instances for every read


def test_a_new_active_policy_version_governs_the_next_read(
    redis_cache, user, reviewer, second_reviewer, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        policy = policy_create(user=reviewer, name="cached-policy", settings={"block_severity": 8})
        policy_approve(user=second_reviewer, policy_id=policy.pk)
        session = session_create(owner=user, name="governed", policy="cached-policy")
    assert read(user, session.pk)[0].policy.active_version.block_severity == 8
    assert read(user, session.pk)[1] == 0

    with django_capture_on_commit_callbacks(execute=True):
        policy_edit(user=reviewer, policy_id=policy.pk, settings={"block_severity": 5})
        policy_approve(user=second_reviewer, policy_id=policy.pk)
    after, queries = read(user, session.pk)
    assert queries == 1 and after.policy.active_version.number == 2
    assert after.policy.active_version.block_severity == 5


def test_a_deleted_session_is_gone_at_once(redis_cache, user, session, django_capture_on_commit_callbacks):
    assert read(user, session.pk)[0] is not None
    with django_capture_on_commit_callbacks(execute=True):
        session_delete(user=user, session_id=session.pk)
    assert read(user, session.pk)[0] is None


def test_a_renamed_session_is_read_again(redis_cache, user, session, django_capture_on_commit_callbacks):
    read(user, session.pk)
    with django_capture_on_commit_callbacks(execute=True):
        session.name = "renamed"
        session.save()
    assert read(user, session.pk)[0].name == "renamed"


def test_another_users_session_is_never_served_from_the_cache(redis_cache, user, other_user, session):
    assert read(user, session.pk)[0] is not None  # cached for its owner
    assert read(other_user, session.pk) == (None, 1)


def test_without_a_shared_cache_every_read_is_a_query(user, session):
    # the test settings' in-process cache cannot carry invalidations between processes
    assert read(user, session.pk)[1] == 1
    assert read(user, session.pk)[1] == 1
