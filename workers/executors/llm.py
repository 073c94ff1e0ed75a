"""`llm`: a chat with a remote provider's model, with tools (workers/llm)."""

from __future__ import annotations

from typing import Any

from workers.context import RunContext


def execute(payload: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
    from workers.llm.loop import run_llm

    return run_llm(payload, ctx)  # type: ignore[arg-type]
