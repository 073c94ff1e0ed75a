"""`sleep`: sleeps for `seconds`, reporting progress; cancellable mid-way."""

from __future__ import annotations

from apps.core.queues import Queue
from apps.runs.kinds import RunKind, register
from apps.runs.kinds._strict import StrictFloatField, StrictPayloadSerializer

MAX_SLEEP_SECONDS = 600.0


class SleepPayloadSerializer(StrictPayloadSerializer):
    seconds = StrictFloatField(min_value=0.0, max_value=MAX_SLEEP_SECONDS)


register(
    RunKind(
        name="sleep",
        payload_serializer=SleepPayloadSerializer,
        queue=Queue.CPU,
        time_limit_seconds=int(MAX_SLEEP_SECONDS) + 60,
        description="Sleeps for `seconds` (at most 600), reporting progress.",
    )
)
