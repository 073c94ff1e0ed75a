"""Writes on RD curves: one curve per sweep, recorded when its run succeeds."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import transaction

from apps.rd.models import RDCurve, RDPoint


def rd_sweep_record(
    *, run: Any, nodes: int, points: Iterable[dict[str, Any]], knee: dict[str, Any] | None
) -> RDCurve:
    """Store a sweep's curve and knee (called inside the run's completion, on its worker)."""
    with transaction.atomic():
        curve = RDCurve.objects.create(
            run=run,
            session_id=run.session_id,
            nodes=int(nodes),
            knee_level=None if knee is None else int(knee["level"]),
            knee_rate=None if knee is None else float(knee["rate"]),
            knee_distortion=None if knee is None else float(knee["distortion"]),
        )
        RDPoint.objects.bulk_create(
            RDPoint(
                curve=curve,
                level=int(point["level"]),
                rate=float(point["rate"]),
                distortion=float(point["distortion"]),
            )
            for point in points
        )
    return curve
