"""Control-queue tasks: the reconciler that repairs lost deliveries."""

from __future__ import annotations

from dataclasses import asdict

from celery import shared_task

from apps.core.queues import RECONCILE_RUNS_TASK
from apps.governance.services import input_scans_resend
from apps.runs.services import run_reconcile


@shared_task(name=RECONCILE_RUNS_TASK, acks_late=True, ignore_result=True)
def reconcile_runs_task() -> dict[str, int]:
    # the runs app never sends held runs; a run held for its full input scan is governance's
    return {**asdict(run_reconcile()), "input_scans_resent": input_scans_resend()}
