"""Executing a claimed run on a worker: heartbeats, progress, cancellation, outcome."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import connection

from apps.runs.kinds import get_kind
from apps.runs.models import Run
from apps.runs.services import (
    RunCancelled,
    RunLeaseLost,
    RunStopped,
    run_complete,
    run_fail,
    run_heartbeat,
    run_mark_cancelled,
)

logger = logging.getLogger(__name__)

# Progress is written at most this often; a cancel is noticed at the next write.
PROGRESS_MIN_INTERVAL_SECONDS = 0.25


class ExecutionContext:
    """The RunContext handed to executors (apps.runs.kinds.RunContext)."""

    def __init__(self, run: Run, attempt: int) -> None:
        self.run = run
        self.run_id = str(run.pk)
        self.session_id = str(run.session_id)
        self.attempt = attempt
        self._stop: RunStopped | None = None
        self._last_write = 0.0

    def check(self) -> None:
        if self._stop is not None:
            raise self._stop

    def progress(self, fraction: float) -> None:
        self.check()
        now = time.monotonic()
        if now - self._last_write < PROGRESS_MIN_INTERVAL_SECONDS and fraction < 1.0:
            return
        self._last_write = now
        run_heartbeat(run=self.run, attempt=self.attempt, progress=fraction)

    @contextmanager
    def heartbeating(self) -> Iterator[None]:
        """Keep the run's lease alive from a side thread while the executor computes,
        so a long kernel step that reports no progress is not taken for a dead worker."""
        done = threading.Event()

        def beat() -> None:
            try:
                while not done.wait(settings.RUN_HEARTBEAT_SECONDS):
                    try:
                        run_heartbeat(run=self.run, attempt=self.attempt)
                    except RunStopped as stop:
                        self._stop = stop
                        return
                    except Exception:
                        logger.warning("run heartbeat failed", exc_info=True, extra={"run_id": self.run_id})
            finally:
                connection.close()

        thread = threading.Thread(target=beat, name=f"heartbeat-{self.run_id}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()


def run_execute(*, run: Run) -> str:
    """Execute a run this worker has claimed; return the status it ended with."""
    attempt = run.attempts
    kind = get_kind(run.kind)
    if kind is None:
        run_fail(run=run, attempt=attempt, error_type="UnknownKind", message=f"no executor for {run.kind!r}")
        return "failed"

    ctx = ExecutionContext(run, attempt)
    try:
        with ctx.heartbeating():
            result = kind.execute(run.payload, ctx)
    except RunCancelled:
        run_mark_cancelled(run=run, attempt=attempt)
        return "cancelled"
    except RunLeaseLost:
        logger.warning("run lease lost; another worker owns it now", extra={"run_id": run.pk})
        return "lost"
    except Exception as exc:
        logger.warning("run failed", exc_info=True, extra={"run_id": run.pk, "kind": run.kind})
        run_fail(run=run, attempt=attempt, error_type=type(exc).__name__, message=str(exc))
        return "failed"
    try:
        stored = run_complete(run=run, attempt=attempt, result=result)
    except Exception as exc:
        # The result could not be stored (not JSON, too large, a database error): fail
        # the run rather than leave it running for the reconciler to execute again.
        logger.exception("could not store run result", extra={"run_id": run.pk})
        run_fail(run=run, attempt=attempt, error_type=type(exc).__name__, message=str(exc))
        return "failed"
    return "succeeded" if stored else "lost"
