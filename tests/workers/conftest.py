"""Real Celery worker processes for the integration tests (no eager mode).

Workers run `celery -A config worker` against the test database and the test
broker (Redis db 15 unless CELERY_BROKER_URL says otherwise).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.db import connection

from apps.core.models import WorkerHeartbeat
from apps.runs.models import Run
from apps.traces.models import Trace

ROOT = Path(__file__).resolve().parents[2]
WORKER_START_TIMEOUT = 60.0


def _test_database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def process_env(**extra: str) -> dict[str, str]:
    """Environment for a child process that shares this test's database."""
    return {**os.environ, "DATABASE_URL": _test_database_url(), **extra}


class WorkerProcess:
    def __init__(
        self,
        name: str,
        queues: str,
        log_path: Path,
        env: dict[str, str],
        args: tuple[str, ...] = (),
        prefix: tuple[str, ...] = (),
    ) -> None:
        self.hostname = f"{name}-{uuid.uuid4().hex[:6]}@test"
        self.log_path = log_path
        self.process = subprocess.Popen(
            [
                *prefix,  # ("ip", "netns", "exec", "<namespace>"): a worker in a network of its own
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "--queues",
                queues,
                "--concurrency",
                "1",
                "--hostname",
                self.hostname,
                "--without-gossip",
                "--without-mingle",
                "--loglevel",
                "INFO",
                *args,  # later options win: ("--pool", "threads", "--concurrency", "8")
            ],
            cwd=ROOT,
            env=env,
            stdout=open(log_path, "wb"),  # noqa: SIM115 (closed with the process)
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group: SIGKILL takes the pool children too
        )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + WORKER_START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited early:\n{self.log_path.read_text()[-3000:]}")
            if WorkerHeartbeat.objects.filter(hostname=self.hostname).exists():
                return
            time.sleep(0.2)
        raise TimeoutError(f"worker not ready:\n{self.log_path.read_text()[-3000:]}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


@contextmanager
def running_worker(blocker, name: str, queues: str, log_path: Path, env: dict[str, str], args=()):
    """A worker for a module-scoped fixture: started and ready (with the database unblocked,
    as module fixtures need), stopped when the block ends."""
    with blocker.unblock():
        process = WorkerProcess(name, queues, log_path, env, args)
        try:
            process.wait_ready()
        except BaseException:
            process.stop()
            raise
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()
    workers: list[WorkerProcess] = []

    def start(
        name: str = "worker",
        queues: str = "cpu,control",
        wait: bool = True,
        args: tuple[str, ...] = (),
        prefix: tuple[str, ...] = (),
        **env: str,
    ) -> WorkerProcess:
        log_path = tmp_path / f"{name}-{len(workers)}.log"
        worker = WorkerProcess(name, queues, log_path, process_env(**env), args, prefix)
        workers.append(worker)
        if wait:
            worker.wait_ready()
        return worker

    yield start
    for worker in workers:
        worker.stop()


def submit(api, session, kind, payload):
    response = api.post(
        "/api/v1/runs", {"session": str(session.pk), "kind": kind, "payload": payload}, format="json"
    )
    assert response.status_code == 201, response.content
    return response.json()["id"]


def actions(run_id):
    return list(Trace.objects.get(run_id=run_id).provenance.order_by("seq").values_list("action", flat=True))


def wait_for_run(run_id: object, statuses: set[str], timeout: float = 30.0, **conditions: object) -> Run:
    deadline = time.monotonic() + timeout
    run = Run.objects.get(pk=run_id)
    while time.monotonic() < deadline:
        run = Run.objects.get(pk=run_id)
        if run.status in statuses and all(
            check(getattr(run, field)) if callable(check) else getattr(run, field) == check
            for field, check in conditions.items()
        ):
            return run
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} stayed {run.status} (progress {run.progress}), wanted {statuses}")
