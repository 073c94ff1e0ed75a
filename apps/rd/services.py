"""Writes on RD curves. Runs on workers (it calls kernels.rd for the knee)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import UUID

from django.db import transaction

from apps.rd.models import RDKnee, RDPoint


def rd_points_record(
    *, session_id: UUID | str, run_id: UUID | str | None, points: Iterable[Any]
) -> RDKnee | None:
    """Upsert points by level, then recompute the session's knee over its whole curve."""
    from kernels.rd import RDPoint as KernelPoint
    from kernels.rd import knee_point

    with transaction.atomic():
        for point in points:
            RDPoint.objects.update_or_create(
                session_id=session_id,
                level=int(point.level),
                defaults={"run_id": run_id, "rate": float(point.rate), "distortion": float(point.distortion)},
            )
        curve = [
            KernelPoint(level=row.level, rate=row.rate, distortion=row.distortion)
            for row in RDPoint.objects.filter(session_id=session_id).order_by("level")
        ]
        knee = knee_point(curve)
        if knee is None:
            RDKnee.objects.filter(session_id=session_id).delete()
            return None
        stored, _ = RDKnee.objects.update_or_create(
            session_id=session_id,
            defaults={
                "level": int(knee.level),
                "rate": float(knee.rate),
                "distortion": float(knee.distortion),
                "points": len(curve),
            },
        )
    return stored
