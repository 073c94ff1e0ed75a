"""`echo`: returns its payload. The smallest end-to-end check of the pipeline."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from apps.core.validators import BoundedJSONField
from apps.runs.kinds import RunContext, RunKind, register
from workers.routing import Queue


class EchoPayloadSerializer(serializers.Serializer):
    def to_internal_value(self, data: Any) -> Any:
        # Any JSON object is a valid echo payload, within the payload size limit.
        return BoundedJSONField().run_validation(data)


def execute(payload: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
    ctx.progress(1.0)
    return payload


register(
    RunKind(
        name="echo",
        payload_serializer=EchoPayloadSerializer,
        queue=Queue.CPU,
        execute=execute,
        time_limit_seconds=60,
        description="Returns its payload.",
    )
)
