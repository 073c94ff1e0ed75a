"""`echo`: returns its payload. The smallest end-to-end check of the pipeline."""

from __future__ import annotations

from typing import Any

from workers.context import RunContext


def execute(payload: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
    ctx.progress(1.0)
    return payload
