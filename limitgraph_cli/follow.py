"""Following a run to its end: the server's event stream, or polling where there is none.

`GET /api/v1/runs/{id}/events` is a server-sent event stream (`id:`, `event:`, `data:` lines,
`data` a JSON object with at least "status" and "progress"); a dropped stream is resumed
with `Last-Event-ID`. A server without that endpoint (404) is polled on
`GET /api/v1/runs/{id}/progress` instead.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from limitgraph_cli.client import Api, raise_for
from limitgraph_cli.errors import CliError, ExitCode

FINAL_STATUSES = frozenset({"succeeded", "failed", "cancelled", "dead"})
# Following stops here too: a blocked run waits for a person, not for the platform.
STOP_STATUSES = FINAL_STATUSES | {"blocked"}
POLL_INTERVAL_SECONDS = 0.5
# The server sends heartbeats well within this; a silent stream is reconnected.
STREAM_READ_TIMEOUT_SECONDS = 60.0
RECONNECT_DELAY_SECONDS = 1.0
MAX_RECONNECTS_WITHOUT_EVENTS = 10


@dataclass(frozen=True)
class Event:
    event: str
    data: str
    id: str | None
    retry_ms: int | None = None


def parse_sse(lines: Iterable[str]) -> Iterator[Event]:
    """Events of a text/event-stream (the WHATWG rules): fields until a blank line, `:` comments
    (heartbeats) skipped, multi-line data joined with newlines, event type "message" by default."""
    event, data, event_id, retry = "", [], None, None
    for raw in lines:
        line = raw.rstrip("\r\n")
        if not line:
            if data:
                yield Event(event or "message", "\n".join(data), event_id, retry)
            event, data, retry = "", [], None
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
        elif name == "id" and "\0" not in value:
            event_id = value  # kept across events, as the spec says
        elif name == "retry" and value.isdigit():
            retry = int(value)


def _state(data: str) -> dict[str, Any] | None:
    try:
        value = json.loads(data)
    except ValueError:
        return None
    return value if isinstance(value, dict) and "status" in value else None


class _Deadline:
    def __init__(self, seconds: float | None) -> None:
        self.at = None if seconds is None else time.monotonic() + seconds

    def check(self, run_id: str, state: dict[str, Any]) -> None:
        if self.at is not None and time.monotonic() >= self.at:
            raise CliError(
                f"run {run_id} is still {state.get('status', 'going')} after the timeout",
                ExitCode.NOT_FINISHED,
            )


def follow_run(
    api: Api,
    run_id: str,
    on_update: Callable[[dict[str, Any]], None],
    *,
    timeout: float | None = None,
    poll_interval: float = POLL_INTERVAL_SECONDS,
) -> dict[str, Any]:
    """Call `on_update` with each state ({"status", "progress", ...}) until the run stops
    (STOP_STATUSES); return that last state. CliError(NOT_FINISHED) after `timeout` seconds."""
    deadline = _Deadline(timeout)
    # LIMITGRAPH_FOLLOW=poll: for a server or proxy that buffers event streams (a WSGI server)
    stream = os.environ.get("LIMITGRAPH_FOLLOW", "stream") != "poll"
    state = _follow_stream(api, run_id, on_update, deadline) if stream else None
    if state is None:
        state = _poll(api, run_id, on_update, deadline, poll_interval)
    return state


def _follow_stream(
    api: Api, run_id: str, on_update: Callable[[dict[str, Any]], None], deadline: _Deadline
) -> dict[str, Any] | None:
    """The final state from the event stream; None when the server has no stream to offer."""
    last_id: str | None = None
    state: dict[str, Any] = {}
    delay, failures = RECONNECT_DELAY_SECONDS, 0
    read_timeout = STREAM_READ_TIMEOUT_SECONDS
    if deadline.at is not None:
        read_timeout = max(0.5, min(read_timeout, deadline.at - time.monotonic()))
    timeout = httpx.Timeout(10.0, read=read_timeout)
    while True:
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        if last_id is not None:
            headers["Last-Event-ID"] = last_id
        try:
            with api.stream(
                "GET", f"/api/v1/runs/{run_id}/events", headers=headers, timeout=timeout, check=False
            ) as response:
                if response.status_code == 404 or (
                    response.status_code < 400
                    and not response.headers.get("content-type", "").startswith("text/event-stream")
                ):
                    return None  # no event stream on this server: poll instead
                if response.status_code >= 400:
                    response.read()
                    raise_for(response)
                for event in parse_sse(response.iter_lines()):
                    failures = 0
                    last_id = event.id if event.id is not None else last_id
                    if event.retry_ms is not None:
                        delay = event.retry_ms / 1000
                    current = _state(event.data)
                    if current is None:
                        continue
                    state = current
                    on_update(state)
                    if state["status"] in STOP_STATUSES:
                        return state
                    deadline.check(run_id, state)
        except CliError as exc:
            if exc.code != ExitCode.UNAVAILABLE:
                raise
            failures += 1
            if failures > MAX_RECONNECTS_WITHOUT_EVENTS:
                raise
        # The stream ended (or broke) before the run did: resume where it stopped.
        deadline.check(run_id, state)
        time.sleep(delay)


def _poll(
    api: Api,
    run_id: str,
    on_update: Callable[[dict[str, Any]], None],
    deadline: _Deadline,
    interval: float,
) -> dict[str, Any]:
    while True:
        state = api.request("GET", f"/api/v1/runs/{run_id}/progress")
        on_update(state)
        if state["status"] in STOP_STATUSES:
            return state
        deadline.check(run_id, state)
        time.sleep(interval)
