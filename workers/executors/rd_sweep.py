"""`rd_sweep`: rate-distortion points of one graph at several coarsening levels.

The points are recorded by the kind's on_success (apps.runs.kinds.rd_sweep), inside
the run's completion, so a run that lost its lease records none.
"""

from __future__ import annotations

from typing import Any

from workers.context import RunContext

# Levels per kernel call: rd_curve batches the FGW solves of the levels it is
# given; a few at a time still lets progress and cancellation show.
LEVELS_PER_CALL = 4


def execute(payload: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
    from kernels.rd import knee_point, rd_curve
    from workers.executors._graph_arrays import (
        GraphArtifactInvalid,
        features_of,
        load_graph,
        structure_of,
        weights_of,
    )

    graph = load_graph(payload["graph"], "graph")
    if any(level > graph["n"] for level in payload["levels"]):
        raise GraphArtifactInvalid(f"levels must lie in 1..{graph['n']} (the graph's nodes)")
    features, structure, weights = features_of(graph), structure_of(graph), weights_of(graph)
    points = []
    levels = payload["levels"]
    options: dict[str, Any] = {"epsilon": payload.get("epsilon", 1e-2)}
    if payload.get("max_iter") is not None:
        options["max_iter"] = payload["max_iter"]
    for start in range(0, len(levels), LEVELS_PER_CALL):
        ctx.check()
        points += rd_curve(
            features,
            structure,
            levels[start : start + LEVELS_PER_CALL],
            alpha=payload.get("alpha", 0.5),
            method=payload.get("method", "exact"),
            backend=ctx.backend(payload),
            weights=weights,
            **options,
        )
        ctx.progress(len(points) / len(levels))
    knee = knee_point(points)
    return {
        "nodes": graph["n"],
        "points": [{"level": p.level, "rate": p.rate, "distortion": p.distortion} for p in points],
        "knee": None
        if knee is None
        else {"level": knee.level, "rate": knee.rate, "distortion": knee.distortion},
    }
