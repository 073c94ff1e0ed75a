"""A run's life on a worker and its end: claim, heartbeat, complete, fail, cancel.

Every change is compare-and-set (apps.runs.services._transitions); a worker acts on
a run only while it holds the current attempt.
"""

from __future__ import annotations

import logging
import random
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from functools import reduce
from operator import or_
from typing import Any

from celery import current_app
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import F, Q, QuerySet
from django.db.models.functions import Now
from django.utils import timezone

from apps.core.bulk import (
    PreparedRead,
    ReadTogether,
    Statement,
    StatementResult,
    TransactionTogether,
    can_execute_together,
    can_run_transaction_together,
    execute_together,
    transaction_together,
    update_by_pk_sql,
    update_rows,
    update_rows_sql,
    update_sql,
)
from apps.core.exceptions import Conflict, NotFound
from apps.core.hashchain import canonical_json, sha256_hex
from apps.runs.events import publish_progress, publish_run_state, publish_run_states
from apps.runs.kinds import get_kind
from apps.runs.models import FINAL_STATUSES, WAITING_STATUSES, Run, RunEvent, RunStatus
from apps.runs.pipeline import Decision, OutputSubject, Verdict, check_outputs
from apps.runs.selectors import run_get_for_user
from apps.runs.services._transitions import chain, held_by, transition
from apps.traces.services import (
    ChainExtension,
    ChainWrite,
    Head,
    provenance_extend_many,
    trace_heads,
    trace_heads_lock_sql,
    trace_outputs_entry,
)

logger = logging.getLogger(__name__)

# A run's events are trimmed to RUN_EVENTS_MAX_PER_RUN on every this-many-th insert (by id),
# so an append costs one INSERT almost always.
RUN_EVENTS_TRIM_EVERY = 50


class RunStopped(Exception):
    """The executing worker must stop: the run was cancelled or is no longer its own."""


class RunCancelled(RunStopped):
    pass


class RunLeaseLost(RunStopped):
    pass


class ResultTooLarge(ValueError):
    pass


# A claim need not wait for its WAL flush: one lost to a database crash leaves the run queued
# for the reconciler, and this attempt's later writes fenced. Completions are flushed as usual.
NO_FLUSH_WAIT = "SET LOCAL synchronous_commit TO OFF"


def _update_returning_pks(runs: QuerySet[Run], **values: Any) -> list[uuid.UUID]:
    """`runs.update(**values)`, returning the primary keys of the rows it changed (UPDATE ...
    RETURNING: PostgreSQL, and SQLite from 3.35), so the caller knows which runs it won."""
    sql, params = update_sql(runs, **values)
    pk = connection.ops.quote_name(Run._meta.pk.column)
    with connection.cursor() as cursor:
        cursor.execute(f"{sql} RETURNING {pk}", params)
        return [value if isinstance(value, uuid.UUID) else uuid.UUID(value) for (value,) in cursor.fetchall()]


CLAIMED_WITH = ("trace", "session__policy__active_version")  # what the output checks read


_CLAIMED_READ = PreparedRead(
    lambda pk: Run.objects.select_related(*CLAIMED_WITH).filter(pk=pk), uuid.UUID(int=0)
)
# the claim's values that the database computes: Now() is the database's clock (hosts' may disagree)
_CLAIM_SQL_VALUES = {"attempts": "{column} + 1", "heartbeat_at": "STATEMENT_TIMESTAMP()"}


def run_claim(*, run_id: uuid.UUID | str, hostname: str) -> Run | None:
    """queued -> running for exactly one caller; None when someone else has it or it ended."""
    values = {
        "status": RunStatus.RUNNING,
        "started_at": timezone.now(),
        "worker_hostname": hostname,
        "progress": 0.0,
    }
    if not can_execute_together():
        claim = Run.objects.filter(pk=run_id, status=RunStatus.QUEUED, cancel_requested=False)
        with transaction.atomic():
            if not claim.update(**values, attempts=F("attempts") + 1, heartbeat_at=Now()):
                return None
            run = Run.objects.select_related(*CLAIMED_WITH).get(pk=run_id)
            chain(run, actor=hostname, action="run.started", data={"attempt": run.attempts})
            publish_run_state(run, action="run.started")
        return run
    # The claim, its trace's lock and the run's read in one round trip, the entry and the
    # commit in a second (the lock is released at once if the claim lost). Written out and
    # compiled once: the ORM's compiler cost more than the statements.
    pk = Run._meta.pk.to_python(run_id)
    statements = [
        (NO_FLUSH_WAIT, ()),
        update_by_pk_sql(
            Run,
            pk,
            values,
            where={"status": RunStatus.QUEUED, "cancel_requested": False},
            sql_values=_CLAIM_SQL_VALUES,
        ),
        trace_heads_lock_sql(run_ids=[pk]),
        _CLAIMED_READ.statement(pk),
    ]
    with _transaction_in_two_round_trips() as together:
        _, won, lock, row = together.execute(statements)
        if not won.rowcount:
            return None
        (run,) = _CLAIMED_READ.instances(row.rows)
        trace = getattr(run, "trace", None)
        extension = (
            [ChainExtension(trace, hostname, [("run.started", {"attempt": run.attempts})])] if trace else []
        )
        together.commit_chain(extension, trace_heads(lock.rows))
        publish_run_state(run, action="run.started")
    return run


class _TwoRoundTrips:
    """A transaction as few round trips as the caller's position allows: outside an atomic
    block its BEGIN and COMMIT travel with its statements (TransactionTogether); inside one
    (a caller's transaction, a test's) its statements are sent together within it."""

    def __init__(self, together: TransactionTogether | None) -> None:
        self._together = together

    def execute(self, statements: Sequence[Statement]) -> list[StatementResult]:
        if self._together is not None:
            return self._together.execute(statements)
        return execute_together(statements)

    def commit_chain(self, extensions: list[ChainExtension], heads: dict[Any, Head]) -> None:
        if self._together is None:
            provenance_extend_many(extensions, locked_heads=heads)
            return
        write = ChainWrite(extensions, heads) if extensions else None
        results = self._together.commit(write.statements() if write else ())
        if write is not None:
            write.written(results)


@contextmanager
def _transaction_in_two_round_trips() -> Iterator[_TwoRoundTrips]:
    if not can_run_transaction_together():
        with transaction.atomic():
            yield _TwoRoundTrips(None)
        return
    with transaction_together() as together:
        yield _TwoRoundTrips(together)


def run_claim_many(*, run_ids: Sequence[uuid.UUID | str], hostname: str) -> list[Run]:
    """run_claim for the runs of one message (short runs sent together): each queued one
    becomes running for this caller, in one transaction whose statements do not grow in number
    with the runs. Returns the runs won, in the order asked; the others were taken, cancelled
    or ended elsewhere."""
    if not run_ids:
        return []
    ids = list(run_ids)
    claim = Run.objects.filter(pk__in=ids, status=RunStatus.QUEUED, cancel_requested=False)
    values = {
        "status": RunStatus.RUNNING,
        "attempts": F("attempts") + 1,
        # written when each run starts (with its outcome): one waiting its turn has not
        # started, and the reconciler must not count its wait against the kind's time limit
        "started_at": None,
        "heartbeat_at": Now(),
        "worker_hostname": hostname,
        "progress": 0.0,
    }
    with transaction.atomic():
        if can_execute_together():
            # the claim (returning the runs won), their traces' locks and the runs' read in
            # one round trip
            read = ReadTogether(Run.objects.select_related(*CLAIMED_WITH).filter(pk__in=ids))
            update, update_params = update_sql(claim, **values)
            pk = connection.ops.quote_name(Run._meta.pk.column)
            _, returned, lock, rows = execute_together(
                [
                    (NO_FLUSH_WAIT, ()),
                    (f"{update} RETURNING {pk}", update_params),
                    trace_heads_lock_sql(run_ids=ids),
                    read.statement,
                ]
            )
            won = {value for (value,) in returned.rows or ()}
            heads = trace_heads(lock.rows)
            claimed = {run.pk: run for run in read.instances(rows.rows) if run.pk in won}
        else:
            won = set(_update_returning_pks(claim, **values))
            heads = None
            claimed = {run.pk: run for run in Run.objects.select_related(*CLAIMED_WITH).filter(pk__in=won)}
        if not won:
            return []
        order = [uuid.UUID(str(run_id)) for run_id in run_ids]
        runs = [claimed[pk] for pk in order if pk in claimed]
        provenance_extend_many(
            [
                ChainExtension(run.trace, hostname, [("run.started", {"attempt": run.attempts})])
                for run in runs
                if getattr(run, "trace", None) is not None
            ],
            locked_heads=heads,
        )
        publish_run_states([(run, None) for run in runs], action="run.started")
    return runs


def run_heartbeat_many(*, runs: Sequence[tuple[Run, int]]) -> set[uuid.UUID]:
    """Keep the leases of claimed runs that wait their turn (run, attempt); returns the ones
    still held and not asked to stop."""
    if not runs:
        return set()
    fence = reduce(or_, (Q(pk=run.pk, attempts=attempt) for run, attempt in runs))
    with _bounded_heartbeat():
        held = Run.objects.filter(fence, status=RunStatus.RUNNING, cancel_requested=False)
        return set(_update_returning_pks(held, heartbeat_at=Now()))


_heartbeat_thread = threading.local()


def bound_heartbeats_on_this_thread() -> None:
    """Called by a worker's lease keeper: this thread writes other runs' heartbeats, so each
    write is bounded (_bounded_heartbeat)."""
    _heartbeat_thread.bounded = True


def is_lease_keeper_thread() -> bool:
    return getattr(_heartbeat_thread, "bounded", False)


@contextmanager
def _bounded_heartbeat() -> Iterator[None]:
    """On the lease keeper's thread, a heartbeat that waits on a lock (or a stuck server) gives
    up after one interval rather than holding up the beats of the process's other runs (one
    thread writes them): its connection carries that statement_timeout, set once (a pooled
    connection, which other work borrows next, gets it for each beat's transaction only).
    Elsewhere (an executor's own progress write, which holds up only its run) nothing is set."""
    if connection.vendor != "postgresql" or not is_lease_keeper_thread() or connection.in_atomic_block:
        yield
        return
    timeout_ms = max(100, int(settings.RUN_HEARTBEAT_SECONDS * 1000))
    if "pool" in connection.settings_dict.get("OPTIONS", {}):
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(f"SET LOCAL statement_timeout = {timeout_ms}")
            yield
        return
    connection.ensure_connection()
    raw = connection.connection
    if getattr(raw, "_limitgraph_statement_timeout", None) != timeout_ms:
        with connection.cursor() as cursor:
            cursor.execute(f"SET statement_timeout = {timeout_ms}")
        raw._limitgraph_statement_timeout = timeout_ms
    yield


def run_heartbeat(*, run: Run, attempt: int, progress: float | None = None) -> None:
    """Record liveness (and progress); raise RunStopped if the worker must stop."""
    values: dict[str, Any] = {"heartbeat_at": Now()}  # database time: hosts' clocks may disagree
    if progress is not None:
        values["progress"] = max(0.0, min(1.0, float(progress)))
    with _bounded_heartbeat():
        written = held_by(run, attempt).filter(cancel_requested=False).update(**values)
    if written:
        if progress is not None:
            run.progress = values["progress"]  # a later event built from this instance shows it
            publish_progress(run, run.progress)
        return
    if held_by(run, attempt).filter(cancel_requested=True).exists():
        raise RunCancelled("cancelled while running")
    raise RunLeaseLost("the run is no longer held by this worker")


def _finish(
    run: Run, attempt: int, status: RunStatus, *, action: str, data: dict[str, Any], **values: Any
) -> bool:
    now = timezone.now()
    started = run.started_at or now
    return transition(
        held_by(run, attempt),
        run,
        actor=run.worker_hostname,
        action=action,
        data=data,
        status=status,
        started_at=started,
        finished_at=now,
        duration_seconds=(now - started).total_seconds(),
        **values,
    )


@dataclass
class Completion:
    """A run's result checked and ready to store (completion_prepare): the row's new values
    and the entries its trace gets."""

    run: Run
    attempt: int
    result: Any
    values: dict[str, Any]
    verdict: Verdict
    entries: list[tuple[str, dict[str, Any]]]
    trace_values: dict[str, Any]

    @property
    def writes_more(self) -> bool:
        """Whether storing it writes more than the run and its trace (_completed): the checks'
        records, the kind's on_success."""
        if self.verdict.results:
            return True
        kind = get_kind(self.run.kind)
        return kind is not None and kind.on_success is not None and not self.values["result_withheld"]


def completion_prepare(*, run: Run, attempt: int, result: Any) -> Completion:
    """Everything a completion does before it writes: the result's size, digest and output
    checks. Raises TypeError/ValueError for a result that is not JSON, ResultTooLarge past
    MAX_RESULT_BYTES."""
    body = canonical_json(result)
    size, limit = len(body.encode()), settings.MAX_RESULT_BYTES
    if size > limit:
        raise ResultTooLarge(f"result is {size} bytes; the limit is {limit} (MAX_RESULT_BYTES)")
    digest = sha256_hex(body)
    verdict = check_outputs(OutputSubject(run=run, result=result))
    withheld = verdict.decision != Decision.ALLOW
    now = timezone.now()
    values: dict[str, Any] = {
        "status": RunStatus.SUCCEEDED,
        # (a run that waited its turn in a shared message started when its executor did)
        "started_at": run.started_at or now,
        "finished_at": now,
        "duration_seconds": (now - (run.started_at or now)).total_seconds(),
        "result": result,
        "result_withheld": withheld,
        "hold_reason": verdict.reason if withheld else "",
        "progress": 1.0,
    }
    # The completion, the trace's outputs and the output checks chained in one append.
    # Small results are kept on the trace itself; large or withheld ones by digest.
    inline = size <= settings.TRACE_INLINE_RESULT_BYTES and not withheld
    outputs = {"result": result} if inline else {"result_sha256": digest, "result_bytes": size}
    recorded = trace_outputs_entry(outputs)
    entries = [("run.succeeded", {"result_sha256": digest}), *recorded["entries"]]
    if verdict.results:
        entries.append(("run.output_checked", {"withheld": withheld, "checks": verdict.as_json()}))
    return Completion(run, attempt, result, values, verdict, entries, recorded["trace_values"])


def _completed(
    done: list[Completion],
    *,
    locked_heads: dict[Any, Head] | None = None,
    preceded_by: Sequence[Statement] = (),
) -> None:
    """What follows the row updates of completions, in their transaction: provenance, events,
    checks' records, the kinds' on_success."""
    provenance_extend_many(
        [
            ChainExtension(c.run.trace, c.run.worker_hostname, c.entries, c.trace_values)
            for c in done
            if getattr(c.run, "trace", None) is not None
        ],
        locked_heads=locked_heads,
        preceded_by=preceded_by,
    )
    publish_run_states([(c.run, c.values) for c in done], action="run.succeeded")
    for c in done:
        if c.verdict.results:
            c.verdict.record(c.run)
        kind = get_kind(c.run.kind)
        if kind is not None and kind.on_success is not None and not c.values["result_withheld"]:
            kind.on_success(c.run, c.result)


def run_complete(*, run: Run, attempt: int, result: Any) -> bool:
    """Output checks, then running -> succeeded for the holder of `attempt`, with the kind's
    on_success in the same transaction; False (and nothing written) if it no longer holds the run.

    Raises TypeError/ValueError for a result that is not JSON, ResultTooLarge past MAX_RESULT_BYTES.
    """
    completion = completion_prepare(run=run, attempt=attempt, result=result)
    if not can_execute_together():
        with transaction.atomic():
            if not held_by(run, attempt).update(**completion.values):
                return False
            _completed([completion])
        return True
    fence = {"status": RunStatus.RUNNING, "attempts": attempt}
    statements = [
        update_by_pk_sql(Run, run.pk, completion.values, where=fence),
        trace_heads_lock_sql(run_ids=[run.pk]),
    ]
    if completion.writes_more:
        # (checks' records and the kind's on_success write through the ORM, in a transaction of Django's)
        with transaction.atomic():
            won, lock = execute_together(statements)
            if not won.rowcount:
                return False
            _completed([completion], locked_heads=trace_heads(lock.rows))
        return True
    # The fenced update and its trace's lock in one round trip, the entries and the commit in a second.
    with _transaction_in_two_round_trips() as together:
        won, lock = together.execute(statements)
        if not won.rowcount:
            return False
        trace = getattr(run, "trace", None)
        extension = [ChainExtension(trace, run.worker_hostname, completion.entries, completion.trace_values)]
        together.commit_chain(extension if trace else [], trace_heads(lock.rows))
        publish_run_states([(run, completion.values)], action="run.succeeded")
    return True


def run_complete_many(*, completions: Sequence[Completion]) -> list[bool]:
    """run_complete for runs executed together, in one transaction: the rows still held by
    their attempts are locked, updated by one statement, and chained; a run this worker no
    longer holds is left alone (False in its place). All or nothing: on an error nothing is
    stored, and the caller may store them one by one."""
    if not completions:
        return []
    fence = reduce(or_, (Q(pk=c.run.pk, attempts=c.attempt) for c in completions))
    runs_lock = (
        Run.objects.select_for_update()
        .filter(fence, status=RunStatus.RUNNING)
        .order_by("pk")
        .values_list("pk")
    )
    with transaction.atomic():
        if can_execute_together():
            # the runs' and their traces' locks in one round trip; the runs' rows, the entries
            # and the traces' heads written in a second
            locked, lock = execute_together(
                [
                    runs_lock.query.sql_with_params(),
                    trace_heads_lock_sql(run_ids=[c.run.pk for c in completions]),
                ]
            )
            held, heads = {pk for (pk,) in locked.rows or ()}, trace_heads(lock.rows)
        else:
            held, heads = {pk for (pk,) in runs_lock}, None
        done = [c for c in completions if c.run.pk in held]
        if done:
            rows, fields = [{"pk": c.run.pk, **c.values} for c in done], list(done[0].values)
            if can_execute_together():
                _completed(done, locked_heads=heads, preceded_by=[update_rows_sql(Run, rows, fields)])
            else:
                update_rows(Run, rows, fields)
                _completed(done)
    return [c.run.pk in held for c in completions]


def retry_delay_seconds(*, backoff: float, retries: int) -> float:
    """Exponential backoff with +-20% jitter (so a burst of failures does not retry in step), capped."""
    delay = min(backoff * 2**retries, settings.RUN_RETRY_MAX_DELAY_SECONDS)
    return delay * random.uniform(0.8, 1.2)


def run_fail(*, run: Run, attempt: int, error_type: str, message: str) -> RunStatus | None:
    """Record a failure of the holder of `attempt`: a failure the kind declares transient is
    retried later (the run waits `pending` in the database until `not_before`) until the
    kind's retries run out, then the run is dead; any other failure is final. Returns the
    status the run took, or None if this attempt no longer holds it. A run that failed for good
    stops the runs it started; one that will be retried leaves them going, for its next attempt
    to take back (a tool call's child is found again by its idempotency key)."""
    error = {"type": error_type, "message": message[:2000]}
    kind = get_kind(run.kind)
    if kind is None or error_type not in kind.retry_on:
        done = _finish(
            run, attempt, RunStatus.FAILED, action="run.failed", data={"error": error}, error=error
        )
        if done:
            run_cancel_children(run=run, actor=run.worker_hostname)
        return RunStatus.FAILED if done else None
    if run.retries >= kind.max_retries:
        error["message"] = f"{error['message']} (gave up after {run.retries} retries)"
        done = _finish(run, attempt, RunStatus.DEAD, action="run.dead", data={"error": error}, error=error)
        if done:
            run_cancel_children(run=run, actor=run.worker_hostname)
        return RunStatus.DEAD if done else None
    delay = retry_delay_seconds(backoff=kind.retry_backoff_seconds, retries=run.retries)
    retried = transition(
        held_by(run, attempt),
        run,
        actor=run.worker_hostname,
        action="run.retry_scheduled",
        data={"error": error, "retry": run.retries + 1, "delay_seconds": round(delay, 3)},
        status=RunStatus.PENDING,
        retries=F("retries") + 1,
        not_before=timezone.now() + timedelta(seconds=delay),
        worker_hostname="",
        progress=0.0,
        error={**error, "retrying": True},
    )
    return RunStatus.PENDING if retried else None


def run_mark_cancelled(*, run: Run, attempt: int) -> bool:
    """The worker stopped a run that was asked to stop; children it started after the cancel
    was asked for are stopped too."""
    done = _finish(run, attempt, RunStatus.CANCELLED, action="run.cancelled", data={"while": "running"})
    if done:
        run_cancel_children(run=run, actor=run.worker_hostname)
    return done


def _stop(run: Run, actor: str, data: dict[str, Any]) -> bool:
    """End a waiting run now (revoking its message) or ask a running one to stop; False if
    it had ended or was asked already."""
    if transition(
        Run.objects.filter(pk=run.pk, status__in=WAITING_STATUSES),
        run,
        actor=actor,
        action="run.cancelled",
        data={"while": "waiting", **data},
        status=RunStatus.CANCELLED,
        cancel_requested=True,
        finished_at=timezone.now(),
    ):
        kind = get_kind(run.kind)
        shared = kind is not None and kind.shares_messages
        if not shared or not Run.objects.filter(task_id=run.task_id, status=RunStatus.QUEUED).exists():
            # (a message several runs share stays for the others; the claim skips this one)
            _revoke(run.task_id)
        return True
    return transition(
        Run.objects.filter(pk=run.pk, status=RunStatus.RUNNING, cancel_requested=False),
        run,
        actor=actor,
        action="run.cancel_requested",
        data=data,
        cancel_requested=True,
    )


def run_cancel_children(*, run: Run, actor: str) -> int:
    """Cancel the runs a run started (its tool calls) that have not ended, and theirs; returns
    how many were stopped. Called whenever a parent ends other than by succeeding: cancelled
    (through the API, then again by its worker), failed or dead (by its worker or the
    reconciler). Not when it lost its lease or waits for a retry: its next attempt takes
    them back."""
    stopped = 0
    pending = [run.pk]
    while pending:
        children = list(
            Run.objects.select_related("trace")
            .filter(parent_id__in=pending)
            .exclude(status__in=FINAL_STATUSES)
        )
        for child in children:
            stopped += _stop(child, actor, {"parent": str(child.parent_id)})
        pending = [child.pk for child in children]
    return stopped


def run_cancel(*, user: AbstractBaseUser, run_id: uuid.UUID | str) -> Run:
    """Cancel one of the user's runs and the runs it started (children).

    A waiting run (pending, queued, held, blocked) ends at once and its message is
    revoked; a running one is flagged and stops at its next progress check. A run
    that already ended, cancelled included, is a Conflict naming its status.
    """
    run = run_get_for_user(user=user, run_id=run_id)
    if run is None:
        raise NotFound("Run not found.")
    actor = user.get_username()
    if not _stop(run, actor, {}):
        run.refresh_from_db()
        if run.is_final:
            raise Conflict(f"The run already ended ({run.status}); nothing to cancel.")
    run_cancel_children(run=run, actor=actor)
    run.refresh_from_db()
    return run


def run_provenance_append(*, run: Run, attempt: int, action: str, data: dict[str, Any]) -> None:
    """An entry in the run's trace from the worker executing it (an `llm` run's model and tool
    calls), only while it holds `attempt`: a worker that lost the run writes nothing."""
    with transaction.atomic():
        if not held_by(run, attempt).select_for_update().exists():
            raise RunLeaseLost("the run is no longer held by this worker")
        chain(run, actor=run.worker_hostname, action=action, data=data)


def run_event_append(*, run: Run, attempt: int, type: str, data: dict[str, Any]) -> RunEvent:
    """Store an event of a running run (apps.runs.models.RunEvent), keeping its newest
    RUN_EVENTS_MAX_PER_RUN: the oldest are dropped, every RUN_EVENTS_TRIM_EVERY appends."""
    event = RunEvent.objects.create(run=run, attempt=attempt, type=type, data=data)
    limit = settings.RUN_EVENTS_MAX_PER_RUN
    if event.pk % RUN_EVENTS_TRIM_EVERY == 0:
        newest = (
            RunEvent.objects.filter(run=run).order_by("-id").values_list("id", flat=True)[limit : limit + 1]
        )
        oldest_kept = next(iter(newest), None)
        if oldest_kept is not None:
            RunEvent.objects.filter(run=run, id__lte=oldest_kept).delete()
    return event


def _revoke(task_id: str) -> None:
    if not task_id:
        return
    try:
        current_app.control.revoke(task_id)
    except Exception:
        # The claim refuses cancelled runs anyway; revoking only saves a wake-up.
        logger.warning("could not revoke task", extra={"task_id": task_id})
