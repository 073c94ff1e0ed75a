"""A run end to end through a real broker and a real Celery worker process."""

from __future__ import annotations

import signal

import pytest
from django.test import Client

from apps.runs.models import Run
from apps.traces.models import Trace
from apps.traces.services import trace_verify
from tests.workers.conftest import actions, submit, wait_for_run

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_echo_succeeds_with_its_result(start_worker, api, session):
    worker = start_worker("echo")
    run_id = submit(api, session, "echo", {"hello": ["world", 1, 2.5]})

    run = wait_for_run(run_id, {"succeeded", "failed"})

    assert run.status == "succeeded", run.error
    assert run.result == {"hello": ["world", 1, 2.5]}
    assert run.progress == 1.0 and run.attempts == 1 and run.worker_hostname == worker.hostname
    # the worker's heartbeat carries what it can run
    from apps.core.models import WorkerHeartbeat

    capabilities = WorkerHeartbeat.objects.get(hostname=worker.hostname).capabilities
    assert capabilities["gpus"] == 0 and capabilities["backends"][0] == "numpy"
    body = api.get(f"/api/v1/runs/{run_id}").json()
    assert body["status"] == "succeeded" and body["result"] == {"hello": ["world", 1, 2.5]}
    assert actions(run_id) == ["trace.created", "run.started", "run.succeeded", "trace.outputs"]
    assert Trace.objects.get(run_id=run_id).outputs == {"result": {"hello": ["world", 1, 2.5]}}
    assert trace_verify(trace=Trace.objects.get(run_id=run_id)).valid
    # a live worker makes the platform ready
    assert Client().get("/ready").status_code == 200


def test_sleep_reports_progress_and_cancel_stops_it(start_worker, api, session):
    start_worker("cancel")
    run_id = submit(api, session, "sleep", {"seconds": 30})
    wait_for_run(run_id, {"running"}, progress=lambda p: p > 0)

    response = api.post(f"/api/v1/runs/{run_id}/cancel")
    assert response.status_code == 202

    run = wait_for_run(run_id, {"cancelled", "succeeded", "failed"}, timeout=10)
    assert run.status == "cancelled"
    assert 0 < run.progress < 0.5 and run.result is None
    assert actions(run_id)[-2:] == ["run.cancel_requested", "run.cancelled"]


def test_cancel_before_a_worker_takes_it(start_worker, api, session):
    run_id = submit(api, session, "echo", {})
    assert api.post(f"/api/v1/runs/{run_id}/cancel").json()["status"] == "cancelled"
    start_worker("late")
    marker = submit(api, session, "echo", {"after": True})
    wait_for_run(marker, {"succeeded"})
    run = Run.objects.get(pk=run_id)
    assert run.status == "cancelled" and run.attempts == 0


def test_a_worker_killed_mid_run_loses_nothing_and_runs_it_once(start_worker, api, session, settings):
    # given a sleep run in progress on worker A
    first = start_worker("doomed")
    run_id = submit(api, session, "sleep", {"seconds": 3})
    wait_for_run(run_id, {"running"}, progress=lambda p: p > 0.1)

    # when A and its pool are SIGKILLed, and a new worker starts once A's lease has lapsed
    first.kill(signal.SIGKILL)
    assert Run.objects.get(pk=run_id).status == "running"
    import time

    time.sleep(settings.RUN_LEASE_SECONDS + 0.5)
    second = start_worker("rescuer")

    # then the run completes on the new worker, exactly once
    run = wait_for_run(run_id, {"succeeded", "failed"}, timeout=60)
    assert run.status == "succeeded", run.error
    assert run.attempts == 2 and run.worker_hostname == second.hostname
    assert run.result["slept_seconds"] >= 3
    history = actions(run_id)
    assert history.count("run.started") == 2
    assert history.count("run.requeued") == 1
    assert history.count("run.succeeded") == 1
    assert trace_verify(trace=Trace.objects.get(run_id=run_id)).valid
