"""`echo`: returns its payload. The smallest end-to-end check of the pipeline."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from apps.core.queues import Queue
from apps.core.validators import ANY_JSON_OBJECT
from apps.runs.kinds import RunKind, register


class EchoPayloadSerializer(serializers.Serializer):
    def to_internal_value(self, data: Any) -> Any:
        # Any JSON object is a valid echo payload, within the payload size limit.
        return ANY_JSON_OBJECT.run_validation(data)


register(
    RunKind(
        name="echo",
        payload_serializer=EchoPayloadSerializer,
        queue=Queue.CPU,
        time_limit_seconds=60,
        description="Returns its payload.",
        shares_messages=True,
    )
)
