"""Run kinds, web side: kind -> payload validator (with limits) -> queue policy.

A kind is one module in this package that calls `register(RunKind(...))`; every
public module here is imported at start (`load_kinds`), so a new kind needs no
list edited. What a kind does on a worker (its executor) lives in
`workers/executors/<kind>.py`; the web process never imports it.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rest_framework import serializers

from apps.core.exceptions import ValidationFailed
from apps.core.queues import Queue

if TYPE_CHECKING:
    from apps.runs.models import Run

DEFAULT_TIME_LIMIT_SECONDS = 3600

# Work a kind does on success, inside run_complete's transaction and attempt fence:
# a run that lost its lease writes nothing.
OnSuccess = Callable[["Run", Any], None]


@dataclass(frozen=True)
class RunKind:
    name: str
    payload_serializer: type[serializers.Serializer]
    queue: Queue
    time_limit_seconds: int = DEFAULT_TIME_LIMIT_SECONDS
    description: str = ""
    # The queue for a validated payload; may raise NoCapableWorker (apps.runs.devices).
    select_queue: Callable[[dict[str, Any]], str] | None = field(default=None)
    on_success: OnSuccess | None = field(default=None)
    # Failures worth another try, by exception class name (the web side imports no executor
    # code), with exponential backoff from retry_backoff_seconds, at most max_retries times.
    retry_on: tuple[str, ...] = ("ConnectionError", "TimeoutError", "OperationalError")
    max_retries: int = 3
    retry_backoff_seconds: float = 5.0
    # Runs that finish in milliseconds: a batch sends them several to a message
    # (RUN_MESSAGE_MAX_RUNS), executed one after another by one worker process. Not for
    # kinds that compute for long, whose runs must spread over the workers.
    shares_messages: bool = False

    def validate_payload(self, payload: Any, *, user: Any = None, session: Any = None) -> dict[str, Any]:
        """Return the cleaned payload or raise ValidationFailed naming each fault.

        `user` and `session` (the submitter and the run's session) reach the serializer's
        context, for inputs that refer to stored objects (artifacts)."""
        return self.payload_validator(user=user, session=session)(payload)

    def payload_validator(self, *, user: Any = None, session: Any = None) -> Callable[[Any], dict[str, Any]]:
        """validate_payload for many payloads of one submitter and session (a batch's): one
        serializer validates them all, as is_valid would one by one (a serializer builds its
        fields when it is made, which costs more than validating a small payload)."""
        serializer = self.payload_serializer(context={"user": user, "session": session})

        def validate(payload: Any) -> dict[str, Any]:
            if not isinstance(payload, dict):
                raise ValidationFailed(fields={"payload": ["Must be a JSON object."]})
            try:
                return dict(serializer.run_validation(payload))
            except serializers.ValidationError as exc:
                raise ValidationFailed(fields={"payload": exc.detail}) from None

        return validate

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
    """Import every public module of this package; each kind registers itself."""
    for module in pkgutil.iter_modules(__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"{__name__}.{module.name}")
