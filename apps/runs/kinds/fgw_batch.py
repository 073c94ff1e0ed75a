"""`fgw_batch`: FGW for many graph pairs in vectorised kernel calls."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework import serializers

from apps.core.queues import Queue
from apps.core.validators import validate_each
from apps.runs.kinds import RunKind, register
from apps.runs.kinds._graph_payloads import (
    GraphPairSerializer,
    SolverOptionsSerializer,
    check_plan_size,
    graph_queue,
)
from apps.runs.kinds._strict import StrictBooleanField


class FGWBatchPayloadSerializer(SolverOptionsSerializer):
    pairs = serializers.ListField(child=serializers.JSONField(), allow_empty=False)
    return_plan = StrictBooleanField(default=False)

    def validate_pairs(self, pairs: list[Any]) -> list[dict[str, Any]]:
        limit = settings.FGW_MAX_PAIRS
        if len(pairs) > limit:
            raise serializers.ValidationError(
                f"{len(pairs)} pairs; the limit is {limit} pairs per batch (FGW_MAX_PAIRS)."
            )
        return validate_each(pairs, GraphPairSerializer, self.context)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        check_plan_size(attrs["pairs"], attrs["return_plan"])
        return attrs


register(
    RunKind(
        name="fgw_batch",
        payload_serializer=FGWBatchPayloadSerializer,
        queue=Queue.CPU,
        select_queue=graph_queue,
        time_limit_seconds=3600,
        description="FGW distances for many `pairs` of graphs.",
    )
)
