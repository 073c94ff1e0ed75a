"""`fgw`: fused Gromov-Wasserstein distance between two attributed graphs."""

from __future__ import annotations

from typing import Any

from apps.core.queues import Queue
from apps.runs.kinds import RunKind, register
from apps.runs.kinds._graph_payloads import (
    GraphPairSerializer,
    SolverOptionsSerializer,
    check_plan_size,
    graph_queue,
)
from apps.runs.kinds._strict import StrictBooleanField


class FGWPayloadSerializer(SolverOptionsSerializer, GraphPairSerializer):
    return_plan = StrictBooleanField(default=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        check_plan_size([attrs], attrs["return_plan"])
        return attrs


register(
    RunKind(
        name="fgw",
        payload_serializer=FGWPayloadSerializer,
        queue=Queue.CPU,
        select_queue=graph_queue,
        time_limit_seconds=1800,
        description="FGW distance between `source` and `target` graphs.",
    )
)
