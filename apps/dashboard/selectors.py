"""What the dashboard page shows: a person's own sessions and a session's recent runs."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, F, Max, QuerySet

from apps.rd.models import RDCurve
from apps.runs.models import FINAL_STATUSES, Run
from apps.runs.selectors import run_rows_for_user
from apps.sessions.models import Session
from apps.sessions.selectors import session_get_for_user

RECENT_RUNS = 50
SESSIONS_SHOWN = 100


@dataclass(frozen=True)
class SessionView:
    session: Session
    runs: list[Run]
    has_rd_curves: bool
    has_finished_runs: bool


def dashboard_sessions(*, user: AbstractBaseUser) -> QuerySet[Session]:
    """The user's own sessions (staff included: the admin is where they see everyone's),
    most recently used first."""
    return (
        Session.objects.filter(owner=user)
        .annotate(run_count=Count("runs"), last_run_at=Max("runs__created_at"))
        .order_by(F("last_run_at").desc(nulls_last=True), "-created_at")[:SESSIONS_SHOWN]
    )


def dashboard_session(
    *, user: AbstractBaseUser, session_id: UUID | str | None, sessions: list[Session]
) -> SessionView | None:
    """The session asked for (any the user may see), else their most recently used one."""
    session = session_get_for_user(user=user, session_id=session_id) if session_id else None
    if session is None:
        if session_id is not None or not sessions:
            return None
        session = sessions[0]
    runs = list(run_rows_for_user(user=user, session_id=session.pk).order_by("-created_at")[:RECENT_RUNS])
    return SessionView(
        session=session,
        runs=runs,
        has_rd_curves=RDCurve.objects.filter(session=session).exists(),
        has_finished_runs=Run.objects.filter(
            session=session, status__in=FINAL_STATUSES, duration_seconds__isnull=False
        ).exists(),
    )
