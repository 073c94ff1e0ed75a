"""`fgw_batch`: FGW for many graph pairs in vectorised kernel calls."""

from __future__ import annotations

from typing import Any

from workers.context import RunContext

# Pairs per kernel call: big enough to vectorise well, small enough that
# progress and cancellation are noticed between calls.
PAIRS_PER_CALL = 64


def execute(payload: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
    from kernels.fgw import fgw_batch
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

    options = solver_options(payload, ctx.backend(payload))
    with_plan = payload.get("return_plan", False)
    pairs = [load_pair(pair) for pair in payload["pairs"]]
    check_plan_entries(pairs, with_plan)
    backend = describe_backend(options["backend"])
    results: list[dict[str, Any]] = []
    with Stopwatch() as total:
        for start in range(0, len(pairs), PAIRS_PER_CALL):
            ctx.check()
            chunk = [problem_of(pair) for pair in pairs[start : start + PAIRS_PER_CALL]]
            with Stopwatch() as watch:
                solved = fgw_batch(chunk, return_plan=with_plan, **options)
            per_pair = watch.seconds / len(chunk)
            for r in solved:
                out = result_of(r, backend=backend, seconds=per_pair, with_plan=with_plan)
                results.append(store_large_plan(out, ctx.artifacts, f"plan-{len(results)}.json"))
            ctx.progress(len(results) / len(pairs))
    return {"results": results, "pairs": len(results), "seconds": round(total.seconds, 6)}
