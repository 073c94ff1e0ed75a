from __future__ import annotations

from django.db.models import QuerySet

from apps.rd.models import RDKnee, RDPoint
from apps.sessions.models import Session


def rd_curve_for_session(*, session: Session) -> QuerySet[RDPoint]:
    return RDPoint.objects.filter(session=session).order_by("level")


def rd_knee_for_session(*, session: Session) -> RDKnee | None:
    return RDKnee.objects.filter(session=session).first()
