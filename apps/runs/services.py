"""Writes on runs: submit, enqueue, claim, progress, complete, fail, cancel, reconcile.

Every state change is a compare-and-set `UPDATE ... WHERE status = ...`, so two
workers (a redelivered message, a reconciler re-queue) can never both win;
`attempts` is the fencing token of the claimant.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import F, QuerySet
from django.db.models.functions import Now
from django.utils import timezone
from rest_framework import serializers

from apps.core.exceptions import Conflict
from apps.runs.kinds import get_kind, kind_names
from apps.runs.models import Run, RunStatus
from apps.sessions.models import Session
from apps.traces.chain import canonical_json, sha256_hex
from apps.traces.services import provenance_append, trace_create, trace_outputs_record
from workers.routing import broker_priority

logger = logging.getLogger(__name__)


class RunStopped(Exception):
    """The executing worker must stop: the run was cancelled or is no longer its own."""


class RunCancelled(RunStopped):
    pass


class RunLeaseLost(RunStopped):
    pass


@dataclass(frozen=True)
class RunSpec:
    session: Session
    kind: str
    payload: dict[str, Any]
    priority: int = 0


def _validated(spec: RunSpec) -> tuple[dict[str, Any], str]:
    kind = get_kind(spec.kind)
    if kind is None:
        raise serializers.ValidationError(
            {"kind": [f"Unknown run kind {spec.kind!r}; known kinds: {', '.join(kind_names())}."]}
        )
    payload = kind.validate_payload(spec.payload)
    return payload, kind.queue_for(payload)


def _create(
    *,
    user: AbstractBaseUser,
    spec: RunSpec,
    validated: tuple[dict[str, Any], str],
    idempotency_key: str | None,
) -> Run:
    payload, queue = validated
    run = Run.objects.create(
        owner=user,
        session=spec.session,
        kind=spec.kind,
        payload=payload,
        queue=queue,
        priority=spec.priority,
        idempotency_key=idempotency_key,
    )
    trace_create(
        session=spec.session,
        run=run,
        actor=user.get_username(),
        inputs={"kind": run.kind, "payload": run.payload},
        metadata={"queue": run.queue, "priority": run.priority},
    )
    run_id = run.pk
    transaction.on_commit(lambda: run_enqueue(run_id=run_id))
    return run


def _same_request(run: Run, spec: RunSpec) -> bool:
    # Compare what would be stored: validators fill defaults and normalise (5 -> 5.0).
    try:
        payload, _ = _validated(spec)
    except serializers.ValidationError:
        return False
    return (
        run.session_id == spec.session.pk
        and run.kind == spec.kind
        and run.priority == spec.priority
        and canonical_json(run.payload) == canonical_json(payload)
    )


def run_submit(
    *, user: AbstractBaseUser, spec: RunSpec, idempotency_key: str | None = None
) -> tuple[Run, bool]:
    """Validate, store a pending Run and its Trace in one transaction, enqueue on commit.

    Returns (run, created). With an idempotency key seen before for this user the
    stored run comes back unchanged (created=False); a different request under
    the same key is a 409.
    """
    if idempotency_key is not None:
        existing = Run.objects.filter(owner=user, idempotency_key=idempotency_key).first()
        if existing is not None:
            return _replayed(existing, spec), False
    validated = _validated(spec)
    try:
        with transaction.atomic():
            return _create(user=user, spec=spec, validated=validated, idempotency_key=idempotency_key), True
    except IntegrityError:
        # A concurrent request with the same key won the insert.
        existing = Run.objects.filter(owner=user, idempotency_key=idempotency_key).first()
        if idempotency_key is None or existing is None:
            raise
        return _replayed(existing, spec), False


def _replayed(existing: Run, spec: RunSpec) -> Run:
    if not _same_request(existing, spec):
        raise Conflict("This Idempotency-Key was already used for a different request.")
    return existing


def run_submit_batch(*, user: AbstractBaseUser, specs: list[RunSpec]) -> list[Run]:
    """All or nothing: one invalid run rejects the batch and stores none."""
    errors: dict[str, Any] = {}
    validated = []
    for index, spec in enumerate(specs):
        try:
            validated.append(_validated(spec))
        except serializers.ValidationError as exc:
            errors[str(index)] = exc.detail
    if errors:
        raise serializers.ValidationError({"runs": errors})
    with transaction.atomic():
        return [
            _create(user=user, spec=spec, validated=checked, idempotency_key=None)
            for spec, checked in zip(specs, validated, strict=True)
        ]


def run_enqueue(*, run_id: uuid.UUID | str) -> bool:
    """Mark a pending run queued and send its message. Safe to call twice."""
    task_id = str(uuid.uuid4())
    claimed = Run.objects.filter(pk=run_id, status=RunStatus.PENDING).update(
        status=RunStatus.QUEUED, queued_at=timezone.now(), task_id=task_id
    )
    if not claimed:
        return False
    run = Run.objects.get(pk=run_id)
    return _send(run)


def _send(run: Run) -> bool:
    from workers.runs import execute_run_task

    kind = get_kind(run.kind)
    time_limit = kind.time_limit_seconds if kind else None
    try:
        execute_run_task.apply_async(
            (str(run.pk),),
            queue=run.queue,
            task_id=run.task_id,
            priority=broker_priority(run.priority, settings.CELERY_BROKER_URL),
            soft_time_limit=time_limit,
            time_limit=time_limit + 30 if time_limit else None,
        )
    except Exception:
        # Broker down: back to pending; the reconciler sends it again later.
        logger.exception("could not enqueue run", extra={"run_id": run.pk})
        Run.objects.filter(pk=run.pk, status=RunStatus.QUEUED).update(status=RunStatus.PENDING)
        return False
    return True


def run_claim(*, run_id: uuid.UUID | str, hostname: str) -> Run | None:
    """queued -> running for exactly one caller; None when someone else has it or it ended."""
    with transaction.atomic():
        claimed = Run.objects.filter(pk=run_id, status=RunStatus.QUEUED, cancel_requested=False).update(
            status=RunStatus.RUNNING,
            attempts=F("attempts") + 1,
            started_at=timezone.now(),
            heartbeat_at=Now(),
            worker_hostname=hostname,
            progress=0.0,
        )
        if not claimed:
            return None
        run = Run.objects.select_related("trace").get(pk=run_id)
        _chain(run, actor=hostname, action="run.started", data={"attempt": run.attempts})
    return run


def _chain(run: Run, *, actor: str, action: str, data: dict[str, Any]) -> None:
    trace = getattr(run, "trace", None)
    if trace is not None:
        provenance_append(trace=trace, actor=actor, action=action, data=data)


def _transition(
    runs: QuerySet[Run], run: Run, *, actor: str, action: str, data: dict[str, Any], **values: Any
) -> bool:
    """Compare-and-set update plus its provenance entry, both or neither.

    Lock order everywhere: the run row (by the UPDATE), then the trace row.
    """
    with transaction.atomic():
        if not runs.update(**values):
            return False
        _chain(run, actor=actor, action=action, data=data)
    return True


def _owned(run: Run, attempt: int) -> Any:
    return Run.objects.filter(pk=run.pk, status=RunStatus.RUNNING, attempts=attempt)


def run_heartbeat(*, run: Run, attempt: int, progress: float | None = None) -> None:
    """Record liveness (and progress); raise RunStopped if the worker must stop."""
    values: dict[str, Any] = {"heartbeat_at": Now()}  # database time: hosts' clocks may disagree
    if progress is not None:
        values["progress"] = max(0.0, min(1.0, float(progress)))
    if _owned(run, attempt).filter(cancel_requested=False).update(**values):
        return
    if _owned(run, attempt).filter(cancel_requested=True).exists():
        raise RunCancelled("cancelled while running")
    raise RunLeaseLost("the run is no longer held by this worker")


def _finish(
    run: Run, attempt: int, status: RunStatus, *, action: str, data: dict[str, Any], **values: Any
) -> bool:
    now = timezone.now()
    started = run.started_at or now
    return _transition(
        _owned(run, attempt),
        run,
        actor=run.worker_hostname,
        action=action,
        data=data,
        status=status,
        finished_at=now,
        duration_seconds=(now - started).total_seconds(),
        **values,
    )


class ResultTooLarge(Exception):
    pass


def run_complete(*, run: Run, attempt: int, result: Any) -> bool:
    """running -> succeeded for the holder of `attempt`; False if it no longer holds the run.

    Raises TypeError/ValueError for a result that is not JSON, ResultTooLarge past MAX_RESULT_BYTES.
    """
    body = canonical_json(result)
    size, limit = len(body.encode()), settings.MAX_RESULT_BYTES
    if size > limit:
        raise ResultTooLarge(f"result is {size} bytes; the limit is {limit} (MAX_RESULT_BYTES)")
    digest = sha256_hex(body)
    with transaction.atomic():
        if not _finish(
            run,
            attempt,
            RunStatus.SUCCEEDED,
            action="run.succeeded",
            data={"result_sha256": digest},
            result=result,
            progress=1.0,
        ):
            return False
        trace = getattr(run, "trace", None)
        if trace is not None:
            # Small results are kept on the trace itself; large ones by digest (the run holds them).
            inline = size <= settings.TRACE_INLINE_RESULT_BYTES
            outputs = {"result": result} if inline else {"result_sha256": digest, "result_bytes": size}
            trace_outputs_record(trace=trace, actor=run.worker_hostname, outputs=outputs)
    return True


def run_fail(*, run: Run, attempt: int, error_type: str, message: str) -> bool:
    error = {"type": error_type, "message": message[:2000]}
    return _finish(run, attempt, RunStatus.FAILED, action="run.failed", data={"error": error}, error=error)


def run_mark_cancelled(*, run: Run, attempt: int) -> bool:
    return _finish(run, attempt, RunStatus.CANCELLED, action="run.cancelled", data={"while": "running"})


def run_cancel(*, run: Run, actor: str) -> Run:
    """Cancel: a waiting run ends at once (and its message is revoked); a running
    run is flagged and stops at its next progress check."""
    waiting = (RunStatus.PENDING, RunStatus.QUEUED, RunStatus.BLOCKED)
    if _transition(
        Run.objects.filter(pk=run.pk, status__in=waiting),
        run,
        actor=actor,
        action="run.cancelled",
        data={"while": "waiting"},
        status=RunStatus.CANCELLED,
        cancel_requested=True,
        finished_at=timezone.now(),
    ):
        _revoke(run.task_id)
    elif not _transition(
        Run.objects.filter(pk=run.pk, status=RunStatus.RUNNING, cancel_requested=False),
        run,
        actor=actor,
        action="run.cancel_requested",
        data={},
        cancel_requested=True,
    ):
        run.refresh_from_db()
        if run.is_final and run.status != RunStatus.CANCELLED:
            raise Conflict(f"The run already ended ({run.status}); nothing to cancel.")
    run.refresh_from_db()
    return run


def _revoke(task_id: str) -> None:
    if not task_id:
        return
    from config.celery import app

    try:
        app.control.revoke(task_id)
    except Exception:
        # The claim refuses cancelled runs anyway; revoking only saves a wake-up.
        logger.warning("could not revoke task", extra={"task_id": task_id})


@dataclass(frozen=True)
class ReconcileReport:
    requeued: int
    failed: int
    resent: int


def _unrecoverable(run: Run, ran_for: float) -> dict[str, str] | None:
    """Why an orphaned run must fail instead of running again, if it must."""
    kind = get_kind(run.kind)
    if kind is not None and ran_for > kind.time_limit_seconds:
        # Killed at its hard time limit: running it again would hit the limit again.
        return {"type": "TimeLimitExceeded", "message": f"ran past {kind.time_limit_seconds}s"}
    if run.attempts >= settings.RUN_MAX_ATTEMPTS:
        return {"type": "WorkerLost", "message": f"worker lost {run.attempts} times"}
    return None


def run_reconcile() -> ReconcileReport:
    """Repair what delivery lost: runs whose worker died and runs whose message vanished."""
    now = timezone.now()
    lease_cutoff = Now() - timedelta(seconds=settings.RUN_LEASE_SECONDS)
    requeued = failed = resent = 0

    for run in Run.objects.select_related("trace").filter(
        status=RunStatus.RUNNING, heartbeat_at__lt=lease_cutoff
    ):
        stale = _owned(run, run.attempts).filter(heartbeat_at__lt=lease_cutoff)
        ran_for = (now - run.started_at).total_seconds() if run.started_at else 0.0
        if run.cancel_requested:
            _transition(
                stale,
                run,
                actor="reconciler",
                action="run.cancelled",
                data={"while": "orphaned"},
                status=RunStatus.CANCELLED,
                finished_at=now,
            )
        elif (error := _unrecoverable(run, ran_for)) is not None:
            failed += _transition(
                stale,
                run,
                actor="reconciler",
                action="run.failed",
                data={"error": error},
                status=RunStatus.FAILED,
                finished_at=now,
                error=error,
            )
        elif _transition(
            stale,
            run,
            actor="reconciler",
            action="run.requeued",
            data={"attempt": run.attempts, "worker": run.worker_hostname},
            status=RunStatus.PENDING,
            worker_hostname="",
            progress=0.0,
        ):
            requeued += 1
            run_enqueue(run_id=run.pk)

    # Committed but never sent (process died before on_commit ran, or broker was down).
    pending_cutoff = now - timedelta(seconds=settings.RUN_LEASE_SECONDS)
    for run_id in Run.objects.filter(status=RunStatus.PENDING, created_at__lt=pending_cutoff).values_list(
        "pk", flat=True
    ):
        resent += run_enqueue(run_id=run_id)

    # Sent long ago and never claimed: the broker may have lost it. A duplicate is
    # harmless (the claim is compare-and-set); bumping queued_at spaces the re-sends.
    queued_cutoff = now - timedelta(seconds=settings.RUN_REQUEUE_AFTER_SECONDS)
    for run in Run.objects.filter(status=RunStatus.QUEUED, queued_at__lt=queued_cutoff):
        if Run.objects.filter(pk=run.pk, status=RunStatus.QUEUED, queued_at=run.queued_at).update(
            queued_at=now
        ):
            resent += _send(run)
    return ReconcileReport(requeued=requeued, failed=failed, resent=resent)
