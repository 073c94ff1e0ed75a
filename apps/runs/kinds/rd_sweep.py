"""`rd_sweep`: rate-distortion points of one graph at several coarsening levels.

The points join the session's curve (a level swept again is replaced) and the
session's knee is recomputed; read them at /api/v1/rd/curve and /api/v1/rd/knee.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework import serializers

from apps.runs.kinds import RunContext, RunKind, register
from apps.runs.kinds.graph_payloads import SolverOptionsSerializer, gpu_or_cpu_queue, validate_graph
from workers.routing import Queue

# Levels per kernel call: rd_curve batches the FGW solves of the levels it is
# given; a few at a time still lets progress and cancellation show.
LEVELS_PER_CALL = 4


class RDSweepPayloadSerializer(SolverOptionsSerializer):
    graph = serializers.JSONField()
    levels = serializers.ListField(child=serializers.IntegerField(min_value=1), allow_empty=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        graph = validate_graph(attrs["graph"], "graph")
        if "features" not in graph:
            raise serializers.ValidationError({"graph": ["rd_sweep needs node `features` (n x d)."]})
        levels = attrs["levels"]
        limit = settings.RD_MAX_LEVELS
        if len(levels) > limit:
            raise serializers.ValidationError(
                {"levels": [f"{len(levels)} levels; the limit is {limit} (RD_MAX_LEVELS)."]}
            )
        if any(level > graph["n"] for level in levels):
            raise serializers.ValidationError(
                {"levels": [f"levels must lie in 1..{graph['n']} (the graph's nodes)."]}
            )
        return {**attrs, "graph": graph, "levels": sorted(set(levels))}


def execute(payload: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
    from apps.rd.services import rd_points_record
    from apps.runs.kinds.graph_arrays import features_of, resolve_backend, structure_of, weights_of
    from kernels.rd import rd_curve

    graph = payload["graph"]
    features, structure, weights = features_of(graph), structure_of(graph), weights_of(graph)
    points = []
    levels = payload["levels"]
    for start in range(0, len(levels), LEVELS_PER_CALL):
        ctx.check()
        points += rd_curve(
            features,
            structure,
            levels[start : start + LEVELS_PER_CALL],
            alpha=payload.get("alpha", 0.5),
            method=payload.get("method", "exact"),
            backend=resolve_backend(payload),
            weights=weights,
        )
        ctx.progress(len(points) / len(levels))
    knee = rd_points_record(session_id=ctx.session_id, run_id=ctx.run_id, points=points)
    return {
        "points": [{"level": p.level, "rate": p.rate, "distortion": p.distortion} for p in points],
        "knee": None
        if knee is None
        else {"level": knee.level, "rate": knee.rate, "distortion": knee.distortion, "points": knee.points},
    }


register(
    RunKind(
        name="rd_sweep",
        payload_serializer=RDSweepPayloadSerializer,
        queue=Queue.CPU,
        execute=execute,
        select_queue=gpu_or_cpu_queue,
        time_limit_seconds=3600,
        description="Rate-distortion points of `graph` at coarsening `levels`; updates the session's knee.",
    )
)
