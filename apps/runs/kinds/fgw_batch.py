"""`fgw_batch`: FGW for many graph pairs in vectorised kernel calls."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework import serializers

from apps.core.validators import validate_each
from apps.runs.kinds import RunContext, RunKind, register
from apps.runs.kinds.graph_payloads import (
    GraphPairSerializer,
    SolverOptionsSerializer,
    check_plan_size,
    gpu_or_cpu_queue,
)
from workers.routing import Queue

# Pairs per kernel call: big enough to vectorise well, small enough that
# progress and cancellation are noticed between calls.
PAIRS_PER_CALL = 64


class FGWBatchPayloadSerializer(SolverOptionsSerializer):
    pairs = serializers.ListField(child=serializers.JSONField(), allow_empty=False)
    return_plan = serializers.BooleanField(default=False)

    def validate_pairs(self, pairs: list[Any]) -> list[dict[str, Any]]:
        limit = settings.FGW_MAX_PAIRS
        if len(pairs) > limit:
            raise serializers.ValidationError(
                f"{len(pairs)} pairs; the limit is {limit} pairs per batch (FGW_MAX_PAIRS)."
            )
        return validate_each(pairs, GraphPairSerializer)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        check_plan_size(attrs["pairs"], attrs["return_plan"])
        return attrs


def execute(payload: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
    from apps.runs.kinds.graph_arrays import (
        Stopwatch,
        describe_backend,
        problem_of,
        result_of,
        solver_options,
    )
    from kernels.fgw import fgw_batch

    options = solver_options(payload)
    with_plan = payload.get("return_plan", False)
    pairs = payload["pairs"]
    backend = describe_backend(options["backend"])
    results: list[dict[str, Any]] = []
    with Stopwatch() as total:
        for start in range(0, len(pairs), PAIRS_PER_CALL):
            ctx.check()
            chunk = [problem_of(pair) for pair in pairs[start : start + PAIRS_PER_CALL]]
            with Stopwatch() as watch:
                solved = fgw_batch(chunk, return_plan=with_plan, **options)
            per_pair = watch.seconds / len(chunk)
            results += [result_of(r, backend=backend, seconds=per_pair, with_plan=with_plan) for r in solved]
            ctx.progress(len(results) / len(pairs))
    return {"results": results, "pairs": len(results), "seconds": round(total.seconds, 6)}


register(
    RunKind(
        name="fgw_batch",
        payload_serializer=FGWBatchPayloadSerializer,
        queue=Queue.CPU,
        execute=execute,
        select_queue=gpu_or_cpu_queue,
        time_limit_seconds=3600,
        description="FGW distances for many `pairs` of graphs.",
    )
)
