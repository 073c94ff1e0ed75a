"""Reads for plots: which picture a request wants, and the data a worker draws it from."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from django.db.models import Max, Prefetch, QuerySet

from apps.plots.models import Plot, PlotSubject, plot_key
from apps.rd.models import RDCurve, RDPoint
from apps.runs.models import FINAL_STATUSES, Run

# A session's RD plot draws its newest sweeps, a durations plot its newest finished runs.
RD_SESSION_MAX_CURVES = 10
DURATIONS_MAX_RUNS = 10_000


@dataclass(frozen=True)
class CurveData:
    label: str
    points: list[tuple[int, float, float]]  # (level, rate, distortion), by level
    knee: tuple[int, float, float] | None


@dataclass(frozen=True)
class RDPlotData:
    title: str
    curves: list[CurveData]
    as_of: datetime


@dataclass(frozen=True)
class DurationsPlotData:
    title: str
    as_of: datetime
    seconds_by_kind: dict[str, list[float]] = field(default_factory=dict)


def plot_find(
    *, session_id: UUID | str, subject: str, fmt: str, run_id: UUID | str | None = None
) -> Plot | None:
    return (
        Plot.objects.select_related("artifact")
        .filter(session_id=session_id, key=plot_key(subject, run_id), format=fmt)
        .first()
    )


def plot_data_as_of(
    *, subject: str, session_id: UUID | str, run_id: UUID | str | None = None
) -> datetime | None:
    """When the data a plot draws last changed; None when there is nothing to draw."""
    if subject == PlotSubject.RD_RUN:
        return (
            RDCurve.objects.filter(run_id=run_id, session_id=session_id)
            .values_list("created_at", flat=True)
            .first()
        )
    if subject == PlotSubject.RD_SESSION:
        return RDCurve.objects.filter(session_id=session_id).aggregate(latest=Max("created_at"))["latest"]
    return _finished_runs(session_id).aggregate(latest=Max("finished_at"))["latest"]


def _finished_runs(session_id: UUID | str) -> QuerySet[Run]:
    return Run.objects.filter(
        session_id=session_id,
        status__in=FINAL_STATUSES,
        duration_seconds__isnull=False,
        finished_at__isnull=False,
    )


def _curve_data(curve: RDCurve, label: str) -> CurveData:
    return CurveData(
        label=label,
        points=[(point.level, point.rate, point.distortion) for point in curve.points.all()],
        knee=None if curve.knee_level is None else (curve.knee_level, curve.knee_rate, curve.knee_distortion),
    )


def plot_data(
    *, subject: str, session_id: UUID | str, run_id: UUID | str | None = None
) -> RDPlotData | DurationsPlotData | None:
    """What a worker draws, by ids the platform chose (callers scope requests before they get here)."""
    if subject in (PlotSubject.RD_RUN, PlotSubject.RD_SESSION):
        curves = RDCurve.objects.filter(session_id=session_id).prefetch_related(
            Prefetch("points", queryset=RDPoint.objects.order_by("level"))
        )
        if subject == PlotSubject.RD_RUN:
            curve = curves.filter(run_id=run_id).first()
            if curve is None:
                return None
            title = f"RD curve of sweep {str(curve.run_id)[:8]} ({curve.nodes} nodes)"
            return RDPlotData(title, [_curve_data(curve, f"{curve.nodes} nodes")], curve.created_at)
        newest = list(curves.order_by("-created_at")[:RD_SESSION_MAX_CURVES])
        if not newest:
            return None
        return RDPlotData(
            f"RD curves of the session's {len(newest)} newest sweeps",
            [
                _curve_data(curve, f"sweep {str(curve.run_id)[:8]} ({curve.nodes} nodes)")
                for curve in newest[::-1]
            ],
            newest[0].created_at,
        )
    rows = list(
        _finished_runs(session_id)
        .order_by("-finished_at")
        .values_list("kind", "duration_seconds", "finished_at")[:DURATIONS_MAX_RUNS]
    )
    if not rows:
        return None
    seconds: dict[str, list[float]] = defaultdict(list)
    for kind, duration, _ in rows:
        seconds[kind].append(float(duration))
    return DurationsPlotData(
        f"Run durations by kind ({len(rows)} finished runs)", rows[0][2], dict(sorted(seconds.items()))
    )
