"""Repairing what delivery lost: runs whose worker died, runs whose message vanished
(asked of the broker itself each pass), retries that are due.

Only runs cleared to run are ever sent again: held and blocked runs wait for a
release (apps.runs.services.submission.run_release), never for the reconciler.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, Q, QuerySet
from django.db.models.functions import Now
from django.utils import timezone

from apps.core.broker import broker_ready_counts
from apps.runs.kinds import get_kind
from apps.runs.models import Run, RunStatus
from apps.runs.services._transitions import held_by, transition
from apps.runs.services.lifecycle import run_cancel_children
from apps.runs.services.submission import run_enqueue, send_run

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReconcileReport:
    requeued: int
    failed: int
    resent: int


def _unrecoverable(run: Run, ran_for: float) -> tuple[RunStatus, dict[str, str]] | None:
    """The status and error of an orphaned run that must not run again, if it must not."""
    kind = get_kind(run.kind)
    if kind is not None and ran_for > kind.time_limit_seconds:
        # Killed at its hard time limit: running it again would hit the limit again.
        return RunStatus.FAILED, {
            "type": "TimeLimitExceeded",
            "message": f"ran past {kind.time_limit_seconds}s",
        }
    if run.attempts >= settings.RUN_MAX_ATTEMPTS:
        return RunStatus.DEAD, {"type": "WorkerLost", "message": f"worker lost {run.attempts} times"}
    return None


def _resend_lost_messages(now: datetime) -> int:
    """Send again the queued runs of every queue whose broker holds fewer waiting messages
    than the database holds messages for its queued runs (runs that share a message share its
    task id; older than the grace that covers a message being handed to a worker that has not
    claimed it yet). Duplicates are harmless: the claim is compare-and-set."""
    cutoff = now - timedelta(seconds=settings.RUN_LOST_MESSAGE_GRACE_SECONDS)
    queued = dict(
        Run.objects.filter(status=RunStatus.QUEUED, queued_at__lt=cutoff)
        .values_list("queue")
        .annotate(n=Count("task_id", distinct=True))
        .order_by()
    )
    if not queued:
        return 0
    ready = broker_ready_counts(sorted(queued))
    if ready is None:
        return 0
    resent = 0
    for queue, waiting in queued.items():
        if ready.get(queue, 0) >= waiting:
            continue
        logger.warning(
            "broker lost messages: re-sending the queue's runs",
            extra={"queue": queue, "queued_runs": waiting, "broker_messages": ready.get(queue, 0)},
        )
        for run in Run.objects.filter(status=RunStatus.QUEUED, queue=queue, queued_at__lt=cutoff):
            resent += _resend(run, Run.objects.filter(pk=run.pk, status=RunStatus.QUEUED), now)
    return resent


def _resend(run: Run, still_queued: QuerySet[Run], now: datetime) -> bool:
    """A queued run's own message, under a new task id (its old one may name a message of
    several runs, which a cancel must not revoke for all)."""
    task_id = str(uuid.uuid4())
    if not still_queued.update(queued_at=now, task_id=task_id):
        return False
    run.queued_at, run.task_id = now, task_id
    return send_run(run)


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
            if transition(
                stale,
                run,
                actor="reconciler",
                action="run.cancelled",
                data={"while": "orphaned"},
                status=RunStatus.CANCELLED,
                finished_at=now,
            ):
                run_cancel_children(run=run, actor="reconciler")
        elif (outcome := _unrecoverable(run, ran_for)) is not None:
            status, error = outcome
            if transition(
                stale,
                run,
                actor="reconciler",
                action=f"run.{status}",
                data={"error": error},
                status=status,
                finished_at=now,
                error=error,
            ):
                failed += 1
                run_cancel_children(run=run, actor="reconciler")
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

    # Committed but never sent (process died before on_commit ran, or broker was down), and
    # retries whose backoff is over.
    pending_cutoff = now - timedelta(seconds=settings.RUN_LEASE_SECONDS)
    unsent = Q(not_before__isnull=True, created_at__lt=pending_cutoff) | Q(not_before__lte=now)
    for run_id in Run.objects.filter(unsent, status=RunStatus.PENDING).values_list("pk", flat=True):
        resent += run_enqueue(run_id=run_id)

    resent += _resend_lost_messages(now)

    # Sent long ago and never claimed: the broker may have lost it. A duplicate is
    # harmless (the claim is compare-and-set); bumping queued_at spaces the re-sends.
    queued_cutoff = now - timedelta(seconds=settings.RUN_REQUEUE_AFTER_SECONDS)
    for run in Run.objects.filter(status=RunStatus.QUEUED, queued_at__lt=queued_cutoff):
        still = Run.objects.filter(pk=run.pk, status=RunStatus.QUEUED, queued_at=run.queued_at)
        resent += _resend(run, still, now)
    return ReconcileReport(requeued=requeued, failed=failed, resent=resent)


def run_hand_back(*, hostname: str) -> int:
    """A stopping worker's runs in flight, back to their queues at once: running -> pending
    under each run's current attempt, then sent again. The stopping process's later writes
    carry the old attempt and are fenced off; whichever worker claims the run next runs it.
    Returns how many were handed back."""
    handed = 0
    for run in Run.objects.select_related("trace").filter(status=RunStatus.RUNNING, worker_hostname=hostname):
        if transition(
            held_by(run, run.attempts),
            run,
            actor=hostname,
            action="run.handed_back",
            data={"attempt": run.attempts, "worker": hostname},
            status=RunStatus.PENDING,
            worker_hostname="",
            progress=0.0,
        ):
            handed += 1
            run_enqueue(run_id=run.pk)
    return handed
