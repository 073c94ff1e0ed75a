from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework import serializers

from apps.core.validators import BoundedJSONField, StrictUUIDField, validate_each
from apps.runs.models import MAX_PRIORITY, Run, RunStatus


class RunSubmitInputSerializer(serializers.Serializer):
    session = StrictUUIDField()
    kind = serializers.CharField(max_length=64)
    payload = BoundedJSONField(required=False, default=dict)
    priority = serializers.IntegerField(
        min_value=0, max_value=MAX_PRIORITY, default=0, help_text="0..9, higher runs first."
    )


class RunBatchSubmitInputSerializer(serializers.Serializer):
    runs = serializers.ListField(child=serializers.DictField(), allow_empty=False)

    def validate_runs(self, runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        limit = settings.MAX_BATCH_RUNS
        if len(runs) > limit:
            raise serializers.ValidationError(f"At most {limit} runs per batch; got {len(runs)}.")
        return validate_each(runs, RunSubmitInputSerializer)


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


# One instance for every response: a ModelSerializer builds its fields from the model each time
# it is instantiated, which cost more than writing a run out. to_representation keeps no state.
_RUN_OUTPUT = RunOutputSerializer()


def run_json(run: Run) -> dict[str, Any]:
    """A run as RunOutputSerializer writes it."""
    return _RUN_OUTPUT.to_representation(run)


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
