"""`sleep`: sleeps for `seconds`, reporting progress; cancellable mid-way."""

from __future__ import annotations

import time
from typing import Any

from workers.context import RunContext

# How often a sleeping run reports progress, hence how fast it notices a cancel.
PROGRESS_STEP_SECONDS = 0.2


def execute(payload: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
    seconds = float(payload["seconds"])
    started = time.monotonic()
    while (elapsed := time.monotonic() - started) < seconds:
        ctx.progress(elapsed / seconds)
        time.sleep(min(PROGRESS_STEP_SECONDS, seconds - elapsed))
    ctx.progress(1.0)
    return {"slept_seconds": round(time.monotonic() - started, 3)}
