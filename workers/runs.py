"""The run task: claim by compare-and-set, execute, persist. Thin by design."""

from __future__ import annotations

from celery import Task, shared_task

from apps.core.logging import run_id_var
from apps.core.queues import EXECUTE_RUN_TASK
from apps.runs.models import Run
from apps.runs.services import run_claim
from workers import bootstrap  # noqa: F401  (worker signals: heartbeat, reconcile on start)
from workers.execution import run_execute


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
        run = run_claim(run_id=run_id, hostname=self.request.hostname or "unknown")
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
