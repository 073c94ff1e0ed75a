"""Control-queue tasks: the reconciler that repairs lost deliveries."""

from __future__ import annotations

from dataclasses import asdict

from celery import shared_task

from apps.core.queues import RECONCILE_RUNS_TASK
from apps.runs.services import run_reconcile


@shared_task(name=RECONCILE_RUNS_TASK, acks_late=True, ignore_result=True)
def reconcile_runs_task() -> dict[str, int]:
    return asdict(run_reconcile())
