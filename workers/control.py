"""Control-queue tasks: the reconciler that repairs lost deliveries."""

from __future__ import annotations

from dataclasses import asdict

from celery import shared_task


@shared_task(name="workers.control.reconcile_runs_task", acks_late=True, ignore_result=True)
def reconcile_runs_task() -> dict[str, int]:
    from apps.runs.services import run_reconcile

    return asdict(run_reconcile())
