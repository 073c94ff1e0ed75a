"""Batching across runs inside one worker process: concurrent runs (threads of a threads or
solo pool) hand their inputs to a MicroBatcher and wait; one dispatcher thread gathers the
inputs of every run waiting on the same key (model, task, device) into one call.

A batch closes when it holds `max_items` inputs or `max_wait` after its first input arrived,
whichever comes first, so a run alone waits at most `max_wait` before its forward pass. While a
batch computes, the next one fills. Each run keeps its own claim, fence and completion (the
executor waits for its own slice of the results and returns it to run_execute): batching
changes only how the forward passes are shared.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchInfo:
    """Which batch served a request: its id in this process, how many runs and inputs it held.

    One batch is one call of the process function; an embed batch makes it one forward pass per
    length bucket, under this one id."""

    id: str
    runs: int
    items: int

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "runs": self.runs, "items": self.items}


@dataclass
class _Request:
    items: Sequence[Any]
    future: Future[tuple[list[Any], BatchInfo]]
    arrived: float = field(default_factory=time.monotonic)


# process(key, items of every request in order) -> one result per item
Process = Callable[[Hashable, list[Any]], Sequence[Any]]


class MicroBatcher:
    def __init__(self, process: Process, *, max_items: int, max_wait_seconds: float) -> None:
        if max_items < 1 or max_wait_seconds < 0:
            raise ValueError("max_items must be >= 1 and max_wait_seconds >= 0")
        self._process = process
        self.max_items = max_items
        self.max_wait = max_wait_seconds
        self._pending: dict[Hashable, list[_Request]] = {}
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._sequence = itertools.count(1)
        self.passes = 0

    def submit(self, key: Hashable, items: Sequence[Any]) -> Future[tuple[list[Any], BatchInfo]]:
        """Queue one run's inputs; the future gives (its results, the batch it shared)."""
        future: Future[tuple[list[Any], BatchInfo]] = Future()
        if not items:
            future.set_result(([], BatchInfo("", 0, 0)))
            return future
        with self._cond:
            self._pending.setdefault(key, []).append(_Request(list(items), future))
            if self._thread is None or not self._thread.is_alive():
                # started on first use, so a forked pool child gets its own
                self._thread = threading.Thread(target=self._loop, name="inference-batcher", daemon=True)
                self._thread.start()
            self._cond.notify()
        return future

    def _due(self) -> tuple[Hashable | None, float | None]:
        """The key whose batch should run now (full, or its oldest input waited long enough),
        else None and how long until the next one is due."""
        now = time.monotonic()
        best_key, best_arrival, wait = None, None, None
        for key, requests in self._pending.items():
            requests[:] = [r for r in requests if not r.future.cancelled()]
            if not requests:
                continue
            oldest = requests[0].arrived
            if sum(len(r.items) for r in requests) >= self.max_items or now - oldest >= self.max_wait:
                if best_arrival is None or oldest < best_arrival:
                    best_key, best_arrival = key, oldest
            else:
                remaining = self.max_wait - (now - oldest)
                wait = remaining if wait is None else min(wait, remaining)
        return best_key, wait

    def _take(self, key: Hashable) -> list[_Request]:
        """Requests of `key` up to max_items inputs (at least one request, whatever its size)."""
        requests = self._pending[key]
        taken, count = [], 0
        while requests and (not taken or count + len(requests[0].items) <= self.max_items):
            request = requests.pop(0)
            if request.future.set_running_or_notify_cancel():
                taken.append(request)
                count += len(request.items)
        if not requests:
            del self._pending[key]
        return taken

    def _loop(self) -> None:
        while True:
            with self._cond:
                while True:
                    key, wait = self._due()
                    if key is not None:
                        batch = self._take(key)
                        break
                    self._cond.wait(timeout=wait)
            if batch:
                self._run(key, batch)

    def _run(self, key: Hashable, batch: list[_Request]) -> None:
        items = [item for request in batch for item in request.items]
        info = BatchInfo(f"{os.getpid()}-{next(self._sequence)}", len(batch), len(items))
        try:
            results = list(self._process(key, items))
            if len(results) != len(items):
                raise RuntimeError(f"batch returned {len(results)} results for {len(items)} inputs")
        except Exception as exc:  # every waiting run learns of it; the dispatcher lives on
            logger.warning("inference batch failed", exc_info=True)
            for request in batch:
                request.future.set_exception(exc)
            return
        finally:
            self.passes += 1
        start = 0
        for request in batch:
            end = start + len(request.items)
            request.future.set_result((results[start:end], info))
            start = end
