"""The live event streams, web side: server-sent events fed by Redis pub/sub.

Each web process holds one Redis pub/sub connection (EventHub) for all its open streams: a
stream subscribes its run's or session's channel, and the hub's one reader task fans the
messages out to the streams' queues. So an open stream costs a socket and a coroutine, no
thread and no database connection while it waits; the database is read when a stream
starts (the current state, which is the source of truth), and again when it has heard
nothing for EVENTS_HEARTBEAT_SECONDS (in case an event was lost), one query.

Without a Redis URL (EVENTS_REDIS_URL empty: a broker that is not Redis), or when Redis
cannot be reached as a stream starts, that stream polls the database every
EVENTS_POLL_SECONDS instead and sends what changed; its ids then continue from the client's
Last-Event-ID.

The wire format (README, "Live progress"): `id:` (per run, or per session, monotonic),
`event:` status | progress | output | heartbeat, `data:` one line of JSON. A run's stream
ends after the status event whose `final` is true; a session's stream runs until the client
leaves (or EVENTS_STREAM_MAX_SECONDS, after which a client reconnects with Last-Event-ID).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import weakref
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import redis.asyncio as aioredis
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection

from apps.runs import events
from apps.runs.models import FINAL_STATUSES, Run

logger = logging.getLogger(__name__)

# How long an EventSource waits before reconnecting (the `retry:` field), in milliseconds.
RECONNECT_MILLISECONDS = 2000
SUBSCRIBE_TIMEOUT_SECONDS = 5.0
# Events a stream may fall behind before it drops them and re-reads the state instead.
QUEUE_LENGTH = 1000
_STATE_COLUMNS = ("id", "session_id", "kind", *events.STATE_FIELDS)


@dataclass(frozen=True)
class Event:
    id: int | None
    type: str
    data: str  # one line of JSON, passed through as published

    def encode(self) -> bytes:
        head = f"id: {self.id}\n" if self.id is not None else ""
        return f"{head}event: {self.type}\ndata: {self.data}\n\n".encode()


def parse_message(message: bytes | str) -> Event:
    text = message.decode() if isinstance(message, bytes) else message
    event_id, event_type, data = text.split("\n", 2)
    return Event(int(event_id), event_type, data)


def heartbeat() -> bytes:
    return Event(None, events.HEARTBEAT, json.dumps({"at": events.now_iso()})).encode()


def status_event(event_id: int | None, state: dict[str, Any]) -> Event:
    return Event(event_id, events.STATUS, json.dumps(state, separators=(",", ":"), default=str))


RESYNC = object()  # put on every queue when the hub lost Redis: re-read the state


@dataclass(eq=False)
class Subscription:
    channel: str
    queue: asyncio.Queue[Event | object] = field(default_factory=lambda: asyncio.Queue(QUEUE_LENGTH))

    def deliver(self, item: Event | object) -> None:
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            # A client too slow to keep up: drop its backlog, let it re-read the state.
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(RESYNC)


class EventHub:
    """One pub/sub connection per process and event loop, shared by every open stream."""

    def __init__(self, url: str) -> None:
        self.redis = aioredis.Redis.from_url(url)
        self.pubsub = self.redis.pubsub()
        self.subscriptions: dict[str, set[Subscription]] = {}
        self.acks: dict[str, asyncio.Future[None]] = {}
        self.lock = asyncio.Lock()
        self.reader: asyncio.Task[None] | None = None

    async def subscribe(self, channel: str) -> Subscription:
        """A queue of the channel's events, from a moment Redis has confirmed (so none is lost
        between this and reading the state)."""
        subscription = Subscription(channel)
        async with self.lock:
            listeners = self.subscriptions.setdefault(channel, set())
            listeners.add(subscription)
            if len(listeners) == 1:
                self.acks[channel] = asyncio.get_running_loop().create_future()
                try:
                    await self.pubsub.subscribe(channel)
                except BaseException:
                    self._forget(subscription)
                    raise
                if self.reader is None or self.reader.done():
                    self.reader = asyncio.create_task(self._read(), name="event-hub-reader")
            ack = self.acks.get(channel)
        if ack is not None:
            try:
                await asyncio.wait_for(asyncio.shield(ack), SUBSCRIBE_TIMEOUT_SECONDS)
            except BaseException:
                await self.unsubscribe(subscription)
                raise
        return subscription

    async def unsubscribe(self, subscription: Subscription) -> None:
        async with self.lock:
            if self._forget(subscription):
                with contextlib.suppress(Exception):
                    await self.pubsub.unsubscribe(subscription.channel)

    def _forget(self, subscription: Subscription) -> bool:
        """Drop a subscription; True when it was its channel's last."""
        listeners = self.subscriptions.get(subscription.channel, set())
        listeners.discard(subscription)
        if listeners:
            return False
        self.subscriptions.pop(subscription.channel, None)
        ack = self.acks.pop(subscription.channel, None)
        if ack is not None and not ack.done():
            ack.cancel()
        return True

    async def last_id(self, channel: str) -> int:
        value = await self.redis.get(events.sequence_key(channel))
        return int(value or 0)

    async def history(self, channel: str, *, after: int) -> list[Event]:
        messages = await self.redis.zrangebyscore(events.history_key(channel), f"({after}", "+inf")
        return [parse_message(message) for message in messages]

    async def _read(self) -> None:
        while self.subscriptions:
            try:
                message = await self.pubsub.get_message(timeout=1.0)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("event hub lost Redis; streams re-read their state", exc_info=True)
                await self._recover()
                continue
            if message is None:
                continue
            channel = message["channel"]
            channel = channel.decode() if isinstance(channel, bytes) else channel
            if message["type"] == "subscribe":
                ack = self.acks.get(channel)
                if ack is not None and not ack.done():
                    ack.set_result(None)
            elif message["type"] == "message":
                try:
                    event = parse_message(message["data"])
                except ValueError:
                    continue
                for subscription in list(self.subscriptions.get(channel, ())):
                    subscription.deliver(event)

    async def _recover(self) -> None:
        for listeners in list(self.subscriptions.values()):
            for subscription in listeners:
                subscription.deliver(RESYNC)
        await asyncio.sleep(1.0)
        async with self.lock:
            with contextlib.suppress(Exception):
                await self.pubsub.aclose()
            self.pubsub = self.redis.pubsub()
            channels = list(self.subscriptions)
            if channels:
                with contextlib.suppress(Exception):
                    await self.pubsub.subscribe(*channels)


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, EventHub] = weakref.WeakKeyDictionary()


def event_hub() -> EventHub | None:
    """This event loop's hub, or None when events are not in Redis (the streams poll)."""
    url = settings.EVENTS_REDIS_URL
    if not url:
        return None
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None:
        hub = _hubs[loop] = EventHub(url)
    return hub


# --- reading the source of truth ------------------------------------------------------------


def _release_connection() -> None:
    # A stream lives for minutes: hand its database connection back (to the pool) between
    # reads rather than hold one per open stream. Never inside a transaction (tests run in one).
    if not connection.in_atomic_block:
        connection.close()


def _states(rows: list[dict[str, Any]], action: str) -> list[dict[str, Any]]:
    return [
        events.state_of(row, run_id=row["id"], session_id=row["session_id"], kind=row["kind"], action=action)
        for row in rows
    ]


def _read_run_states(run_ids: list[UUID | str], action: str) -> list[dict[str, Any]]:
    try:
        return _states(list(Run.objects.filter(pk__in=run_ids).values(*_STATE_COLUMNS)), action)
    finally:
        _release_connection()


def _read_session_states(session_id: UUID | str, action: str) -> list[dict[str, Any]]:
    """The session's unfinished runs, oldest first."""
    try:
        rows = (
            Run.objects.filter(session_id=session_id)
            .exclude(status__in=FINAL_STATUSES)
            .order_by("-created_at")
            .values(*_STATE_COLUMNS)[: settings.EVENTS_SESSION_SNAPSHOT_RUNS]
        )
        return _states(list(rows)[::-1], action)
    finally:
        _release_connection()


read_run_states = sync_to_async(_read_run_states)
read_session_states = sync_to_async(_read_session_states)


def _changed(before: dict[str, Any] | None, after: dict[str, Any]) -> str | None:
    """The event type a change from `before` to `after` makes, or None for no change."""
    keys = ("status", "attempts", "cancel_requested", "result_withheld", "error")
    if before is None or any(before[key] != after[key] for key in keys):
        return events.STATUS
    if before["progress"] != after["progress"]:
        return events.PROGRESS
    return None


# --- the streams -----------------------------------------------------------------------------


class _Stream:
    """What a run's and a session's stream share: the hub or the poll, heartbeats, lifetime."""

    def __init__(self, channel: str, last_event_id: int | None) -> None:
        self.channel = channel
        self.last_event_id = last_event_id
        self.sent_id = last_event_id or 0
        # run id -> the last state sent for it: what a re-read compares against
        self.known: dict[str, dict[str, Any]] = {}
        self.snapshot_sent = False  # replayed history never ends a stream; the state read after it may

    async def initial_states(self) -> list[dict[str, Any]]:
        raise NotImplementedError

    async def reread_states(self) -> list[dict[str, Any]]:
        raise NotImplementedError

    def done(self) -> bool:
        return False

    def _note(self, data: str | dict[str, Any]) -> None:
        state = json.loads(data) if isinstance(data, str) else data
        if "status" in state:
            self.known[state["run"]] = state

    def _changes(self, states: list[dict[str, Any]], event_id: Callable[[], int | None]) -> list[Event]:
        out = []
        for state in states:
            kind = _changed(self.known.get(state["run"]), state)
            if kind is not None:
                self._note(state)
                out.append(Event(event_id(), kind, json.dumps(state, separators=(",", ":"), default=str)))
        return out

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield f"retry: {RECONNECT_MILLISECONDS}\n\n".encode()
        hub = event_hub()
        subscription = None
        if hub is not None:
            try:
                subscription = await hub.subscribe(self.channel)
            except Exception:
                logger.warning("events Redis unreachable; this stream polls the database", exc_info=True)
        try:
            source = self._live(hub, subscription) if subscription else self._poll()
            async for chunk in source:
                yield chunk
        finally:
            if hub is not None and subscription is not None:
                await hub.unsubscribe(subscription)

    async def _live(self, hub: EventHub, subscription: Subscription) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + settings.EVENTS_STREAM_MAX_SECONDS
        current = await hub.last_id(self.channel)
        if self.last_event_id is not None and self.last_event_id < current:
            for event in await hub.history(self.channel, after=self.last_event_id):
                self._note(event.data)
                yield event.encode()
        # The state as of event `current` (events publish after their commit): later ones follow.
        self.sent_id = current
        for state in await self.initial_states():
            self._note(state)
            yield status_event(current, {**state, "action": "snapshot"}).encode()
        self.snapshot_sent = True
        while not self.done():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            try:
                item = await asyncio.wait_for(
                    subscription.queue.get(), min(remaining, settings.EVENTS_HEARTBEAT_SECONDS)
                )
            except TimeoutError:
                yield heartbeat()
                item = RESYNC  # heard nothing for a while: check the row, in case an event was lost
            if item is RESYNC:
                latest = max(self.sent_id, await _last_id_or(hub, self.channel, self.sent_id))
                for event in self._changes(await self.reread_states(), lambda latest=latest: latest):
                    yield event.encode()
                self.sent_id = latest
                continue
            assert isinstance(item, Event)
            if item.id is not None and item.id <= self.sent_id:
                continue  # already in the snapshot
            self.sent_id = item.id or self.sent_id
            self._note(item.data)
            yield item.encode()

    async def _poll(self) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + settings.EVENTS_STREAM_MAX_SECONDS
        quiet_since = loop.time()

        def next_id() -> int:
            self.sent_id += 1
            return self.sent_id

        for state in await self.initial_states():
            self._note(state)
            yield status_event(next_id(), {**state, "action": "snapshot"}).encode()
        self.snapshot_sent = True
        while not self.done() and loop.time() < deadline:
            await asyncio.sleep(settings.EVENTS_POLL_SECONDS)
            changes = self._changes(await self.reread_states(), next_id)
            for event in changes:
                yield event.encode()
            if changes:
                quiet_since = loop.time()
            elif loop.time() - quiet_since >= settings.EVENTS_HEARTBEAT_SECONDS:
                yield heartbeat()
                quiet_since = loop.time()


async def _last_id_or(hub: EventHub, channel: str, default: int) -> int:
    try:
        return await hub.last_id(channel)
    except Exception:
        return default


class RunStream(_Stream):
    """One run: its state, then its events, until a final status."""

    def __init__(self, run_id: UUID | str, last_event_id: int | None) -> None:
        super().__init__(events.run_channel(run_id), last_event_id)
        self.run_id = str(run_id)
        self.gone = False

    async def initial_states(self) -> list[dict[str, Any]]:
        return self._check_gone(await read_run_states([self.run_id], "snapshot"))

    async def reread_states(self) -> list[dict[str, Any]]:
        return self._check_gone(await read_run_states([self.run_id], "reread"))

    def _check_gone(self, states: list[dict[str, Any]]) -> list[dict[str, Any]]:
        self.gone = not states  # deleted meanwhile: nothing more will come
        return states

    def done(self) -> bool:
        state = self.known.get(self.run_id)
        return self.snapshot_sent and (self.gone or (state is not None and state["final"]))

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in super().__aiter__():
            yield chunk
            if self.done():
                return  # the final status is out: nothing more will come


class SessionStream(_Stream):
    """Every run of a session: the unfinished runs' states, then every event, until the client leaves."""

    def __init__(self, session_id: UUID | str, last_event_id: int | None) -> None:
        super().__init__(events.session_channel(session_id), last_event_id)
        self.session_id = str(session_id)

    async def initial_states(self) -> list[dict[str, Any]]:
        return await read_session_states(self.session_id, "snapshot")

    async def reread_states(self) -> list[dict[str, Any]]:
        # the runs it knows unfinished (they may have ended unheard) and any new unfinished ones
        unfinished = [run for run, state in self.known.items() if not state["final"]]
        states = {state["run"]: state for state in await read_session_states(self.session_id, "reread")}
        missing = [run for run in unfinished if run not in states]
        if missing:
            states.update((state["run"], state) for state in await read_run_states(missing, "reread"))
        return list(states.values())
