"""Chaos (a): runs in flight while their worker is SIGKILLed, twice. Every run ends
`succeeded` exactly once in effect: one completion in its trace, and an executor that ran to
its end more than once only for runs a kill interrupted."""

from __future__ import annotations

import signal
import time
from datetime import timedelta

import pytest
import redis
from django.conf import settings
from django.db.models import Count
from django.utils import timezone

from apps.runs.models import Run
from apps.traces.models import ProvenanceEntry
from tests.chaos import COUNTER_KEY
from tests.workers.conftest import WorkerProcess

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

SLEEP_SECONDS = 1.0
WORKER_ARGS = ("--pool", "threads", "--concurrency", "25", "--include", "tests.chaos.side_effects")


def _submit_sleeps(api, session, count: int) -> list[str]:
    ids: list[str] = []
    for start in range(0, count, settings.MAX_BATCH_RUNS):
        runs = [
            {"session": str(session.pk), "kind": "sleep", "payload": {"seconds": SLEEP_SECONDS}}
            for _ in range(min(settings.MAX_BATCH_RUNS, count - start))
        ]
        response = api.post("/api/v1/runs/batch", {"runs": runs}, format="json")
        assert response.status_code == 201, response.content
        ids += [run["id"] for run in response.json()["runs"]]
    return ids


def _wait(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    counts = dict(Run.objects.values_list("status").annotate(n=Count("id")))
    stuck = list(
        Run.objects.exclude(status="succeeded").values("status", "attempts", "error", "worker_hostname")[:12]
    )
    raise AssertionError(f"timed out waiting for {what}; runs by status: {counts}; not succeeded: {stuck}")


def _kill_mid_flight(worker: WorkerProcess, ids: list[str]) -> set[str]:
    """SIGKILL the worker while it has runs started and not finished; returns the runs the kill
    cut short: those still running once it is dead (one that finished while the signal was on its
    way, which on a loaded host can be several, was not interrupted)."""
    runs = Run.objects.filter(pk__in=ids)

    def executing() -> int:  # (runs write progress once a second: a 1 s run shows none)
        since = timezone.now() - timedelta(seconds=0.2)
        return runs.filter(status="running", started_at__lt=since).count()

    _wait(lambda: executing() >= 5, 60, "runs in flight")
    worker.kill(signal.SIGKILL)
    return set(map(str, runs.filter(status="running").values_list("pk", flat=True)))


def test_every_run_succeeds_once_though_its_worker_is_killed_twice(
    start_worker, beat, api, session, long_chaos
):
    count, kills = (1000, 5) if long_chaos else (100, 2)
    counter = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    env = {"CHAOS_COUNTER_URL": settings.CELERY_BROKER_URL}
    worker = start_worker("chaos-0", args=WORKER_ARGS, **env)
    counter.delete(COUNTER_KEY)
    ids = _submit_sleeps(api, session, count)

    interrupted: list[set[str]] = []
    for kill in range(kills):
        interrupted.append(_kill_mid_flight(worker, ids))
        # the reconciler hands a dead worker's runs back once their lease has lapsed; the next
        # worker reconciles when it starts
        time.sleep(settings.RUN_LEASE_SECONDS + 0.5)
        worker = start_worker(f"chaos-{kill + 1}", args=WORKER_ARGS, **env)

    runs = Run.objects.filter(pk__in=ids)
    _wait(
        lambda: runs.filter(status="succeeded").count() == count, 120 if not long_chaos else 900, "every run"
    )

    assert all(interrupted), f"a kill cut no run short: {interrupted}"
    assert not runs.exclude(status="succeeded").exists()
    completions = dict(
        ProvenanceEntry.objects.filter(trace__run_id__in=ids, action="run.succeeded")
        .values_list("trace__run_id")
        .annotate(n=Count("id"))
    )
    assert {str(run_id) for run_id in completions} == set(ids)
    assert set(completions.values()) == {1}
    executions = {key.decode(): int(value) for key, value in counter.hgetall(COUNTER_KEY).items()}
    assert set(executions) == set(ids)
    retried = set(map(str, runs.filter(attempts__gt=1).values_list("pk", flat=True)))
    assert set().union(*interrupted) <= retried
    # a run no kill touched ran its executor exactly once; one a kill cut short may have
    # finished its sleep on the dying worker without the completion reaching the database
    assert all(executions[run_id] == 1 for run_id in set(ids) - retried)
    assert all(executions[run_id] <= Run.objects.get(pk=run_id).attempts for run_id in retried)
