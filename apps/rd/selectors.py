from __future__ import annotations

from uuid import UUID

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Prefetch, QuerySet

from apps.rd.models import RDCurve, RDPoint


def rd_curve_list_for_user(
    *, user: AbstractBaseUser, session_id: UUID | str | None = None, run_id: UUID | str | None = None
) -> QuerySet[RDCurve]:
    """Curves the user may see (their sessions'; staff see all), newest first, points in level order."""
    curves = RDCurve.objects.prefetch_related(Prefetch("points", queryset=RDPoint.objects.order_by("level")))
    if not user.is_staff:
        curves = curves.filter(session__owner=user)
    if session_id is not None:
        curves = curves.filter(session_id=session_id)
    if run_id is not None:
        curves = curves.filter(run_id=run_id)
    return curves
