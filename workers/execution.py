"""Executing a claimed run on a worker: its executor, heartbeats, progress, cancellation,
and the outcome handed to the run services."""

from __future__ import annotations

import logging

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
        run_mark_cancelled(run=run, attempt=attempt)
        return "cancelled"
    except RunLeaseLost:
        logger.warning("run lease lost; another worker owns it now", extra={"run_id": run.pk})
        return "lost"
    except Exception as exc:
        logger.warning("run failed", exc_info=True, extra={"run_id": run.pk, "kind": run.kind})
        status = run_fail(run=run, attempt=attempt, error_type=type(exc).__name__, message=str(exc))
        return "retrying" if status == "pending" else "failed"
    try:
        stored = run_complete(run=run, attempt=attempt, result=result)
    except Exception as exc:
        # The result could not be stored (not JSON, too large, an output check or the
        # kind's on_success failed, a database error): fail the run rather than leave it
        # running for the reconciler to execute again.
        logger.exception("could not store run result", extra={"run_id": run.pk})
        run_fail(run=run, attempt=attempt, error_type=type(exc).__name__, message=str(exc))
        return "failed"
    return "succeeded" if stored else "lost"
