"""Submitting runs: validate -> input checks -> store run + trace in one transaction ->
enqueue on commit. The session is scoped here, so every caller (API, admin, CLI, an
LLM tool) can submit only into sessions it may see.
"""

from __future__ import annotations

import logging
import threading
import uuid
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from celery import current_app
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.db.models.functions import Now
from django.utils import timezone
from kombu.common import maybe_declare

from apps.core.bulk import (
    TransactionTogether,
    can_execute_together,
    can_run_transaction_together,
    execute_together,
    insert_rows,
    insert_rows_sql,
    mark_saved,
    new_instance,
    transaction_together,
)
from apps.core.exceptions import Conflict, ValidationFailed
from apps.core.hashchain import canonical_json, sha256_hex
from apps.core.queues import EXECUTE_RUN_TASK, EXECUTE_RUNS_TASK, broker_priority
from apps.runs.backpressure import backpressure_check
from apps.runs.events import publish_run_state, publish_runs_created
from apps.runs.kinds import get_kind, kind_names
from apps.runs.models import MAX_PRIORITY, Run, RunBatch, RunStatus
from apps.runs.pipeline import Decision, InputSubject, Verdict, check_inputs
from apps.runs.services._transitions import chain, transition
from apps.sessions.models import Session
from apps.sessions.selectors import session_get_for_user
from apps.traces.models import ProvenanceEntry, Trace
from apps.traces.services import traces_for_runs

logger = logging.getLogger(__name__)

# send_runs' publish options for the messages of its batch (this thread's).
_batch = threading.local()

PLATFORM_ACTOR = "platform"
# Celery's own limit on a message's argsrepr (shown by Flower)
ARGSREPR_MAX = 1024


@dataclass(frozen=True)
class RunRequest:
    session_id: uuid.UUID | str
    kind: str
    payload: dict[str, Any]
    priority: int = 0


@dataclass(frozen=True)
class _Prepared:
    request: RunRequest
    session: Session
    payload: dict[str, Any]
    queue: str
    verdict: Verdict


def _session(
    user: AbstractBaseUser, session_id: uuid.UUID | str, seen: dict[str, Session | None] | None = None
) -> Session:
    """The session if the user may submit into it; `seen` caches lookups across a batch."""
    key = str(session_id)
    if seen is not None and key in seen:
        session = seen[key]
    else:
        session = session_get_for_user(user=user, session_id=session_id)
        if seen is not None:
            seen[key] = session
    if session is None:
        raise ValidationFailed(fields={"session": ["Session not found."]})
    return session


def _validated_payload(
    user: AbstractBaseUser,
    session: Session,
    request: RunRequest,
    validators: dict[tuple[str, Any], Callable[[Any], dict[str, Any]]] | None = None,
) -> tuple[Any, dict[str, Any]]:
    """`validators` carries each kind's payload validator across a batch (per session)."""
    kind = get_kind(request.kind)
    if kind is None:
        raise ValidationFailed(
            fields={"kind": [f"Unknown run kind {request.kind!r}; known kinds: {', '.join(kind_names())}."]}
        )
    priority = request.priority
    if isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= MAX_PRIORITY:
        raise ValidationFailed(fields={"priority": [f"Must be an integer in 0..{MAX_PRIORITY}."]})
    if validators is None:
        return kind, kind.validate_payload(request.payload, user=user, session=session)
    key = (kind.name, session.pk)
    validate = validators.get(key)
    if validate is None:
        validate = validators[key] = kind.payload_validator(user=user, session=session)
    return kind, validate(request.payload)


@dataclass
class _BatchLookups:
    """What a batch's runs look up once: sessions, queues found not backed up, payload validators."""

    sessions: dict[str, Session | None] = field(default_factory=dict)
    accepting: set[str] = field(default_factory=set)
    validators: dict[tuple[str, Any], Callable[[Any], dict[str, Any]]] = field(default_factory=dict)


def _prepare(user: AbstractBaseUser, request: RunRequest, lookups: _BatchLookups | None = None) -> _Prepared:
    session = _session(user, request.session_id, lookups.sessions if lookups else None)
    kind, payload = _validated_payload(user, session, request, lookups.validators if lookups else None)
    queue = kind.queue_for(payload)
    if lookups is None or queue not in lookups.accepting:
        # before the input checks, which cost more than this cache read; a backed-up queue
        # refuses a whole batch
        backpressure_check(queues=[queue])
        if lookups is not None:
            lookups.accepting.add(queue)
    verdict = check_inputs(InputSubject(user=user, session=session, kind=kind.name, payload=payload))
    return _Prepared(request, session, payload, queue, verdict)


_STATUS_OF_DECISION = {
    Decision.ALLOW: RunStatus.PENDING,
    Decision.HOLD: RunStatus.HELD,
    Decision.BLOCK: RunStatus.BLOCKED,
}


def _store(
    *,
    user: AbstractBaseUser,
    prepared: list[_Prepared],
    idempotency_key: str | None,
    batch: RunBatch | None,
    parent: Run | None = None,
    together: TransactionTogether | None = None,
) -> list[Run]:
    """Inside the caller's transaction (or, with `together`, as its last round trip, which
    commits it): the batch row if new, the runs, their traces and first provenance entries
    (bulk inserts sent together where the database allows), their checks; the cleared ones are
    stored `queued` and sent on commit (a process that dies between the commit and the publish
    leaves them queued without a message: the reconciler sees the broker hold fewer messages
    than queued runs and sends them). `together` only for runs whose checks recorded nothing."""
    now = timezone.now()
    runs = []
    for item in prepared:
        status = _STATUS_OF_DECISION[item.verdict.decision]
        cleared = status == RunStatus.PENDING
        runs.append(
            new_instance(
                Run,
                id=uuid.uuid4(),
                owner=user,
                session=item.session,
                kind=item.request.kind,
                payload=item.payload,
                queue=item.queue,
                priority=item.request.priority,
                idempotency_key=idempotency_key,
                status=RunStatus.QUEUED if cleared else status,
                queued_at=now if cleared else None,
                task_id=str(uuid.uuid4()) if cleared else "",
                hold_reason=item.verdict.reason,
                batch=batch,
                parent=parent,
            )
        )
    _share_messages([run for run in runs if run.status == RunStatus.QUEUED])
    traces, entries = traces_for_runs(
        runs=runs,
        actor=user.get_username(),
        inputs=[{"kind": run.kind, "payload": run.payload} for run in runs],
        metadata=[{"queue": run.queue, "priority": run.priority} for run in runs],
    )
    new_batch = [batch] if batch is not None and batch._state.adding else []
    if can_execute_together():
        statements = [
            insert_rows_sql(Run, runs),
            insert_rows_sql(Trace, traces),
            insert_rows_sql(ProvenanceEntry, entries),
        ]
        if new_batch:
            statements.insert(0, insert_rows_sql(RunBatch, new_batch))
        if together is not None:
            together.commit(statements)
        else:
            execute_together(statements)
        mark_saved([*new_batch, *runs, *traces, *entries])
    else:
        if new_batch:
            insert_rows(RunBatch, new_batch)
        insert_rows(Run, runs)
        insert_rows(Trace, traces)
        insert_rows(ProvenanceEntry, entries)
    for run, item in zip(runs, prepared, strict=True):
        if item.verdict.results:
            chain(
                run,
                actor=PLATFORM_ACTOR,
                action="run.checked",
                data={"decision": run.status, "checks": item.verdict.as_json()},
            )
            item.verdict.record(run)
    publish_runs_created(runs)
    queued = [run for run in runs if run.status == RunStatus.QUEUED]
    if queued:
        transaction.on_commit(lambda: send_runs(queued))
    return runs


@contextmanager
def _submission_transaction(prepared: list[_Prepared]) -> Iterator[TransactionTogether | None]:
    """The submission's transaction: one round trip (TransactionTogether) where Django holds
    none and no check has findings to record; else Django's (None: _store writes inside it)."""
    if can_run_transaction_together() and not any(item.verdict.results for item in prepared):
        with transaction_together() as together:
            yield together
        return
    with transaction.atomic():
        yield None


def _share_messages(runs: list[Run]) -> None:
    """Give the short runs of a batch (kinds that share messages) one task id per
    RUN_MESSAGE_MAX_RUNS of the same queue, priority and kind: the id of the message that
    carries them (send_runs). The others keep a message each."""
    size = settings.RUN_MESSAGE_MAX_RUNS
    if size <= 1:
        return
    groups: dict[tuple[str, int, str], list[Run]] = {}
    for run in runs:
        kind = get_kind(run.kind)
        if kind is not None and kind.shares_messages:
            groups.setdefault((run.queue, run.priority, run.kind), []).append(run)
    for group in groups.values():
        for start in range(0, len(group), size):
            task_id = str(uuid.uuid4())
            for run in group[start : start + size]:
                run.task_id = task_id


def run_submit(
    *,
    user: AbstractBaseUser,
    session_id: uuid.UUID | str,
    kind: str,
    payload: dict[str, Any],
    priority: int = 0,
    idempotency_key: str | None = None,
    parent: Run | None = None,
) -> tuple[Run, bool]:
    """Validate, check, store a Run and its Trace in one transaction, enqueue on commit.

    Returns (run, created). With an idempotency key seen before for this user the
    stored run comes back unchanged (created=False); a different request under the
    same key is a Conflict. A `parent` (a run of the same user and session: an `llm`
    run's tool call) makes this run its child, cancelled with it.
    """
    if parent is not None and (parent.owner_id != user.pk or str(parent.session_id) != str(session_id)):
        raise ValidationFailed(fields={"parent": ["A child run belongs to its parent's owner and session."]})
    request = RunRequest(session_id=session_id, kind=kind, payload=payload, priority=priority)
    if idempotency_key is not None:
        existing = Run.objects.filter(owner=user, idempotency_key=idempotency_key).first()
        if existing is not None:
            return _replayed(existing, user, request), False
    prepared = _prepare(user, request)
    try:
        with _submission_transaction([prepared]) as together:
            (run,) = _store(
                user=user,
                prepared=[prepared],
                idempotency_key=idempotency_key,
                batch=None,
                parent=parent,
                together=together,
            )
            return run, True
    except IntegrityError:
        # A concurrent request with the same key won the insert.
        existing = Run.objects.filter(owner=user, idempotency_key=idempotency_key).first()
        if idempotency_key is None or existing is None:
            raise
        return _replayed(existing, user, request), False


def _fingerprint(rows: list[tuple[Any, str, int, dict[str, Any]]]) -> str:
    """Digest of what would be stored for each run: (session, kind, priority, cleaned payload)."""
    return sha256_hex(
        canonical_json([[str(session), kind, priority, payload] for session, kind, priority, payload in rows])
    )


def _fingerprint_of_requests(user: AbstractBaseUser, requests: list[RunRequest]) -> str:
    # Validators fill defaults and normalise (5 -> 5.0): compare what would be stored.
    rows, lookups = [], _BatchLookups()
    for request in requests:
        session = _session(user, request.session_id, lookups.sessions)
        _, payload = _validated_payload(user, session, request, lookups.validators)
        rows.append((session.pk, request.kind, request.priority, payload))
    return _fingerprint(rows)


def _replayed(existing: Run, user: AbstractBaseUser, request: RunRequest) -> Run:
    stored = _fingerprint([(existing.session_id, existing.kind, existing.priority, existing.payload)])
    try:
        same = _fingerprint_of_requests(user, [request]) == stored
    except ValidationFailed:
        same = False
    if not same:
        raise Conflict("This Idempotency-Key was already used for a different request.")
    return existing


def run_submit_batch(
    *, user: AbstractBaseUser, requests: list[RunRequest], idempotency_key: str | None = None
) -> tuple[list[Run], bool]:
    """All or nothing: one invalid run rejects the batch and stores none, and so does one
    run for a backed-up queue (QueueOverloaded).

    Returns (runs, created); the same Idempotency-Key with the same batch gives the
    stored runs back, with another batch a Conflict.
    """
    if idempotency_key is not None:
        existing = RunBatch.objects.filter(owner=user, idempotency_key=idempotency_key).first()
        if existing is not None:
            return _replayed_batch(existing, user, requests), False
    errors: dict[str, Any] = {}
    prepared, lookups = [], _BatchLookups()
    for index, request in enumerate(requests):
        try:
            prepared.append(_prepare(user, request, lookups))
        except ValidationFailed as exc:
            errors[str(index)] = exc.fields
    if errors:
        raise ValidationFailed(fields={"runs": errors})
    fingerprint = _fingerprint(
        [(p.session.pk, p.request.kind, p.request.priority, p.payload) for p in prepared]
    )
    try:
        with _submission_transaction(prepared) as together:
            batch = RunBatch(owner=user, idempotency_key=idempotency_key, request_sha256=fingerprint)
            runs = _store(user=user, prepared=prepared, idempotency_key=None, batch=batch, together=together)
    except IntegrityError:
        existing = RunBatch.objects.filter(owner=user, idempotency_key=idempotency_key).first()
        if idempotency_key is None or existing is None:
            raise
        return _replayed_batch(existing, user, requests), False
    return runs, True


def _replayed_batch(batch: RunBatch, user: AbstractBaseUser, requests: list[RunRequest]) -> list[Run]:
    try:
        same = _fingerprint_of_requests(user, requests) == batch.request_sha256
    except ValidationFailed:
        same = False
    if not same:
        raise Conflict("This Idempotency-Key was already used for a different batch.")
    return list(batch.runs.select_related("trace").order_by("created_at", "id"))


def run_enqueue(*, run_id: uuid.UUID | str) -> bool:
    """Mark a pending run queued and send its message. Safe to call twice."""
    task_id = str(uuid.uuid4())
    due = Q(not_before__isnull=True) | Q(not_before__lte=Now())
    claimed = Run.objects.filter(due, pk=run_id, status=RunStatus.PENDING).update(
        status=RunStatus.QUEUED, queued_at=timezone.now(), task_id=task_id
    )
    if not claimed:
        return False
    run = Run.objects.get(pk=run_id)
    publish_run_state(run, action="run.queued")
    return send_run(run)


def send_runs(runs: list[Run]) -> int:
    """Publish queued runs' messages over one pooled producer, in one pipelined round trip
    where the broker allows (kombu's publish batch: Redis); runs that share a task id go in one
    message (_share_messages). Returns how many runs went out."""
    messages: dict[str, list[Run]] = {}
    for run in runs:
        messages.setdefault(run.task_id, []).append(run)
    try:
        with current_app.producer_or_acquire() as producer, producer.batch():
            if producer.supports_batch_publish:
                # Each queue declared once here, not once per message; and nothing leaves until
                # the batch is flushed, so a retry per message would be moot.
                for queue in sorted({run.queue for run in runs}):
                    _declare_once(producer.channel, queue)
                _batch.options = {"declare": [], "retry": False}
            try:
                return sum(
                    _send_shared(group, producer) if len(group) > 1 else send_run(group[0], producer=producer)
                    for group in messages.values()
                )
            finally:
                _batch.options = {}
    except Exception:
        # Broker down: back to pending; the reconciler sends them again later.
        logger.exception("could not reach the broker to enqueue runs")
        _unsent(runs)
        return 0


# The queues each broker channel has declared. kombu's maybe_declare remembers them too, but
# binds a copy of the queue and its exchange to the channel before it looks: a fifth of a
# single run's publish. A channel kombu replaces after a connection error is a new key here.
_declared: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()


def _declare_once(channel: Any, queue: str) -> None:
    declared = _declared.setdefault(channel, set())
    if queue not in declared:
        maybe_declare(current_app.amqp.queues[queue], channel)
        declared.add(queue)


def _unsent(runs: list[Run]) -> None:
    unsent = Run.objects.filter(pk__in=[run.pk for run in runs], status=RunStatus.QUEUED)
    unsent.update(status=RunStatus.PENDING)
    for run in runs:
        publish_run_state(run, action="run.unsent", values={"status": RunStatus.PENDING})


def _publish(task: str, args: tuple[Any, ...], runs: list[Run], producer: Any) -> None:
    """Send the message carrying `runs` (one, or several short runs of one queue, priority
    and kind) by task name: the web process imports no worker code.

    Celery's own two steps, without `send_task`'s per-message work around them (the task
    registry, the router, option merging, a result object): the queue is named and these
    tasks have no execution options of their own to merge. The message is the one `send_task`
    sends (tests/apps/runs/test_publish.py)."""
    first = runs[0]
    kind = get_kind(first.kind)
    # runs that share a message execute one after another: its limit is theirs together
    time_limit = kind.time_limit_seconds * len(runs) if kind else None
    # plain reprs: Celery's saferepr of a shared message's 25 ids costs more than the rest of its publish
    argsrepr = repr(args)
    app = current_app
    amqp = app.amqp
    parent = app.current_worker_task  # a run submitted by a task (an llm run's tool call) is its child
    message = amqp.create_task_message(
        first.task_id,
        task,
        args,
        {},
        reply_to=app.thread_oid,
        time_limit=time_limit + 30 if time_limit else None,
        soft_time_limit=time_limit,
        create_sent_event=app.conf.task_send_sent_event,
        root_id=(parent.request.root_id or parent.request.id) if parent else None,
        parent_id=parent.request.id if parent else None,
        ignore_result=None,  # as send_task leaves it: the task's own setting decides
        argsrepr=argsrepr if len(argsrepr) <= ARGSREPR_MAX else argsrepr[: ARGSREPR_MAX - 3] + "...",
        kwargsrepr="{}",
    )
    with app.producer_or_acquire(producer) as publisher, publisher.connection._reraise_as_library_errors():
        amqp.send_task_message(
            publisher,
            task,
            message,
            queue=amqp.queues[first.queue],
            priority=broker_priority(first.priority, settings.CELERY_BROKER_URL),
            **getattr(_batch, "options", {}),
        )


def _send_shared(runs: list[Run], producer: Any) -> int:
    """One message for several short runs; returns how many went out."""
    try:
        _publish(EXECUTE_RUNS_TASK, ([str(run.pk) for run in runs],), runs, producer)
    except Exception:
        logger.exception("could not enqueue runs", extra={"task_id": runs[0].task_id})
        _unsent(runs)
        return 0
    return len(runs)


def send_run(run: Run, producer: Any = None) -> bool:
    """Publish a queued run's own message."""
    try:
        _publish(EXECUTE_RUN_TASK, (str(run.pk),), [run], producer)
    except Exception:
        # Broker down: back to pending; the reconciler sends it again later.
        logger.exception("could not enqueue run", extra={"run_id": run.pk})
        if Run.objects.filter(pk=run.pk, status=RunStatus.QUEUED).update(status=RunStatus.PENDING):
            publish_run_state(run, action="run.unsent", values={"status": RunStatus.PENDING})
        return False
    return True


def run_release(*, run: Run, actor: str, note: str = "", held_for: str | None = None) -> bool:
    """Clear a held or blocked run to execute (queued on commit), or show a withheld result.

    The caller decides who may release (governance's reviewers); this is the state change.
    `held_for`: release only a run still held for that reason (the check it waits for), and
    never a withheld result.
    """
    waiting = Run.objects.filter(pk=run.pk, status__in=(RunStatus.HELD, RunStatus.BLOCKED))
    if held_for is not None:
        waiting = waiting.filter(status=RunStatus.HELD, hold_reason=held_for)
    with transaction.atomic():
        if transition(
            waiting,
            run,
            actor=actor,
            action="run.released",
            data={"note": note},
            status=RunStatus.PENDING,
            hold_reason="",
        ):
            run_id = run.pk
            transaction.on_commit(lambda: run_enqueue(run_id=run_id))
            return True
        if held_for is not None:
            return False
        return transition(
            Run.objects.filter(pk=run.pk, result_withheld=True),
            run,
            actor=actor,
            action="run.result_released",
            data={"note": note},
            result_withheld=False,
            hold_reason="",
        )


def run_hold_decide(*, run: Run, actor: str, held_for: str, block: bool, reason: str) -> bool:
    """The check a run is held for has decided against running it: the run is blocked by
    policy (`block`), or stays held for another reason (a reviewer's decision). Only while it
    is still held for `held_for` (compare-and-set): a second delivery of the check does nothing."""
    return transition(
        Run.objects.filter(pk=run.pk, status=RunStatus.HELD, hold_reason=held_for),
        run,
        actor=actor,
        action="run.blocked" if block else "run.held",
        data={"reason": reason},
        status=RunStatus.BLOCKED if block else RunStatus.HELD,
        hold_reason=reason,
    )


def run_requeue(*, run: Run, actor: str) -> bool:
    """Give a dead run a fresh set of attempts (an admin's decision); it is sent on commit."""
    with transaction.atomic():
        requeued = transition(
            Run.objects.filter(pk=run.pk, status=RunStatus.DEAD),
            run,
            actor=actor,
            action="run.requeued_from_dead",
            data={"attempts": run.attempts, "retries": run.retries},
            status=RunStatus.PENDING,
            attempts=0,
            retries=0,
            not_before=None,
            error=None,
            finished_at=None,
            worker_hostname="",
            progress=0.0,
        )
        if requeued:
            run_id = run.pk
            transaction.on_commit(lambda: run_enqueue(run_id=run_id))
    return requeued


def run_reject(*, run: Run, actor: str, reason: str) -> bool:
    """End a held or blocked run, or a succeeded run whose result was withheld, as failed
    with the reviewer's reason; a withheld result stays withheld."""
    error = {"type": "Rejected", "message": reason[:2000]}
    waiting = Run.objects.filter(pk=run.pk, status__in=(RunStatus.HELD, RunStatus.BLOCKED, RunStatus.PENDING))
    withheld = Run.objects.filter(pk=run.pk, status=RunStatus.SUCCEEDED, result_withheld=True)
    for runs in (waiting, withheld):
        if transition(
            runs,
            run,
            actor=actor,
            action="run.rejected",
            data={"reason": reason},
            status=RunStatus.FAILED,
            error=error,
            finished_at=timezone.now(),
        ):
            return True
    return False
