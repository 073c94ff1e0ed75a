"""The run task: claim by compare-and-set, execute, persist. Thin by design."""

from __future__ import annotations

from celery import Task, shared_task

from workers import bootstrap  # noqa: F401  (worker signals: heartbeat, reconcile on start)


@shared_task(
    bind=True,
    name="workers.runs.execute_run_task",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
)
def execute_run_task(self: Task, run_id: str) -> str:
    from apps.core.logging import run_id_var
    from apps.runs.execution import run_execute
    from apps.runs.services import run_claim

    token = run_id_var.set(run_id)
    try:
        run = run_claim(run_id=run_id, hostname=self.request.hostname or "unknown")
        if run is None:
            # Redelivered, cancelled, or already held or finished elsewhere: nothing to do.
            return "skipped"
        return run_execute(run=run)
    finally:
        run_id_var.reset(token)
