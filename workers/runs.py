"""The run task: claim by compare-and-set, execute, persist. Thin by design."""

from __future__ import annotations

from celery import Task, shared_task

from apps.core.logging import run_id_var
from apps.core.queues import EXECUTE_RUN_TASK, EXECUTE_RUNS_TASK
from apps.runs.models import Run
from apps.runs.services import run_claim
from apps.runs.services.lifecycle import run_claim_many
from workers import bootstrap  # noqa: F401  (worker signals: heartbeat, reconcile on start)
from workers.execution import run_execute, run_execute_many, with_database_retry

# a message names at most this many runs (the sender's RUN_MESSAGE_MAX_RUNS is far below)
MAX_RUNS_PER_MESSAGE = 1000


class RunFailed(Exception):
    """Raised after a failed run is recorded, so Celery (and Flower) show the task failed."""


@shared_task(
    bind=True,
    name=EXECUTE_RUN_TASK,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
)
def execute_run_task(self: Task, run_id: str) -> str:
    token = run_id_var.set(run_id)
    try:
        hostname = self.request.hostname or "unknown"
        run = with_database_retry(lambda: run_claim(run_id=run_id, hostname=hostname), "claim")
        if run is None:
            # Redelivered, cancelled, or already held or finished elsewhere: nothing to do.
            return "skipped"
        status = run_execute(run=run)
    finally:
        run_id_var.reset(token)
    if status == "failed":
        error = Run.objects.filter(pk=run_id).values_list("error", flat=True).first() or {}
        raise RunFailed(f"run {run_id} failed: {error.get('type', 'Error')}: {error.get('message', '')}")
    return status


@shared_task(
    bind=True,
    name=EXECUTE_RUNS_TASK,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
)
def execute_runs_task(self: Task, run_ids: list[str]) -> str:
    """Several short runs of one batch in one message: claimed together, executed in turn,
    stored together. A run this message no longer wins (done, cancelled, taken by a resend)
    is skipped; one left running by a lost worker is the reconciler's, as for a single run."""
    if not isinstance(run_ids, list) or len(run_ids) > MAX_RUNS_PER_MESSAGE:
        raise ValueError(f"execute_runs_task takes a list of at most {MAX_RUNS_PER_MESSAGE} run ids")
    hostname = self.request.hostname or "unknown"
    runs = with_database_retry(lambda: run_claim_many(run_ids=run_ids, hostname=hostname), "claim")
    statuses = run_execute_many(runs=runs)
    failed = sorted(str(run_id) for run_id, status in statuses.items() if status == "failed")
    if failed:
        raise RunFailed(f"{len(failed)} of {len(run_ids)} runs failed: {', '.join(failed)}")
    return f"{sum(status == 'succeeded' for status in statuses.values())} of {len(run_ids)} succeeded"
