"""`python`: the payload's code in the sandbox (workers/sandbox), in the session's workspace.

One run of a session at a time, in submission order: a run takes its session's flock
(workers/sandbox/locks: the kernel drops it when the worker dies, however it dies) and
also lets the session's older runs go first. An older run another worker has claimed
always goes first; an older run still on the broker is waited for only
SANDBOX_ORDER_GRACE_SECONDS (the moment between two workers receiving two messages and
claiming them), because waiting for it longer could wait for ever: it may be queued
behind this very run on a single worker (a higher priority, a redelivery).

Files named by the payload's `files` are copied into the workspace first; files the code
leaves in `outbox/` are stored as artifacts of the run afterwards (the result's `files`)
and leave the workspace. A workspace over SANDBOX_WORKSPACE_MAX_BYTES (or _FILES) after
a run makes that run's result name the `workspace` limit, and the session's next runs
end at once with the same limit until files are deleted (DELETE
/api/v1/sessions/{id}/workspace/{name}).
"""

from __future__ import annotations

import mimetypes
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db.models import Q

from apps.artifacts.exceptions import ArtifactError
from apps.artifacts.models import Artifact
from apps.artifacts.services import artifact_open, safe_filename
from apps.runs.models import Run, RunStatus
from apps.sessions.workspace import session_lock_path
from workers.context import RunContext
from workers.sandbox import (
    DEFAULT_INTERPRETER,
    WORKSPACE,
    Limits,
    Outcome,
    limits_from_settings,
    locks,
    sandbox_from_settings,
)
from workers.sandbox import workspace as files

WAIT_POLL_SECONDS = 0.1
NOT_STARTED = (RunStatus.PENDING, RunStatus.QUEUED)


class InputFileMissing(LookupError):
    """A payload `files` entry is not an artifact of the run's owner."""


def _default_interpreter() -> str:
    names = list(settings.SANDBOX_INTERPRETERS)
    return DEFAULT_INTERPRETER if DEFAULT_INTERPRETER in names or not names else names[0]


def _older_runs_go_first(run: Run, waited: float) -> bool:
    older = Run.objects.filter(session_id=run.session_id, kind=run.kind).filter(
        Q(created_at__lt=run.created_at) | Q(created_at=run.created_at, pk__lt=run.pk)
    )
    statuses = [RunStatus.RUNNING]
    if waited < settings.SANDBOX_ORDER_GRACE_SECONDS:
        statuses += list(NOT_STARTED)
    return older.filter(status__in=statuses).exists()


@contextmanager
def session_turn(run: Run, ctx: RunContext) -> Iterator[None]:
    """Hold the session's lock, taken once the session's older runs have gone first."""
    path = session_lock_path(run.session_id)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    started = time.monotonic()
    while True:
        fd = locks.try_flock(path)
        if fd is not None:
            if not _older_runs_go_first(run, time.monotonic() - started):
                break
            os.close(fd)
        ctx.progress(0.0)  # a cancel while waiting ends the wait
        time.sleep(WAIT_POLL_SECONDS)
    try:
        yield
    finally:
        os.close(fd)


def _input_artifacts(run: Run, artifact_ids: list[str]) -> list[Artifact]:
    artifacts = {str(a.pk): a for a in Artifact.objects.filter(pk__in=artifact_ids, owner_id=run.owner_id)}
    missing = [artifact_id for artifact_id in artifact_ids if artifact_id not in artifacts]
    if missing:
        raise InputFileMissing(f"no such artifact of yours: {', '.join(missing)}")
    return [artifacts[artifact_id] for artifact_id in artifact_ids]


def _copy_inputs(artifacts: list[Artifact], workspace_dir: Path) -> None:
    for artifact in artifacts:
        with artifact_open(artifact=artifact) as source:
            files.copy_in(workspace_dir, safe_filename(artifact.name), source)


def _keep_outbox(ctx: RunContext, workspace_dir: Path, notes: list[str]) -> list[str]:
    names = files.outbox_files(workspace_dir)
    limit = settings.SANDBOX_MAX_KEPT_FILES
    if len(names) > limit:
        notes.append(f"{len(names) - limit} files left in {files.OUTBOX}/: at most {limit} are kept per run")
    kept = []
    for name in names[:limit]:
        try:
            with files.open_kept(workspace_dir, name) as opened:
                if opened is None:
                    continue
                content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
                kept.append(ctx.artifacts.put(name, opened, content_type)["artifact"])
        except ArtifactError as exc:  # a name the artifacts refuse (control characters, not UTF-8)
            shown = os.fsencode(name).decode("utf-8", errors="backslashreplace").encode("unicode_escape")
            notes.append(f"{files.OUTBOX}/{shown.decode()} was not kept: {exc.message}")
    return kept


def _text(output: str) -> str:
    # PostgreSQL's JSON cannot hold U+0000; a program may well print one.
    return output.replace("\x00", "\ufffd")


def _result(outcome: Outcome, kept: list[str], notes: list[str]) -> dict[str, Any]:
    stderr = outcome.stderr + "".join(f"[sandbox] {note}\n" for note in notes)
    return {
        "stdout": _text(outcome.stdout),
        "stderr": _text(stderr),
        "exit_code": outcome.exit_code,
        "duration_s": outcome.duration_seconds,
        "peak_memory_mb": outcome.peak_memory_mb,
        "limit": outcome.limit,
        "files": kept,
    }


def _not_run(limit: str) -> Outcome:
    return Outcome(
        stdout="", stderr="", exit_code=None, duration_seconds=0.0, peak_memory_mb=0.0, limit=limit
    )


def _over_quota(used: files.Usage, limits: Limits) -> str:
    return (
        f"the session's workspace holds {used.bytes} bytes in {used.files} entries, over its quota of "
        f"{limits.workspace_bytes} bytes and {limits.workspace_files} entries "
        "(SANDBOX_WORKSPACE_MAX_BYTES, SANDBOX_WORKSPACE_MAX_FILES): delete files "
        "(DELETE /api/v1/sessions/{id}/workspace/{name}) to run again"
    )


def execute(payload: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
    sandbox = sandbox_from_settings()
    run = Run.objects.get(pk=ctx.run_id)
    limits = limits_from_settings(
        timeout_seconds=float(payload["timeout_s"]), memory_mb=int(payload["memory_mb"])
    )
    interpreter = payload.get("interpreter") or _default_interpreter()
    notes: list[str] = []

    def tick(elapsed: float) -> None:
        ctx.progress(min(0.99, elapsed / limits.timeout_seconds))

    with session_turn(run, ctx):
        workspace_dir = ctx.workspace
        inputs = _input_artifacts(run, list(payload.get("files") or []))
        used = files.usage(workspace_dir, stop_above_files=limits.workspace_files)
        incoming = files.Usage(bytes=sum(a.size for a in inputs), files=len(inputs))
        if used.plus(incoming).over(max_bytes=limits.workspace_bytes, max_files=limits.workspace_files):
            return _result(_not_run(WORKSPACE), [], [_over_quota(used.plus(incoming), limits)])
        _copy_inputs(inputs, workspace_dir)
        outcome = sandbox.run(
            code=payload["code"],
            workspace_dir=workspace_dir,
            limits=limits,
            interpreter=interpreter,
            env=payload.get("env") or {},
            on_tick=tick,
        )
        kept = _keep_outbox(ctx, workspace_dir, notes)
        used = files.usage(workspace_dir, stop_above_files=limits.workspace_files)
        if used.over(max_bytes=limits.workspace_bytes, max_files=limits.workspace_files):
            outcome.limit = outcome.limit or WORKSPACE
            notes.append(_over_quota(used, limits))
    ctx.progress(1.0)
    return _result(outcome, kept, notes)
