"""Run events: what the live streams (`GET /api/v1/runs/{id}/events`, `.../sessions/{id}/events`)
carry, and how the run services publish them.

Every state change and progress write of a run is published after its transaction commits,
into Redis (EVENTS_REDIS_URL, the broker's Redis by default): one Lua call numbers the event
per run and per session (the SSE `id:`, monotonic, so `Last-Event-ID` resumes), keeps status
and output events in a short history (progress is superseded by the next snapshot), and
PUBLISHes it on the run's and the session's channels, which the web processes listen to
(apps.runs.streams). Publishing is best-effort: the run's row is the source of truth, which
every stream reads on connect and re-reads when it has heard nothing for a while, so a
lost event delays a stream, never corrupts it, and a failure to publish never fails a run.
No extra database query is made here: the event is built from the row the service holds.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any

import redis
from django.conf import settings
from django.db import transaction

from apps.runs.models import FINAL_STATUSES

if TYPE_CHECKING:
    from apps.runs.models import Run

logger = logging.getLogger(__name__)

STATUS = "status"
PROGRESS = "progress"
OUTPUT = "output"
HEARTBEAT = "heartbeat"
# Kept in the history for Last-Event-ID; progress events are not (the snapshot supersedes them).
STORED_EVENTS = (STATUS, OUTPUT)

KEY_PREFIX = "limitgraph:events"
# After a failure to reach Redis, publishing is skipped this long, so a worker whose events
# Redis is down does not wait for a timeout on every progress write.
RETRY_AFTER_FAILURE_SECONDS = 5.0
REDIS_TIMEOUT_SECONDS = 0.5
# A run's fields an event carries, as on the model (the API's names are in `state_of`).
STATE_FIELDS = (
    "status",
    "progress",
    "attempts",
    "cancel_requested",
    "result_withheld",
    "error",
)

# Events of one publish go in one call (a batch's hundred runs: one script run, not a hundred),
# as one JSON argument (a hundred runs' keys and values as separate arguments cost the web
# process more to pack than the rest of their events). ARGV: history length, ttl, and a JSON
# array of events, each [type, data (JSON text), run channel, session channel, store]. A
# channel's sequence and history keys are sequence_key(channel) and history_key(channel).
# Each stream gets its own id; the message on a channel is "<id>\n<event>\n<data>". Returns the
# run streams' ids.
_PUBLISH_LUA = """
local length, ttl = tonumber(ARGV[1]), tonumber(ARGV[2])
local function push(channel, event, data, store)
  local sequence, history = channel .. ':seq', channel .. ':history'
  local id = redis.call('INCR', sequence)
  redis.call('EXPIRE', sequence, ttl)
  local message = id .. '\\n' .. event .. '\\n' .. data
  if store then
    redis.call('ZADD', history, id, message)
    redis.call('ZREMRANGEBYRANK', history, 0, -length - 1)
    redis.call('EXPIRE', history, ttl)
  end
  redis.call('PUBLISH', channel, message)
  return id
end
local ids = {}
for i, e in ipairs(cjson.decode(ARGV[3])) do
  ids[i] = push(e[3], e[1], e[2], e[5])
  push(e[4], e[1], e[2], e[5])
end
return ids
"""
# Events per script call: keeps one call's time inside Redis short.
EVENTS_PER_CALL = 100


def run_channel(run_id: object) -> str:
    return f"{KEY_PREFIX}:run:{run_id}"


def session_channel(session_id: object) -> str:
    return f"{KEY_PREFIX}:session:{session_id}"


def sequence_key(channel: str) -> str:
    return f"{channel}:seq"


def history_key(channel: str) -> str:
    return f"{channel}:history"


def now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def state_of(
    fields: Mapping[str, Any], *, run_id: object, session_id: object, kind: str, action: str
) -> dict[str, Any]:
    """The data of a status or progress event (and of the snapshot a stream starts with)."""
    status = str(fields["status"])
    return {
        "run": str(run_id),
        "session": str(session_id),
        "kind": kind,
        "status": status,
        "progress": float(fields["progress"]),
        "attempts": int(fields["attempts"]),
        "cancel_requested": bool(fields["cancel_requested"]),
        "result_withheld": bool(fields["result_withheld"]),
        "error": fields["error"],
        "final": status in FINAL_STATUSES,
        "action": action,
        "at": now_iso(),
    }


def run_state(run: Run, *, action: str, values: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The run's state after an update of `values` (plain values only: an F() or Now() is
    not known without reading the row back, so the instance's value stands)."""
    fields = {name: getattr(run, name) for name in STATE_FIELDS}
    for name, value in (values or {}).items():
        if name in fields and not hasattr(value, "resolve_expression"):
            fields[name] = value
    return state_of(fields, run_id=run.pk, session_id=run.session_id, kind=run.kind, action=action)


class _Publisher:
    """One Redis client per process (redis-py's pool is fork-safe), with a short circuit breaker."""

    def __init__(self) -> None:
        self._client: redis.Redis | None = None
        self._url = ""
        self._script: Any = None
        self._down_until = 0.0
        self._lock = threading.Lock()

    def _ready(self) -> Any:
        url = settings.EVENTS_REDIS_URL
        if not url:
            return None
        with self._lock:
            if self._client is None or url != self._url:
                self._client = redis.Redis.from_url(
                    url, socket_timeout=REDIS_TIMEOUT_SECONDS, socket_connect_timeout=REDIS_TIMEOUT_SECONDS
                )
                self._url = url
                self._script = self._client.register_script(_PUBLISH_LUA)
                self._down_until = 0.0
        return None if time.monotonic() < self._down_until else self._script

    def publish(self, events: Iterable[tuple[str, dict[str, Any]]]) -> None:
        script = self._ready()
        if script is None:
            return
        calls, call = [], []
        for event, data in events:
            call.append(
                (
                    event,
                    json.dumps(data, separators=(",", ":"), default=str),
                    run_channel(data["run"]),
                    session_channel(data["session"]),
                    event in STORED_EVENTS,
                )
            )
            if len(call) == EVENTS_PER_CALL:
                calls.append(call)
                call = []
        if call:
            calls.append(call)
        try:
            try:
                self._execute(script.sha, calls)
            except redis.exceptions.NoScriptError:
                # Redis restarted (or flushed its scripts): none of them ran; load it, once.
                self._client.script_load(_PUBLISH_LUA)  # type: ignore[union-attr]
                self._execute(script.sha, calls)
        except Exception:
            # The row holds the state; streams re-read it. A run never fails for an event.
            self._down_until = time.monotonic() + RETRY_AFTER_FAILURE_SECONDS
            logger.warning("could not publish run events", exc_info=True)

    def _execute(self, sha: str, calls: list[list[tuple[Any, ...]]]) -> None:
        # EVALSHA in a plain pipeline: a script registered on the pipeline would first cost a
        # SCRIPT EXISTS round trip on every publish.
        length, ttl = settings.EVENTS_HISTORY_LENGTH, int(settings.EVENTS_HISTORY_SECONDS)
        pipe = self._client.pipeline(transaction=False)  # type: ignore[union-attr]
        for call in calls:
            pipe.evalsha(sha, 0, length, ttl, json.dumps(call, separators=(",", ":"), ensure_ascii=False))
        pipe.execute()


_publisher = _Publisher()


def _after_commit(events: list[tuple[str, dict[str, Any]]]) -> None:
    if events and settings.EVENTS_REDIS_URL:
        # robust: an on_commit callback that raised would surface in the caller after its commit
        transaction.on_commit(partial(_publisher.publish, events), robust=True)


def publish_run_state(run: Run, *, action: str, values: Mapping[str, Any] | None = None) -> None:
    """A status event for `run` after `values` were written, sent once the transaction commits."""
    _after_commit([(STATUS, run_state(run, action=action, values=values))])


def publish_run_states(changes: Iterable[tuple[Run, Mapping[str, Any] | None]], *, action: str) -> None:
    """publish_run_state for runs changed together (claimed or completed in one transaction):
    one round trip for all of them."""
    _after_commit([(STATUS, run_state(run, action=action, values=values)) for run, values in changes])


def publish_runs_created(runs: Iterable[Run]) -> None:
    """Status events for newly stored runs (one round trip for a batch)."""
    _after_commit([(STATUS, run_state(run, action="run.submitted")) for run in runs])


def publish_progress(run: Run, progress: float) -> None:
    _after_commit([(PROGRESS, run_state(run, action="run.progress", values={"progress": progress}))])


def publish_output(run: Run, text: str) -> None:
    """Partial output of a run (an `llm` run's tokens as they come)."""
    data = {
        "run": str(run.pk),
        "session": str(run.session_id),
        "kind": run.kind,
        "attempts": run.attempts,
        "text": text,
        "at": now_iso(),
    }
    _after_commit([(OUTPUT, data)])
