from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, Min, Q, QuerySet, Sum
from django.db.models.functions import Coalesce, Now

from apps.runs.models import FINAL_STATUSES, Run, RunEvent, RunStatus


def run_list_for_user(
    *,
    user: AbstractBaseUser,
    session_id: UUID | str | None = None,
    status: str | None = None,
    kind: str | None = None,
) -> QuerySet[Run]:
    runs = Run.objects.select_related("trace")
    if not user.is_staff:
        # Scoped like sessions and traces: the session's owner sees every run in it.
        runs = runs.filter(session__owner=user)
    if session_id is not None:
        runs = runs.filter(session_id=session_id)
    if status is not None:
        runs = runs.filter(status=status)
    if kind is not None:
        runs = runs.filter(kind=kind)
    return runs


def run_rows_for_user(
    *,
    user: AbstractBaseUser,
    session_id: UUID | str | None = None,
    status: str | None = None,
    kind: str | None = None,
) -> QuerySet[Run]:
    """run_list_for_user without the payload and result columns (list pages)."""
    return run_list_for_user(user=user, session_id=session_id, status=status, kind=kind).defer(
        "payload", "result"
    )


def run_get_for_user(*, user: AbstractBaseUser, run_id: UUID | str) -> Run | None:
    return run_list_for_user(user=user).filter(pk=run_id).first()


def run_events_for_user(
    *, user: AbstractBaseUser, run_id: UUID | str, after: int = 0, limit: int = 500
) -> list[RunEvent] | None:
    """A run's stored events newer than `after` (an event id), oldest first; None when the
    user may not see the run."""
    if run_get_for_user(user=user, run_id=run_id) is None:
        return None
    return list(RunEvent.objects.filter(run_id=run_id, id__gt=after).order_by("id")[:limit])


@dataclass(frozen=True)
class RunMetricsSnapshot:
    submitted_by_kind: dict[str, int]
    finished_by_kind_status: dict[tuple[str, str], int]
    # (kind, queue) -> ([(upper bound, cumulative count), ..., ("+Inf", n)], sum of seconds)
    durations: dict[tuple[str, str], tuple[list[tuple[float | str, int]], float]]
    queued_by_queue: dict[str, int]


def run_metrics_snapshot(*, buckets: Sequence[float]) -> RunMetricsSnapshot:
    """Aggregates for the Prometheus scrape: a handful of GROUP BY queries."""
    submitted = {
        row["kind"]: row["n"] for row in Run.objects.values("kind").annotate(n=Count("pk")).order_by()
    }
    finished = {
        (row["kind"], row["status"]): row["n"]
        for row in Run.objects.filter(status__in=FINAL_STATUSES)
        .values("kind", "status")
        .annotate(n=Count("pk"))
        .order_by()
    }
    bucket_counts = {
        f"le_{index}": Count("pk", filter=Q(duration_seconds__lte=bound))
        for index, bound in enumerate(buckets)
    }
    durations = {}
    for row in (
        Run.objects.filter(status__in=FINAL_STATUSES, duration_seconds__isnull=False)
        .values("kind", "queue")
        .annotate(n=Count("pk"), total=Sum("duration_seconds"), **bucket_counts)
        .order_by()
    ):
        cumulative: list[tuple[float | str, int]] = [
            (bound, row[f"le_{index}"]) for index, bound in enumerate(buckets)
        ]
        cumulative.append(("+Inf", row["n"]))
        durations[(row["kind"], row["queue"])] = (cumulative, float(row["total"] or 0.0))
    queued = {
        row["queue"]: row["n"]
        for row in Run.objects.filter(status=RunStatus.QUEUED)
        .values("queue")
        .annotate(n=Count("pk"))
        .order_by()
    }
    return RunMetricsSnapshot(submitted, finished, durations, queued)


@dataclass(frozen=True)
class QueueFigures:
    """One queue's load: runs cleared to run and not yet claimed, since when the oldest of
    them has waited (its last send, epoch seconds), and runs that ended in the window."""

    waiting: int
    oldest_queued_at: float | None
    finished_in_window: int


def run_queue_figures(*, window_seconds: float) -> dict[str, QueueFigures]:
    """Every queue with waiting runs or runs finished in the last `window_seconds`: one
    GROUP BY over two indexes (status + queue, and finished_at)."""
    since = Now() - timedelta(seconds=window_seconds)
    # pending runs waiting out a retry's backoff are not in the queue yet
    waiting = Q(status=RunStatus.QUEUED) | Q(
        Q(not_before__isnull=True) | Q(not_before__lte=Now()), status=RunStatus.PENDING
    )
    finished = Q(finished_at__gte=since)
    rows = (
        Run.objects.filter(waiting | finished)
        .values("queue")
        .annotate(
            waiting=Count("pk", filter=waiting),
            oldest=Min(Coalesce("queued_at", "created_at"), filter=waiting),
            finished=Count("pk", filter=finished),
        )
        .order_by()
    )
    return {
        row["queue"]: QueueFigures(
            waiting=row["waiting"],
            oldest_queued_at=row["oldest"].timestamp() if row["oldest"] is not None else None,
            finished_in_window=row["finished"],
        )
        for row in rows
    }
