"""Real worker processes: a warm shutdown (SIGTERM) is bounded and hands its runs in flight back,
and workers are recycled above their memory threshold (prefork: the children; threads: itself)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from config.celery import app
from tests.workers.conftest import actions, submit, wait_for_run

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def pool_children(pid: int) -> list[int]:
    """The worker's pool processes (not the kernel warm-up it may have started)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [
        int(child)
        for child in children
        if b"kernels.warmup" not in Path(f"/proc/{child}/cmdline").read_bytes()
    ]


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_sigterm_mid_run_hands_the_run_back_within_the_bound(start_worker, api, session):
    # given a sleep run in progress on a worker with a 1 s grace
    grace, force = 1.0, 8.0  # Celery's own cold shutdown takes a few seconds on a busy machine
    first = start_worker(
        "draining", WORKER_SHUTDOWN_GRACE_SECONDS=str(grace), WORKER_SHUTDOWN_FORCE_SECONDS=str(force)
    )
    run_id = submit(api, session, "sleep", {"seconds": 3})
    wait_for_run(run_id, {"running"}, progress=lambda p: p > 0)
    children = pool_children(first.process.pid)
    assert children

    # when its main process alone gets SIGTERM (as `docker stop` sends it)
    asked = time.monotonic()
    os.kill(first.process.pid, signal.SIGTERM)
    first.process.wait(timeout=grace + force + 5)
    took = time.monotonic() - asked

    # then it exited within the bound, its pool child with it, after handing the run back
    # (not leaving it `running` until its lease lapses)
    assert took < grace + force, took
    assert not [child for child in children if alive(child)]
    assert "run.handed_back" in actions(run_id)

    # and the next worker runs it once, to the end; the first attempt's late writes were fenced
    second = start_worker("taker")
    run = wait_for_run(run_id, {"succeeded", "failed"}, timeout=30)
    assert run.status == "succeeded", run.error
    assert run.attempts == 2 and run.worker_hostname == second.hostname
    assert run.result["slept_seconds"] >= 3
    history = actions(run_id)
    assert history.count("run.handed_back") == 1 and history.count("run.succeeded") == 1


def _pool_stats(hostname: str, timeout: float = 30.0) -> dict:
    """The worker's pool figures, asked again until it answers (a loaded host can take longer
    than one broadcast's wait; CI once got no reply within 5 s)."""
    deadline = time.monotonic() + timeout
    while True:
        replies = app.control.inspect(destination=[hostname], timeout=5).stats() or {}
        if hostname in replies or time.monotonic() > deadline:
            return replies[hostname]["pool"]


def test_prefork_children_are_recycled_above_their_memory_threshold(start_worker, api, session):
    # given a worker whose children may use 1 MiB (any Python process uses more)
    worker = start_worker("recycled", WORKER_MAX_MEMORY_PER_CHILD_MB="1", WORKER_MAX_TASKS_PER_CHILD="7")
    pool = _pool_stats(worker.hostname)
    assert pool["max-tasks-per-child"] == 7
    before = set(pool_children(worker.process.pid))

    # when a run ends, its child is replaced; the next run still runs
    first = wait_for_run(submit(api, session, "echo", {"n": 1}), {"succeeded", "failed"})
    second = wait_for_run(submit(api, session, "echo", {"n": 2}), {"succeeded", "failed"})

    assert first.status == second.status == "succeeded"
    deadline = time.monotonic() + 10  # the child exits just after its task: give it a moment
    while before & set(pool_children(worker.process.pid)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not before & set(pool_children(worker.process.pid))


def test_a_threads_worker_retires_itself_above_the_memory_threshold(start_worker, api, session):
    # given a threads-pool worker (no children to replace) allowed 1 MiB
    worker = start_worker("threads-recycled", args=("--pool", "threads"), WORKER_MAX_MEMORY_PER_CHILD_MB="1")

    # when a run ends, the worker finishes it and then leaves by a warm shutdown
    run = wait_for_run(submit(api, session, "echo", {"n": 1}), {"succeeded", "failed"})
    assert run.status == "succeeded", run.error
    worker.process.wait(timeout=30)
    assert worker.process.returncode == 0
    assert "worker recycling: peak memory" in worker.log_path.read_text()
