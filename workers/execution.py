"""Executing a claimed run on a worker: its executor, heartbeats, progress, cancellation,
and the outcome handed to the run services."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection

from apps.runs.models import Run
from apps.runs.services import (
    RunCancelled,
    RunLeaseLost,
    run_complete,
    run_fail,
    run_mark_cancelled,
)
from workers.context import ExecutionContext
from workers.executors import get_executor

logger = logging.getLogger(__name__)

T = TypeVar("T")
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError)
RETRY_FIRST_DELAY_SECONDS = 0.5
RETRY_MAX_DELAY_SECONDS = 5.0


def with_database_retry(write: Callable[[], T], what: str) -> T:
    """Run a write, retrying it while the database cannot be reached (a restart, a failover)
    for up to WORKER_DATABASE_RETRY_SECONDS, so a finished run's outcome waits for the database
    instead of being lost to the reconciler. Each write is fenced by its attempt: one that
    lands after the run was handed to another worker changes nothing."""
    deadline = time.monotonic() + settings.WORKER_DATABASE_RETRY_SECONDS
    delay = RETRY_FIRST_DELAY_SECONDS
    while True:
        try:
            return write()
        except DATABASE_UNAVAILABLE:
            connection.close()  # a broken connection is not reused; the next try opens one
            if time.monotonic() + delay > deadline:
                raise
            logger.warning("database unavailable; retrying the %s", what, extra={"retry_in": delay})
            time.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_DELAY_SECONDS)


def run_execute(*, run: Run) -> str:
    """Execute a run this worker has claimed; return the status it ended with."""
    attempt = run.attempts
    execute = get_executor(run.kind)
    if execute is None:
        run_fail(run=run, attempt=attempt, error_type="UnknownKind", message=f"no executor for {run.kind!r}")
        return "failed"

    ctx = ExecutionContext(run, attempt)
    try:
        with ctx.heartbeating():
            result = execute(run.payload, ctx)
    except RunCancelled:
        with_database_retry(lambda: run_mark_cancelled(run=run, attempt=attempt), "cancellation")
        return "cancelled"
    except RunLeaseLost:
        logger.warning("run lease lost; another worker owns it now", extra={"run_id": run.pk})
        return "lost"
    except Exception as exc:
        logger.warning("run failed", exc_info=True, extra={"run_id": run.pk, "kind": run.kind})
        error_type, message = type(exc).__name__, str(exc)
        status = with_database_retry(
            lambda: run_fail(run=run, attempt=attempt, error_type=error_type, message=message), "failure"
        )
        return "retrying" if status == "pending" else "failed"
    try:
        stored = with_database_retry(lambda: run_complete(run=run, attempt=attempt, result=result), "result")
    except Exception as exc:
        # The result could not be stored (not JSON, too large, an output check or the
        # kind's on_success failed, a database error): fail the run rather than leave it
        # running for the reconciler to execute again.
        logger.exception("could not store run result", extra={"run_id": run.pk})
        run_fail(run=run, attempt=attempt, error_type=type(exc).__name__, message=str(exc))
        return "failed"
    return "succeeded" if stored else "lost"
