from __future__ import annotations

from uuid import UUID

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from apps.traces.models import ProvenanceEntry, Trace


def trace_list_for_user(*, user: AbstractBaseUser, session_id: UUID | str | None = None) -> QuerySet[Trace]:
    traces = Trace.objects.select_related("session")
    if not user.is_staff:
        traces = traces.filter(session__owner=user)
    if session_id is not None:
        traces = traces.filter(session_id=session_id)
    return traces


def trace_get_for_user(*, user: AbstractBaseUser, trace_id: UUID | str) -> Trace | None:
    return trace_list_for_user(user=user).filter(pk=trace_id).first()


def provenance_list(*, trace: Trace) -> QuerySet[ProvenanceEntry]:
    return trace.provenance.order_by("seq")
