"""Reads for exports: what a run, trace or session scope holds, as plain JSON-ready records.

Every record is built from the model's own fields (all of them, as stored), so an export is
complete without a list to keep in step with the models; a withheld result stays hidden,
as it does in the API. Records are read in chunks with their related rows prefetched, so a
session of many runs streams out in a bounded number of queries and memory.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Model, Prefetch, QuerySet

from apps.artifacts.models import Artifact
from apps.core.exceptions import NotFound
from apps.rd.models import RDPoint
from apps.runs.models import Run
from apps.runs.selectors import run_get_for_user
from apps.sessions.models import Session
from apps.sessions.selectors import session_get_for_user
from apps.traces.models import ProvenanceEntry, Trace
from apps.traces.selectors import trace_get_for_user

SCOPE_TYPES = ("run", "trace", "session")
# Runs read per query (with their traces, provenance, flags, curves and artifacts prefetched).
EXPORT_CHUNK_RUNS = 200


@dataclass(frozen=True)
class ExportScope:
    """What one export covers: runs (each with its trace) and traces without a run."""

    type: str
    id: str
    session: Session
    runs: QuerySet[Run]
    loose_traces: QuerySet[Trace]
    loose_artifacts: QuerySet[Artifact]

    def as_json(self) -> dict[str, str]:
        return {"type": self.type, "id": self.id}


def export_scope_get_for_user(
    *, user: AbstractBaseUser, scope_type: str, object_id: uuid.UUID | str
) -> ExportScope:
    """The scope the user may export; a foreign or unknown id is NotFound."""
    object_id = str(object_id)
    no_runs, no_traces, no_artifacts = Run.objects.none(), Trace.objects.none(), Artifact.objects.none()
    if scope_type == "run":
        run = run_get_for_user(user=user, run_id=object_id)
        if run is None:
            raise NotFound("Run not found.")
        return ExportScope(
            "run", object_id, run.session, Run.objects.filter(pk=run.pk), no_traces, no_artifacts
        )
    if scope_type == "trace":
        trace = trace_get_for_user(user=user, trace_id=object_id)
        if trace is None:
            raise NotFound("Trace not found.")
        if trace.run_id is not None:
            return ExportScope(
                "trace",
                object_id,
                trace.session,
                Run.objects.filter(pk=trace.run_id),
                no_traces,
                no_artifacts,
            )
        return ExportScope(
            "trace", object_id, trace.session, no_runs, Trace.objects.filter(pk=trace.pk), no_artifacts
        )
    if scope_type == "session":
        session = session_get_for_user(user=user, session_id=object_id)
        if session is None:
            raise NotFound("Session not found.")
        return ExportScope(
            "session",
            object_id,
            session,
            Run.objects.filter(session=session).order_by("created_at", "id"),
            Trace.objects.filter(session=session, run__isnull=True).order_by("created_at", "id"),
            Artifact.objects.filter(session=session, run__isnull=True).order_by("created_at", "id"),
        )
    raise ValueError(f"scope_type must be one of {SCOPE_TYPES}")


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        # UTC, the form provenance hashes are computed over (so a chain verifies offline)
        return value.astimezone(UTC).isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def model_record(obj: Model, *, exclude: tuple[str, ...] = ()) -> dict[str, Any]:
    """Every stored field of `obj` by name, a foreign key as the related row's id."""
    return {
        field.name: _json_value(field.value_from_object(obj))
        for field in obj._meta.concrete_fields
        if field.name not in exclude
    }


def session_record(session: Session) -> dict[str, Any]:
    return {**model_record(session), "owner_username": session.owner.get_username()}


def run_record(run: Run) -> dict[str, Any]:
    """A run with its trace, RD curve and artifacts (their metadata), as prefetched by run_records."""
    record = model_record(run)
    if run.result_withheld:
        record["result"] = None  # held for review: not shown until released, as in the API
    trace = getattr(run, "trace", None)
    curve = getattr(run, "rd_curve", None)
    record["trace"] = trace_record(trace) if trace is not None else None
    record["rd_curve"] = (
        {
            **model_record(curve),
            "points": [model_record(point, exclude=("id", "curve")) for point in curve.points.all()],
        }
        if curve is not None
        else None
    )
    record["artifacts"] = [
        model_record(artifact, exclude=("storage_key",)) for artifact in run.artifacts.all()
    ]
    return record


def trace_record(trace: Trace) -> dict[str, Any]:
    """A trace with its provenance chain, its flags and its review (if it has one)."""
    review = getattr(trace, "review", None)
    return {
        **model_record(trace),
        "provenance": [model_record(entry, exclude=("id", "trace")) for entry in trace.provenance.all()],
        "flags": [model_record(flag) for flag in trace.flags.all()],
        "review": model_record(review) if review is not None else None,
    }


_TRACE_PREFETCHES = (
    Prefetch("provenance", queryset=ProvenanceEntry.objects.order_by("seq")),
    "flags",
)


def run_records(scope: ExportScope) -> Iterator[dict[str, Any]]:
    runs = scope.runs.select_related("trace", "trace__review", "rd_curve").prefetch_related(
        Prefetch("trace__provenance", queryset=ProvenanceEntry.objects.order_by("seq")),
        "trace__flags",
        Prefetch("rd_curve__points", queryset=RDPoint.objects.order_by("level")),
        Prefetch("artifacts", queryset=Artifact.objects.order_by("created_at", "id")),
    )
    for run in runs.iterator(chunk_size=EXPORT_CHUNK_RUNS):
        yield run_record(run)


def loose_trace_records(scope: ExportScope) -> Iterator[dict[str, Any]]:
    traces = scope.loose_traces.select_related("review").prefetch_related(*_TRACE_PREFETCHES)
    for trace in traces.iterator(chunk_size=EXPORT_CHUNK_RUNS):
        yield trace_record(trace)


def loose_artifact_records(scope: ExportScope) -> Iterator[dict[str, Any]]:
    for artifact in scope.loose_artifacts.iterator(chunk_size=EXPORT_CHUNK_RUNS):
        yield model_record(artifact, exclude=("storage_key",))
