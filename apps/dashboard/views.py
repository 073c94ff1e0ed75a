"""The dashboard page: a signed-in person's sessions, a session's recent runs with their
status and progress kept current by the session's event stream (an EventSource in the page),
its RD and durations plots, and links to the admin for staff. Server-rendered, no build step."""

from __future__ import annotations

from uuid import UUID

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from apps.dashboard.selectors import dashboard_session, dashboard_sessions
from apps.runs.models import FINAL_STATUSES


def _uuid_or_none(value: str | None) -> UUID | None:
    try:
        return UUID(value) if value else None
    except ValueError:
        return None


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    sessions = list(dashboard_sessions(user=request.user))
    wanted = request.GET.get("session")
    selected = dashboard_session(user=request.user, session_id=_uuid_or_none(wanted), sessions=sessions)
    context = {
        "sessions": sessions,
        "selected": selected,
        "missing_session": bool(wanted) and selected is None,
        "final_statuses": [str(status) for status in FINAL_STATUSES],
    }
    return render(request, "dashboard/index.html", context, status=404 if context["missing_session"] else 200)
