"""`rd_sweep`: rate-distortion points of one graph at several coarsening levels.

Each sweep is its own curve (its run and its graph), with its own knee; on success
the points are recorded for /api/v1/rd/curve and /api/v1/rd/knee.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework import serializers

from apps.core.queues import Queue
from apps.rd.services import rd_sweep_record
from apps.runs.kinds import RunKind, register
from apps.runs.kinds._graph_payloads import SolverOptionsSerializer, graph_queue, validate_graph
from apps.runs.kinds._strict import StrictIntegerField
from apps.runs.models import Run


class RDSweepPayloadSerializer(SolverOptionsSerializer):
    graph = serializers.JSONField()
    levels = serializers.ListField(child=StrictIntegerField(min_value=1), allow_empty=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        graph = validate_graph(attrs["graph"], "graph", context=self.context)
        levels = attrs["levels"]
        limit = settings.RD_MAX_LEVELS
        if len(levels) > limit:
            raise serializers.ValidationError(
                {"levels": [f"{len(levels)} levels; the limit is {limit} (RD_MAX_LEVELS)."]}
            )
        if graph["n"] is not None and any(level > graph["n"] for level in levels):
            raise serializers.ValidationError(
                {"levels": [f"levels must lie in 1..{graph['n']} (the graph's nodes)."]}
            )
        return {**attrs, "graph": graph, "levels": sorted(set(levels))}


def record_points(run: Run, result: Any) -> None:
    rd_sweep_record(run=run, nodes=result["nodes"], points=result["points"], knee=result["knee"])


register(
    RunKind(
        name="rd_sweep",
        payload_serializer=RDSweepPayloadSerializer,
        queue=Queue.CPU,
        select_queue=graph_queue,
        on_success=record_points,
        time_limit_seconds=3600,
        description="Rate-distortion curve of `graph` at coarsening `levels`, with its knee.",
    )
)
