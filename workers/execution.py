"""Executing a claimed run on a worker: its executor, heartbeats, progress, cancellation,
and the outcome handed to the run services."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection
from django.utils import timezone

from apps.core.logging import run_id_var
from apps.runs.models import Run
from apps.runs.services import (
    RunCancelled,
    RunLeaseLost,
    run_complete,
    run_fail,
    run_mark_cancelled,
)
from apps.runs.services.lifecycle import (
    Completion,
    completion_prepare,
    run_complete_many,
    run_heartbeat_many,
)
from workers.context import ExecutionContext, keeping_leases
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


SUCCEEDED = "succeeded"


def _run_executor(run: Run) -> tuple[str, Any]:
    """Execute a claimed run; (SUCCEEDED, result) for the caller to store, or the status it
    ended with (failed, retrying, cancelled, lost) and None, already recorded."""
    attempt = run.attempts
    execute = get_executor(run.kind)
    if execute is None:
        run_fail(run=run, attempt=attempt, error_type="UnknownKind", message=f"no executor for {run.kind!r}")
        return "failed", None

    ctx = ExecutionContext(run, attempt)
    try:
        with ctx.heartbeating():
            result = execute(run.payload, ctx)
    except RunCancelled:
        with_database_retry(lambda: run_mark_cancelled(run=run, attempt=attempt), "cancellation")
        return "cancelled", None
    except RunLeaseLost:
        logger.warning("run lease lost; another worker owns it now", extra={"run_id": run.pk})
        return "lost", None
    except Exception as exc:
        logger.warning("run failed", exc_info=True, extra={"run_id": run.pk, "kind": run.kind})
        error_type, message = type(exc).__name__, str(exc)
        status = with_database_retry(
            lambda: run_fail(run=run, attempt=attempt, error_type=error_type, message=message), "failure"
        )
        return ("retrying" if status == "pending" else "failed"), None
    return SUCCEEDED, result


def _unstorable(run: Run, exc: Exception) -> str:
    # The result could not be stored (not JSON, too large, an output check or the kind's
    # on_success failed, a database error): fail the run rather than leave it running for
    # the reconciler to execute again.
    logger.error("could not store run result", exc_info=exc, extra={"run_id": run.pk})
    run_fail(run=run, attempt=run.attempts, error_type=type(exc).__name__, message=str(exc))
    return "failed"


def _store_result(run: Run, result: Any) -> str:
    attempt = run.attempts
    try:
        stored = with_database_retry(lambda: run_complete(run=run, attempt=attempt, result=result), "result")
    except Exception as exc:
        return _unstorable(run, exc)
    return SUCCEEDED if stored else "lost"


def run_execute(*, run: Run) -> str:
    """Execute a run this worker has claimed; return the status it ended with."""
    status, result = _run_executor(run)
    return _store_result(run, result) if status == SUCCEEDED else status


def _store_results(completions: list[Completion], statuses: dict[Any, str]) -> None:
    """Store results together; if that fails (one run's on_success, say), one by one, so one
    run's fault is its own. A database still away after the retries is not worked around: the
    runs are left running, for the reconciler."""
    if not completions:
        return
    try:
        stored = with_database_retry(lambda: run_complete_many(completions=completions), "results")
    except DATABASE_UNAVAILABLE:
        raise
    except Exception:
        logger.warning("could not store results together; storing them one by one", exc_info=True)
        for completion in completions:
            statuses[completion.run.pk] = _store_result(completion.run, completion.result)
        return
    for completion, ok in zip(completions, stored, strict=True):
        statuses[completion.run.pk] = SUCCEEDED if ok else "lost"


class _WaitingRuns:
    """The claimed runs of a message still waiting their turn. The lease keeper renews their
    leases every RUN_HEARTBEAT_SECONDS in one statement, on its own clock, however long the
    run before them takes; one no longer held, or asked to stop, is dropped."""

    def __init__(self, runs: list[Run]) -> None:
        self._lock = threading.Lock()
        self._waiting = {run.pk: run for run in runs}
        self._dropped: set[Any] = set()

    def take(self, run: Run) -> bool:
        """The run's turn: False if it was dropped while it waited."""
        with self._lock:
            self._waiting.pop(run.pk, None)
            return run.pk not in self._dropped

    def beat(self) -> None:
        with self._lock:
            waiting = list(self._waiting.values())
        if not waiting:
            return
        try:
            kept = run_heartbeat_many(runs=[(run, run.attempts) for run in waiting])
        except Exception:
            connection.close()  # reconnect at the next beat rather than reuse a broken one
            logger.warning("heartbeat of waiting runs failed", exc_info=True)
            return
        with self._lock:
            # (a run that started meanwhile is its own context's to stop)
            self._dropped.update(run.pk for run in waiting if run.pk not in kept and run.pk in self._waiting)


def run_execute_many(*, runs: list[Run]) -> dict[Any, str]:
    """Execute runs claimed together (one message of short runs), one after another, and
    store their results together; the status each ended with, by id. The results so far are
    stored every RUN_HEARTBEAT_SECONDS; a waiting run asked to stop is cancelled at its turn."""
    statuses: dict[Any, str] = {}
    finished: list[Completion] = []
    stored_at = time.monotonic()
    waiting = _WaitingRuns(runs)
    with keeping_leases(waiting):
        for run in runs:
            if time.monotonic() - stored_at >= settings.RUN_HEARTBEAT_SECONDS:
                _store_results(finished, statuses)
                finished, stored_at = [], time.monotonic()
            if not waiting.take(run):
                cancelled = with_database_retry(
                    lambda run=run: run_mark_cancelled(run=run, attempt=run.attempts), "cancellation"
                )
                statuses[run.pk] = "cancelled" if cancelled else "lost"
                continue
            token = run_id_var.set(str(run.pk))
            run.started_at = timezone.now()  # its duration is its own, not its wait in the message
            try:
                status, result = _run_executor(run)
                if status != SUCCEEDED:
                    statuses[run.pk] = status
                    continue
                try:
                    finished.append(completion_prepare(run=run, attempt=run.attempts, result=result))
                except Exception as exc:
                    statuses[run.pk] = _unstorable(run, exc)
            finally:
                run_id_var.reset(token)
    _store_results(finished, statuses)
    return statuses
