"""`fgw`: fused Gromov-Wasserstein distance between two attributed graphs."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from apps.runs.kinds import RunContext, RunKind, register
from apps.runs.kinds.graph_payloads import (
    GraphPairSerializer,
    SolverOptionsSerializer,
    check_plan_size,
    gpu_or_cpu_queue,
)
from workers.routing import Queue


class FGWPayloadSerializer(SolverOptionsSerializer, GraphPairSerializer):
    return_plan = serializers.BooleanField(default=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        check_plan_size([attrs], attrs["return_plan"])
        return attrs


def execute(payload: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
    from apps.runs.kinds.graph_arrays import (
        Stopwatch,
        describe_backend,
        problem_of,
        result_of,
        solver_options,
    )
    from kernels.fgw import fgw

    M, C1, C2, p, q = problem_of(payload)
    options = solver_options(payload)
    ctx.check()
    with Stopwatch() as watch:
        result = fgw(M, C1, C2, p, q, return_plan=payload.get("return_plan", False), **options)
    ctx.progress(1.0)
    return result_of(
        result,
        backend=describe_backend(options["backend"]),
        seconds=watch.seconds,
        with_plan=payload.get("return_plan", False),
    )


register(
    RunKind(
        name="fgw",
        payload_serializer=FGWPayloadSerializer,
        queue=Queue.CPU,
        execute=execute,
        select_queue=gpu_or_cpu_queue,
        time_limit_seconds=1800,
        description="FGW distance between `source` and `target` graphs.",
    )
)
