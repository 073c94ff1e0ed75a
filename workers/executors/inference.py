"""`inference`: embed, classify or generate with a registered model, batched with the other
inference runs this worker is executing (workers.inference)."""

from __future__ import annotations

from typing import Any

from workers.context import RunContext


def execute(payload: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
    from workers.inference import run_inference

    return run_inference(payload, ctx)
