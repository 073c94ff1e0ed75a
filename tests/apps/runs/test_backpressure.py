"""Backpressure: a backed-up queue refuses new submissions (429, Retry-After from its drain
rate, the error shape), batches whole, while other queues go on accepting; it costs a
submission one cache read, no SQL."""

from __future__ import annotations

import os
import uuid
from datetime import timedelta

import pytest
from django.core.cache import caches
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator

from apps.runs import backpressure
from apps.runs.models import Run, RunBatch, RunStatus

pytestmark = pytest.mark.django_db

RUNS = "/api/v1/runs"
ECHO = {"kind": "echo", "payload": {"a": 1}}  # the cpu queue
EMBED = {"kind": "inference", "payload": {"task": "embed", "inputs": ["a text"]}}  # the inference queue


@pytest.fixture(autouse=True)
def fresh_figures(sent):
    backpressure.forget()
    yield
    backpressure.forget()


def limits(**queues: dict) -> override_settings:
    return override_settings(
        BACKPRESSURE_QUEUES=queues,
        BACKPRESSURE_DRAIN_WINDOW_SECONDS=60,
        BACKPRESSURE_MAX_RETRY_AFTER_SECONDS=300,
    )


def fill(session, queue: str, count: int, status: str = RunStatus.QUEUED, **values) -> None:
    """`count` runs on `queue` stored directly (what earlier submissions would have left)."""
    now = timezone.now()
    Run.objects.bulk_create(
        Run(
            owner=session.owner,
            session=session,
            kind="echo",
            queue=queue,
            status=status,
            queued_at=values.pop("queued_at", now),
            **values,
        )
        for _ in range(count)
    )


def body(session, run: dict) -> dict:
    return {"session": str(session.pk), **run}


def assert_overloaded(response, queue: str) -> int:
    assert response.status_code == 429, response.content
    error = response.json()["error"]
    assert set(error) == {"code", "message", "fields"}
    assert error["code"] == "queue_overloaded" and f"The {queue} queue is backed up" in error["message"]
    return int(response["Retry-After"])


def test_a_backed_up_queue_refuses_with_a_retry_after_from_its_drain_rate(api, session):
    # given 9 runs waiting on cpu (limit 5), and 30 that ended there in the last minute: 0.5 runs/s
    fill(session, "cpu", 9)
    fill(session, "cpu", 30, status=RunStatus.SUCCEEDED, finished_at=timezone.now() - timedelta(seconds=5))
    stored = Run.objects.count()

    with limits(cpu={"max_queued": 5}):
        response = api.post(RUNS, body(session, ECHO), format="json")

    # then 5 runs must leave before it accepts again: 10 s at 0.5 runs/s
    assert assert_overloaded(response, "cpu") == 10
    assert "9 runs are waiting (limit 5)" in response.json()["error"]["message"]
    assert Run.objects.count() == stored


def test_below_the_limit_submissions_are_accepted(api, session):
    fill(session, "cpu", 4)
    with limits(cpu={"max_queued": 5}):
        response = api.post(RUNS, body(session, ECHO), format="json")
    assert response.status_code == 201, response.content


def test_a_queue_whose_oldest_run_waited_too_long_refuses(api, session):
    # nothing ended on it lately: the longest Retry-After
    fill(session, "cpu", 1, queued_at=timezone.now() - timedelta(seconds=700))
    with limits(cpu={"max_queued": 100, "max_wait_seconds": 600}):
        response = api.post(RUNS, body(session, ECHO), format="json")
    assert assert_overloaded(response, "cpu") == 300
    assert "oldest waiting run has waited 70" in response.json()["error"]["message"]


def test_a_batch_is_refused_whole_and_other_queues_go_on(api, session):
    fill(session, "inference", 3)
    stored = Run.objects.count()

    with limits(inference={"max_queued": 3}):
        refused = api.post(
            RUNS + "/batch", {"runs": [body(session, ECHO), body(session, EMBED)]}, format="json"
        )
        # the cpu queue is not backed up
        alone = api.post(RUNS + "/batch", {"runs": [body(session, ECHO)] * 2}, format="json")

    assert_overloaded(refused, "inference")
    assert alone.status_code == 201, alone.content
    assert Run.objects.count() == stored + 2 and RunBatch.objects.count() == 1


def _figure_reads(queries: CaptureQueriesContext) -> int:
    return sum("GROUP BY" in query["sql"] for query in queries.captured_queries)


def test_a_submission_reads_the_queues_figures_at_most_once_a_second(api, session):
    with limits(cpu={"max_queued": 3}):
        # given the figures were read by a first submission (one statement)
        with CaptureQueriesContext(connection) as first:
            assert api.post(RUNS, body(session, ECHO), format="json").status_code == 201
        assert _figure_reads(first) == 1

        # when the queue fills within the second, submissions go on without asking the database
        fill(session, "cpu", 5)
        with CaptureQueriesContext(connection) as then:
            assert api.post(RUNS, body(session, ECHO), format="json").status_code == 201
        assert _figure_reads(then) == 0

        # then once the figures are read again, the queue refuses
        backpressure.forget()
        assert_overloaded(api.post(RUNS, body(session, ECHO), format="json"), "cpu")


def test_on_redis_every_process_reads_the_figures_one_of_them_counted(api, session):
    redis = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": os.environ["CELERY_BROKER_URL"],
        "KEY_PREFIX": f"test-{uuid.uuid4().hex}",
    }
    fill(session, "cpu", 3)
    with override_settings(CACHES={"default": redis}), limits(cpu={"max_queued": 3}):
        try:
            assert_overloaded(api.post(RUNS, body(session, ECHO), format="json"), "cpu")
            assert caches["default"]._cache.get_client().keys(f"{redis['KEY_PREFIX']}:*backpressure*")
            # another process (no figures of its own) refuses from what is in Redis, without SQL
            backpressure._local, backpressure._last_read = None, 0.0
            with CaptureQueriesContext(connection) as queries:
                assert_overloaded(api.post(RUNS, body(session, ECHO), format="json"), "cpu")
            assert _figure_reads(queries) == 0
        finally:
            caches["default"].clear()


def test_a_process_answers_from_figures_it_holds_while_they_are_fresh_then_asks_the_cache(
    api, session, monkeypatch, settings
):
    asked = []
    real = backpressure.cache_get
    monkeypatch.setattr(backpressure, "cache_get", lambda key: asked.append(key) or real(key))
    assert api.post(RUNS, body(session, ECHO), format="json").status_code == 201
    assert len(asked) == 1  # nothing held yet: the cache, then the database
    assert api.post(RUNS, body(session, ECHO), format="json").status_code == 201
    assert len(asked) == 1  # held and fresh: no round trip
    settings.BACKPRESSURE_REFRESH_SECONDS = 0.0  # what it holds is now stale
    assert api.post(RUNS, body(session, ECHO), format="json").status_code == 201
    assert len(asked) == 2


def test_prometheus_shows_the_backed_up_queue_and_the_refusals(api, session):
    fill(session, "cpu", 2)
    with limits(cpu={"max_queued": 2}):
        assert api.post(RUNS, body(session, ECHO), format="json").status_code == 429
        text = Client().get("/metrics").content.decode()

    assert 'limitgraph_queue_backpressure{queue="cpu"} 1.0' in text
    assert 'limitgraph_queue_backpressure{queue="inference"} 0.0' in text
    assert 'limitgraph_queue_waiting_runs{queue="cpu"} 2.0' in text
    assert 'limitgraph_queue_retry_after_seconds{queue="cpu"} 300.0' in text
    assert 'limitgraph_backpressure_refusals_total{queue="cpu"}' in text


def test_the_schema_documents_backpressure_on_the_submit_endpoints():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    for path in ("/api/v1/runs", "/api/v1/runs/batch"):
        refused = schema["paths"][path]["post"]["responses"]["429"]
        assert "queue_overloaded" in refused["description"] and "Retry-After" in refused["headers"]
