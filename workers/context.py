"""What an executor may ask of the run it executes: the typed run context."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection

from apps.artifacts.services import artifact_put
from apps.runs.models import Run
from apps.runs.services import RunStopped, run_heartbeat
from apps.runs.services.lifecycle import bound_heartbeats_on_this_thread

logger = logging.getLogger(__name__)

# Progress is written at most this often (the first time this long after the claim, which
# wrote the first heartbeat); a cancel is noticed at the next write. Each write is an UPDATE
# and an event: at 4 a second they were most of what a long run cost the platform.
PROGRESS_MIN_INTERVAL_SECONDS = 1.0


class DeviceUnavailable(RuntimeError):
    """The run asked for a backend or device this worker does not offer."""


class ArtifactSink:
    """`ctx.artifacts`: files a run makes, stored beside it (apps.artifacts) and referenced
    by id from its result instead of travelling inline."""

    def __init__(self, run: Run) -> None:
        self._run = run

    def put(
        self, name: str, data: bytes | BinaryIO, content_type: str = "application/octet-stream"
    ) -> dict[str, Any]:
        """Store `data`; return the reference a result keeps ({"artifact": id, "sha256", ...})."""
        session = self._run.session
        artifact = artifact_put(
            owner=session.owner,
            session=session,
            run=self._run,
            name=name,
            data=data,
            content_type=content_type,
        )
        return artifact.as_reference()


class RunContext(Protocol):
    run_id: str
    session_id: str
    artifacts: ArtifactSink

    @property
    def workspace(self) -> Path:
        """The session's own directory (created on demand), kept between its runs."""

    def progress(self, fraction: float) -> None:
        """Record progress (0..1); raises if the run was cancelled or lost its lease."""

    def check(self) -> None:
        """Raise if the run should stop, without recording progress."""

    def backend(self, payload: dict[str, Any]) -> str:
        """The array backend for a payload's `backend`/`device`, from this worker's capabilities."""


class ExecutionContext:
    """The RunContext of a claimed run on this worker."""

    def __init__(self, run: Run, attempt: int) -> None:
        self.run = run
        self.run_id = str(run.pk)
        self.session_id = str(run.session_id)
        self.attempt = attempt
        self.artifacts = ArtifactSink(run)
        self._stop: RunStopped | None = None
        self._last_write = time.monotonic()

    @property
    def workspace(self) -> Path:
        path = Path(settings.RUN_WORKSPACE_ROOT) / self.session_id
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        return path

    def check(self) -> None:
        if self._stop is not None:
            raise self._stop

    def progress(self, fraction: float) -> None:
        self.check()
        if fraction >= 1.0:
            return  # the completion writes progress 1.0 with the result, in its own transaction
        now = time.monotonic()
        if now - self._last_write < PROGRESS_MIN_INTERVAL_SECONDS:
            return
        self._last_write = now
        try:
            run_heartbeat(run=self.run, attempt=self.attempt, progress=fraction)
        except (OperationalError, InterfaceError):
            # The database is away for a moment: keep computing; the next write (or the
            # result's, which waits for it) reports the run.
            connection.close()
            logger.warning("progress not recorded: database unavailable", extra={"run_id": self.run_id})

    def backend(self, payload: dict[str, Any]) -> str:
        from workers.bootstrap import worker_capabilities

        capabilities = worker_capabilities()
        wanted, device = payload.get("backend", "auto"), payload.get("device", "auto")
        if (device == "gpu" or wanted == "cupy") and not capabilities["gpus"]:
            raise DeviceUnavailable(
                "this run needs a GPU and this worker has none (it serves "
                f"{', '.join(capabilities['queues']) or 'no queue'}); it was not run on the CPU instead"
            )
        if wanted != "auto":
            if wanted not in capabilities["backends"]:
                raise DeviceUnavailable(f"this worker does not offer the {wanted} backend")
            return wanted
        if device != "cpu" and capabilities["gpus"] and "cupy" in capabilities["backends"]:
            return "cupy"
        return "numpy"

    def heartbeating(self) -> AbstractContextManager[None]:
        """Keep the run's lease alive from a side thread while the executor computes,
        so a long kernel step that reports no progress is not taken for a dead worker."""
        return keeping_leases(self)

    def beat(self) -> None:
        """One heartbeat, from the lease keeper's thread; a stop is raised at the executor's
        next check."""
        try:
            run_heartbeat(run=self.run, attempt=self.attempt)
        except RunStopped as stop:
            self._stop = stop
            _leases.remove(self)
        except Exception:
            connection.close()  # reconnect at the next beat rather than reuse a broken one
            logger.warning("run heartbeat failed", exc_info=True, extra={"run_id": self.run_id})


class LeaseHolder(Protocol):
    def beat(self) -> None:
        """Renew the leases it holds (called every RUN_HEARTBEAT_SECONDS from the keeper's thread)."""


@contextmanager
def keeping_leases(holder: LeaseHolder) -> Iterator[None]:
    """`holder.beat()` every RUN_HEARTBEAT_SECONDS from this process's lease keeper, for the block."""
    _leases.add(holder)
    try:
        yield
    finally:
        _leases.remove(holder)


class _LeaseKeeper:
    """One thread per process writes the heartbeats of the runs it executes, each every
    RUN_HEARTBEAT_SECONDS from its start: a run that ends sooner costs a dict entry, not a
    thread and its database connection. The thread ends (closing its connection) when no
    run is left, and starts again with the next; a forked child starts its own."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._due: dict[int, tuple[LeaseHolder, float]] = {}
        self._thread: threading.Thread | None = None

    def add(self, ctx: LeaseHolder) -> None:
        with self._lock:
            self._due[id(ctx)] = (ctx, time.monotonic() + settings.RUN_HEARTBEAT_SECONDS)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._keep, name="run-heartbeats", daemon=True)
                self._thread.start()

    def remove(self, ctx: LeaseHolder) -> None:
        with self._lock:
            self._due.pop(id(ctx), None)

    def _keep(self) -> None:
        bound_heartbeats_on_this_thread()
        try:
            while True:
                interval = settings.RUN_HEARTBEAT_SECONDS
                time.sleep(max(0.02, min(1.0, interval / 4)))
                now = time.monotonic()
                with self._lock:
                    if not self._due:
                        self._thread = None
                        return
                    due = [ctx for ctx, at in self._due.values() if at <= now]
                    for ctx in due:
                        self._due[id(ctx)] = (ctx, now + interval)
                for ctx in due:
                    ctx.beat()
        finally:
            connection.close()


_leases = _LeaseKeeper()
