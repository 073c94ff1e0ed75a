"""`fgw`: fused Gromov-Wasserstein distance between two attributed graphs."""

from __future__ import annotations

from typing import Any

from workers.context import RunContext


def execute(payload: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
    from kernels.fgw import fgw
    from workers.executors._graph_arrays import (
        Stopwatch,
        check_plan_entries,
        describe_backend,
        load_pair,
        problem_of,
        result_of,
        solver_options,
        store_large_plan,
    )

    payload = load_pair(payload)
    with_plan = payload.get("return_plan", False)
    check_plan_entries([payload], with_plan)
    M, C1, C2, p, q = problem_of(payload)
    options = solver_options(payload, ctx.backend(payload))
    ctx.check()
    with Stopwatch() as watch:
        result = fgw(M, C1, C2, p, q, return_plan=with_plan, **options)
    ctx.progress(1.0)
    out = result_of(
        result, backend=describe_backend(options["backend"]), seconds=watch.seconds, with_plan=with_plan
    )
    return store_large_plan(out, ctx.artifacts, "plan.json")
