"""Backpressure per queue: a queue that is backed up refuses new submissions for a while
instead of piling them up without bound.

A queue is backed up when it holds its `max_queued` waiting runs or more (cleared to run and
not yet claimed), or when its oldest waiting run has waited past `max_wait_seconds` (since it
was last sent). A refusal is QueueOverloaded (429) with a Retry-After from the queue's drain
rate: the runs that ended on it in the last BACKPRESSURE_DRAIN_WINDOW_SECONDS.

Submissions are the platform's hot path, so a check costs one cache read: the figures of
every queue are read from the database in one statement at most once every
BACKPRESSURE_REFRESH_SECONDS per process, and shared through the cache (Redis: every web
process of every host reads what one of them counted).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from prometheus_client import Counter

from apps.core.exceptions import Overloaded
from apps.core.metrics import register_process_metric
from apps.core.rediscache import cache_get
from apps.runs.selectors import QueueFigures, run_queue_figures

logger = logging.getLogger(__name__)

CACHE_KEY = "backpressure:queues:v1"
# Past this age the cached figures are not used at all (the database is asked again).
CACHE_TIMEOUT_SECONDS = 60


# Counted where the refusal happens (each web process; summed across gunicorn's workers in
# multiprocess mode); the queues' state itself is a gauge read at scrape (apps.runs.metrics).
REFUSALS = register_process_metric(
    Counter(
        "limitgraph_backpressure_refusals",
        "Submissions refused because their queue was backed up, by queue.",
        ["queue"],
    )
)


class QueueOverloaded(Overloaded):
    code = "queue_overloaded"


@dataclass(frozen=True)
class Snapshot:
    read_at: float  # epoch seconds
    window_seconds: float
    queues: dict[str, QueueFigures]


@dataclass(frozen=True)
class QueueLimits:
    max_queued: int  # 0: no limit
    max_wait_seconds: float  # 0: no limit


@dataclass(frozen=True)
class QueuePressure:
    queue: str
    waiting: int
    oldest_wait_seconds: float
    drain_per_second: float
    limits: QueueLimits
    retry_after: int | None  # None: accepting

    @property
    def refusing(self) -> bool:
        return self.retry_after is not None


def queue_limits(queue: str) -> QueueLimits:
    """The queue's own entry in BACKPRESSURE_QUEUES (`gpu` covers `gpu.<index>`), else the defaults."""
    configured: dict[str, dict[str, float]] = settings.BACKPRESSURE_QUEUES
    entry = configured.get(queue) or configured.get(queue.split(".", 1)[0]) or {}
    return QueueLimits(
        max_queued=int(entry.get("max_queued", settings.BACKPRESSURE_MAX_QUEUED) or 0),
        max_wait_seconds=float(entry.get("max_wait_seconds", settings.BACKPRESSURE_MAX_WAIT_SECONDS) or 0),
    )


_lock = threading.Lock()
# the newest figures this process has (read by it, or by another process and found in the cache):
# what it answers from while they are fresh, and when the cache is down
_local: Snapshot | None = None
_last_read = 0.0


def _read() -> Snapshot:
    global _local, _last_read
    window = settings.BACKPRESSURE_DRAIN_WINDOW_SECONDS
    snapshot = Snapshot(
        read_at=time.time(), window_seconds=window, queues=run_queue_figures(window_seconds=window)
    )
    _local, _last_read = snapshot, time.monotonic()
    try:
        cache.set(CACHE_KEY, snapshot, timeout=CACHE_TIMEOUT_SECONDS)
    except Exception:
        logger.warning("backpressure: could not write the queues' figures to the cache", exc_info=True)
    return snapshot


def queues_snapshot() -> Snapshot:
    """The queues' figures, at most BACKPRESSURE_REFRESH_SECONDS old when this process may
    read them (else the newest there is)."""
    global _local
    refresh = settings.BACKPRESSURE_REFRESH_SECONDS
    known = _local
    if known is not None and 0 <= time.time() - known.read_at < refresh:
        return known  # fresh enough without asking the cache: a Redis round trip a submission less
    try:
        cached: Snapshot | None = cache_get(CACHE_KEY)
    except Exception:
        logger.warning("backpressure: cache unreachable; using this process's figures", exc_info=True)
        cached = None
    if cached is not None and 0 <= time.time() - cached.read_at < refresh:
        _local = cached
        return cached
    with _lock:
        # another thread of this process, or this one a moment ago, may have just read them
        # (_last_read: when this process last read the database)
        newest = max((s for s in (cached, _local) if s is not None), key=lambda s: s.read_at, default=None)
        if newest is not None and time.monotonic() - _last_read < refresh:
            return newest
        return _read()


def forget() -> None:
    """The next check reads the database again (tests; after changing limits by hand)."""
    global _local, _last_read
    with _lock:
        _local, _last_read = None, 0.0
        try:
            cache.delete(CACHE_KEY)
        except Exception:
            logger.warning("backpressure: could not clear the cached figures", exc_info=True)


def _pressure(queue: str, snapshot: Snapshot, now: float) -> QueuePressure:
    figures = snapshot.queues.get(queue) or QueueFigures(
        waiting=0, oldest_queued_at=None, finished_in_window=0
    )
    limits = queue_limits(queue)
    age = max(0.0, now - figures.oldest_queued_at) if figures.oldest_queued_at is not None else 0.0
    rate = figures.finished_in_window / snapshot.window_seconds if snapshot.window_seconds > 0 else 0.0
    # runs that must leave the queue before it accepts again: those over the count, or the
    # share that has waited too long (arrivals taken as spread evenly over the oldest's wait)
    excess = 0
    if limits.max_queued and figures.waiting >= limits.max_queued:
        excess = figures.waiting - limits.max_queued + 1
    if limits.max_wait_seconds and age > limits.max_wait_seconds:
        excess = max(excess, math.ceil(figures.waiting * (age - limits.max_wait_seconds) / age), 1)
    retry_after = None
    if excess:
        longest = settings.BACKPRESSURE_MAX_RETRY_AFTER_SECONDS
        retry_after = max(1, min(longest, math.ceil(excess / rate))) if rate > 0 else longest
    return QueuePressure(
        queue=queue,
        waiting=figures.waiting,
        oldest_wait_seconds=age,
        drain_per_second=rate,
        limits=limits,
        retry_after=retry_after,
    )


def queues_pressure(queues: Iterable[str]) -> list[QueuePressure]:
    snapshot = queues_snapshot()
    now = time.time()
    return [_pressure(queue, snapshot, now) for queue in queues]


def _describe(pressure: QueuePressure) -> str:
    limits = pressure.limits
    if limits.max_queued and pressure.waiting >= limits.max_queued:
        why = f"{pressure.waiting} runs are waiting (limit {limits.max_queued})"
    else:
        why = (
            f"its oldest waiting run has waited {pressure.oldest_wait_seconds:.0f} s "
            f"(limit {limits.max_wait_seconds:.0f} s)"
        )
    if pressure.drain_per_second > 0:
        drain = f"it finishes about {pressure.drain_per_second:.2f} runs/s"
    else:
        drain = "no run finished on it lately"
    return f"The {pressure.queue} queue is backed up: {why}, and {drain}. Retry in {pressure.retry_after} s."


def backpressure_check(*, queues: Iterable[str]) -> None:
    """QueueOverloaded naming the first backed-up queue among `queues` (the longest wait), else nothing."""
    refusing = [pressure for pressure in queues_pressure(sorted(set(queues))) if pressure.refusing]
    if not refusing:
        return
    worst = max(refusing, key=lambda pressure: pressure.retry_after or 0)
    REFUSALS.labels(queue=worst.queue).inc()
    raise QueueOverloaded(_describe(worst), retry_after=worst.retry_after or 1)
