"""Run kinds: kind -> payload validator (with limits) -> queue -> executor.

A kind is one module in this package that calls `register(RunKind(...))`,
plus its name in KIND_MODULES. Executors run on workers only and import
heavy code (kernels, torch) inside the function, so the web process never
loads it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from rest_framework import serializers

from workers.routing import Queue

KIND_MODULES: tuple[str, ...] = ("echo", "sleep", "fgw", "fgw_batch", "rd_sweep")

DEFAULT_TIME_LIMIT_SECONDS = 3600


class RunContext(Protocol):
    """What an executor may ask of the run it executes."""

    run_id: str
    session_id: str

    def progress(self, fraction: float) -> None:
        """Record progress (0..1); raises if the run was cancelled or lost its lease."""

    def check(self) -> None:
        """Raise if the run should stop, without recording progress."""


Executor = Callable[[dict[str, Any], RunContext], Any]


@dataclass(frozen=True)
class RunKind:
    name: str
    payload_serializer: type[serializers.Serializer]
    queue: Queue
    execute: Executor
    time_limit_seconds: int = DEFAULT_TIME_LIMIT_SECONDS
    description: str = ""
    select_queue: Callable[[dict[str, Any]], str] | None = field(default=None)

    def validate_payload(self, payload: Any) -> dict[str, Any]:
        """Return the cleaned payload or raise serializers.ValidationError."""
        if not isinstance(payload, dict):
            raise serializers.ValidationError({"payload": ["Must be a JSON object."]})
        serializer = self.payload_serializer(data=payload)
        if not serializer.is_valid():
            raise serializers.ValidationError({"payload": serializer.errors})
        return dict(serializer.validated_data)

    def queue_for(self, payload: dict[str, Any]) -> str:
        return self.select_queue(payload) if self.select_queue else self.queue.value


_REGISTRY: dict[str, RunKind] = {}


def register(kind: RunKind) -> RunKind:
    if kind.name in _REGISTRY and _REGISTRY[kind.name] is not kind:
        raise ValueError(f"Run kind {kind.name!r} is registered twice.")
    _REGISTRY[kind.name] = kind
    return kind


def get_kind(name: str) -> RunKind | None:
    return _REGISTRY.get(name)


def kind_names() -> list[str]:
    return sorted(_REGISTRY)


def load_kinds() -> None:
    for module in KIND_MODULES:
        importlib.import_module(f"{__name__}.{module}")
