"""`sleep`: sleeps for `seconds`, reporting progress; cancellable mid-way."""

from __future__ import annotations

import time
from typing import Any

from rest_framework import serializers

from apps.runs.kinds import RunContext, RunKind, register
from workers.routing import Queue

MAX_SLEEP_SECONDS = 600.0
# How often a sleeping run reports progress, hence how fast it notices a cancel.
PROGRESS_STEP_SECONDS = 0.2


class SleepPayloadSerializer(serializers.Serializer):
    seconds = serializers.FloatField(min_value=0.0, max_value=MAX_SLEEP_SECONDS)


def execute(payload: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
    seconds = float(payload["seconds"])
    started = time.monotonic()
    while (elapsed := time.monotonic() - started) < seconds:
        ctx.progress(elapsed / seconds)
        time.sleep(min(PROGRESS_STEP_SECONDS, seconds - elapsed))
    ctx.progress(1.0)
    return {"slept_seconds": round(time.monotonic() - started, 3)}


register(
    RunKind(
        name="sleep",
        payload_serializer=SleepPayloadSerializer,
        queue=Queue.CPU,
        execute=execute,
        time_limit_seconds=int(MAX_SLEEP_SECONDS) + 60,
        description="Sleeps for `seconds` (at most 600), reporting progress.",
    )
)
