"""Repairing what delivery lost: runs whose worker died, runs whose message vanished.

Only runs cleared to run are ever sent again: held and blocked runs wait for a
release (apps.runs.services.submission.run_release), never for the reconciler.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models.functions import Now
from django.utils import timezone

from apps.runs.kinds import get_kind
from apps.runs.models import Run, RunStatus
from apps.runs.services._transitions import held_by, transition
from apps.runs.services.submission import run_enqueue, send_run


@dataclass(frozen=True)
class ReconcileReport:
    requeued: int
    failed: int
    resent: int


def _unrecoverable(run: Run, ran_for: float) -> dict[str, str] | None:
    """Why an orphaned run must fail instead of running again, if it must."""
    kind = get_kind(run.kind)
    if kind is not None and ran_for > kind.time_limit_seconds:
        # Killed at its hard time limit: running it again would hit the limit again.
        return {"type": "TimeLimitExceeded", "message": f"ran past {kind.time_limit_seconds}s"}
    if run.attempts >= settings.RUN_MAX_ATTEMPTS:
        return {"type": "WorkerLost", "message": f"worker lost {run.attempts} times"}
    return None


def run_reconcile() -> ReconcileReport:
    now = timezone.now()
    lease_cutoff = Now() - timedelta(seconds=settings.RUN_LEASE_SECONDS)
    requeued = failed = resent = 0

    for run in Run.objects.select_related("trace").filter(
        status=RunStatus.RUNNING, heartbeat_at__lt=lease_cutoff
    ):
        stale = held_by(run, run.attempts).filter(heartbeat_at__lt=lease_cutoff)
        ran_for = (now - run.started_at).total_seconds() if run.started_at else 0.0
        if run.cancel_requested:
            transition(
                stale,
                run,
                actor="reconciler",
                action="run.cancelled",
                data={"while": "orphaned"},
                status=RunStatus.CANCELLED,
                finished_at=now,
            )
        elif (error := _unrecoverable(run, ran_for)) is not None:
            failed += transition(
                stale,
                run,
                actor="reconciler",
                action="run.failed",
                data={"error": error},
                status=RunStatus.FAILED,
                finished_at=now,
                error=error,
            )
        elif transition(
            stale,
            run,
            actor="reconciler",
            action="run.requeued",
            data={"attempt": run.attempts, "worker": run.worker_hostname},
            status=RunStatus.PENDING,
            worker_hostname="",
            progress=0.0,
        ):
            requeued += 1
            run_enqueue(run_id=run.pk)

    # Committed but never sent (process died before on_commit ran, or broker was down).
    pending_cutoff = now - timedelta(seconds=settings.RUN_LEASE_SECONDS)
    for run_id in Run.objects.filter(status=RunStatus.PENDING, created_at__lt=pending_cutoff).values_list(
        "pk", flat=True
    ):
        resent += run_enqueue(run_id=run_id)

    # Sent long ago and never claimed: the broker may have lost it. A duplicate is
    # harmless (the claim is compare-and-set); bumping queued_at spaces the re-sends.
    queued_cutoff = now - timedelta(seconds=settings.RUN_REQUEUE_AFTER_SECONDS)
    for run in Run.objects.filter(status=RunStatus.QUEUED, queued_at__lt=queued_cutoff):
        if Run.objects.filter(pk=run.pk, status=RunStatus.QUEUED, queued_at=run.queued_at).update(
            queued_at=now
        ):
            resent += send_run(run)
    return ReconcileReport(requeued=requeued, failed=failed, resent=resent)
