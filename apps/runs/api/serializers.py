from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from django.conf import settings
from django.utils import timezone
from rest_framework import serializers

from apps.core.validators import (
    ANY_JSON_OBJECT,
    CANONICAL_UUID,
    BoundedJSONField,
    StrictUUIDField,
    validate_each,
)
from apps.runs.kinds import get_kind
from apps.runs.models import MAX_PRIORITY, Run, RunStatus


class RunSubmitInputSerializer(serializers.Serializer):
    session = StrictUUIDField()
    kind = serializers.CharField(max_length=64)
    payload = BoundedJSONField(required=False, default=dict)
    priority = serializers.IntegerField(
        min_value=0, max_value=MAX_PRIORITY, default=0, help_text="0..9, higher runs first."
    )


def _plainly_valid(item: dict[str, Any]) -> dict[str, Any] | None:
    """`item` as RunSubmitInputSerializer cleans it, when it is plainly valid: a canonical
    session id, a known kind, an object payload (within its limits) or none, an integer
    priority in range or none. None: the serializer is to say what is wrong (and clean what
    it would also accept, such as a priority sent as "5")."""
    session, kind, priority = item.get("session"), item.get("kind"), item.get("priority", 0)
    if type(session) is not str or not CANONICAL_UUID.fullmatch(session):  # "$" also matches before "\n"
        return None
    if type(kind) is not str or get_kind(kind) is None:
        return None
    if type(priority) is not int or not 0 <= priority <= MAX_PRIORITY:
        return None
    payload = item.get("payload", {})
    if type(payload) is not dict:
        return None
    try:
        payload = ANY_JSON_OBJECT.to_internal_value(payload)
    except serializers.ValidationError:
        return None
    return {"session": uuid.UUID(session), "kind": kind, "payload": payload, "priority": priority}


def submission_values(data: Any) -> dict[str, Any]:
    """A single submission's body as RunSubmitInputSerializer validates it (raising its
    ValidationError); a plainly valid one skips DRF's fields, which it builds per serializer."""
    if type(data) is dict:
        values = _plainly_valid(data)
        if values is not None:
            return values
    serializer = RunSubmitInputSerializer(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class _BatchRuns(serializers.ListField):
    """At most MAX_BATCH_RUNS JSON objects, each validated by the serializer that takes it."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(child=serializers.DictField(), **kwargs)

    def run_child_validation(self, data: list[Any]) -> list[Any]:
        # Before the items: a 1 MB body of 500,000 numbers got an error each (33 MB, a minute)
        limit = settings.MAX_BATCH_RUNS
        if len(data) > limit:
            raise serializers.ValidationError(f"At most {limit} runs per batch; got {len(data)}.")
        # Parsed JSON objects need no child validation (DictField's copies them key by key)
        if all(type(item) is dict for item in data):
            return list(data)
        return super().run_child_validation(data)


class RunBatchSubmitInputSerializer(serializers.Serializer):
    runs = _BatchRuns(allow_empty=False)

    def validate_runs(self, runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        # DRF's fields take some 50 us a run; a batch of plainly valid runs needs none of them
        cleaned = [_plainly_valid(item) for item in runs]
        if any(item is None for item in cleaned):
            return validate_each(runs, RunSubmitInputSerializer)
        return cleaned  # type: ignore[return-value]


class RunListFilterSerializer(serializers.Serializer):
    session = StrictUUIDField(required=False)
    status = serializers.ChoiceField(choices=RunStatus.choices, required=False)
    kind = serializers.CharField(max_length=64, required=False)


class RunOutputSerializer(serializers.ModelSerializer):
    trace = serializers.SerializerMethodField()
    worker = serializers.CharField(source="worker_hostname", read_only=True)
    result = serializers.SerializerMethodField(help_text="null while `result_withheld` (held for review).")

    class Meta:
        model = Run
        fields = [
            "id",
            "session",
            "kind",
            "payload",
            "queue",
            "priority",
            "status",
            "progress",
            "attempts",
            "cancel_requested",
            "idempotency_key",
            "worker",
            "created_at",
            "queued_at",
            "started_at",
            "finished_at",
            "duration_seconds",
            "result",
            "result_withheld",
            "hold_reason",
            "error",
            "trace",
        ]

    def get_trace(self, run: Run) -> str | None:
        trace = getattr(run, "trace", None)
        return str(trace.pk) if trace is not None else None

    def get_result(self, run: Run) -> Any:
        return None if run.result_withheld else run.result


def _datetime(value: datetime | None) -> str | None:
    # DateTimeField's ISO 8601: in the current time zone, UTC written "Z"
    if value is None:
        return None
    text = value.astimezone(timezone.get_current_timezone()).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def run_json(run: Run) -> dict[str, Any]:
    """A run as RunOutputSerializer writes it (the same JSON, field for field; a test holds
    them equal), written out: DRF's per-field machinery cost more than the rest of a batch's
    response."""
    trace = getattr(run, "trace", None)
    return {
        "id": str(run.id),
        "session": str(run.session_id),
        "kind": run.kind,
        "payload": run.payload,
        "queue": run.queue,
        "priority": int(run.priority),
        "status": str(run.status),
        "progress": float(run.progress),
        "attempts": int(run.attempts),
        "cancel_requested": bool(run.cancel_requested),
        "idempotency_key": run.idempotency_key,
        "worker": run.worker_hostname,
        "created_at": _datetime(run.created_at),
        "queued_at": _datetime(run.queued_at),
        "started_at": _datetime(run.started_at),
        "finished_at": _datetime(run.finished_at),
        "duration_seconds": None if run.duration_seconds is None else float(run.duration_seconds),
        "result": None if run.result_withheld else run.result,
        "result_withheld": bool(run.result_withheld),
        "hold_reason": run.hold_reason,
        "error": run.error,
        "trace": str(trace.pk) if trace is not None else None,
    }


class RunListOutputSerializer(RunOutputSerializer):
    """A slim row: no payload, no result (GET /runs/{id} has them)."""

    class Meta(RunOutputSerializer.Meta):
        fields = [
            name
            for name in RunOutputSerializer.Meta.fields
            if name not in ("payload", "result", "idempotency_key")
        ]


class RunProgressOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = Run
        fields = ["id", "status", "progress", "attempts", "cancel_requested", "started_at", "finished_at"]


class RunBatchOutputSerializer(serializers.Serializer):
    runs = RunOutputSerializer(many=True)
