from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.utils import timezone

from apps.core.bulk import (
    Statement,
    StatementResult,
    can_execute_together,
    execute_together,
    insert_rows,
    insert_rows_sql,
    mark_saved,
    new_instance,
    update_by_pk_sql,
    update_rows,
    update_rows_sql,
)
from apps.core.exceptions import Conflict, NotFound, ValidationFailed
from apps.core.hashchain import (
    GENESIS_HASH,
    ChainVerification,
    canonical_json,
    entry_hash,
    sha256_hex,
    verify_chain,
)
from apps.sessions.models import Session
from apps.sessions.selectors import session_get_for_user
from apps.traces.models import ProvenanceEntry, Trace
from apps.traces.selectors import trace_get_for_user


def _normalised(data: Any) -> Any:
    # What the database gives back is what verification will hash: round-trip
    # through canonical JSON now so the stored value and the hashed one agree.
    return json.loads(canonical_json(data))


def trace_create(
    *,
    user: AbstractBaseUser,
    session_id: UUID | str,
    inputs: dict[str, Any] | None = None,
    outputs: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
) -> Trace:
    """A client's own trace, in one of the sessions it may see."""
    session = session_get_for_user(user=user, session_id=session_id)
    if session is None:
        raise ValidationFailed(fields={"session": ["Session not found."]})
    return _trace_create(
        session=session, actor=user.get_username(), inputs=inputs, outputs=outputs, metadata=metadata
    )


def traces_for_runs(
    *, runs: list[Any], actor: str, inputs: list[dict[str, Any]], metadata: list[dict[str, Any]]
) -> tuple[list[Trace], list[ProvenanceEntry]]:
    """The platform's traces of new runs (apps.runs), each with its first provenance entry,
    not yet stored (trace_create_for_runs stores them; a caller may send their inserts with
    its own). A new trace has no chain to lock: its first entry is computed here, and the row
    is written with its head already in place."""
    created_at = timezone.now()
    traces, entries = [], []
    no_outputs = _digest({})
    for run, run_inputs, run_metadata in zip(runs, inputs, metadata, strict=True):
        # each value's canonical text once: what is stored (read back as the database will give
        # it) and its digest come from the same text, as _trace_digests computes them later
        inputs_body, metadata_body = canonical_json(run_inputs), canonical_json(run_metadata)
        trace = new_instance(
            Trace,
            id=uuid4(),
            session_id=run.session_id,
            run=run,
            inputs=json.loads(inputs_body),
            outputs={},
            metadata=json.loads(metadata_body),
        )
        data = {
            "inputs_sha256": sha256_hex(inputs_body),
            "outputs_sha256": no_outputs,
            "metadata_sha256": sha256_hex(metadata_body),
            "session": str(run.session_id),
            "run": str(run.pk),
        }
        digest = entry_hash(
            prev_hash=GENESIS_HASH,
            chain_id=str(trace.pk),
            seq=1,
            actor=actor,
            action="trace.created",
            data=data,
            created_at=created_at,
        )
        trace.head_hash, trace.entry_count = digest, 1
        traces.append(trace)
        entries.append(
            new_instance(
                ProvenanceEntry,
                trace=trace,
                seq=1,
                actor=actor,
                action="trace.created",
                data=data,
                created_at=created_at,
                prev_hash=GENESIS_HASH,
                hash=digest,
            )
        )
    for run, trace in zip(runs, traces, strict=True):
        run.trace = trace
    return traces, entries


def trace_create_for_runs(
    *, runs: list[Any], actor: str, inputs: list[dict[str, Any]], metadata: list[dict[str, Any]]
) -> list[Trace]:
    """traces_for_runs, stored: two bulk inserts inside the runs' transaction."""
    traces, entries = traces_for_runs(runs=runs, actor=actor, inputs=inputs, metadata=metadata)
    insert_rows(Trace, traces)
    insert_rows(ProvenanceEntry, entries)
    return traces


def _trace_create(
    *,
    session: Session,
    actor: str,
    inputs: dict[str, Any] | None = None,
    outputs: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
    run: Any = None,
) -> Trace:
    with transaction.atomic():
        trace = Trace.objects.create(
            session=session,
            run=run,
            inputs=_normalised(inputs or {}),
            outputs=_normalised(outputs or {}),
            metadata=_normalised(metadata or {}),
        )
        provenance_append(
            trace=trace,
            actor=actor,
            action="trace.created",
            data={**_trace_digests(trace), "session": str(session.pk), "run": _run_id(trace)},
        )
    return trace


# Fields of the trace row that the chain records (digests for the JSON ones), and
# the entries that record them. Clients cannot append these actions (see
# RESERVED_ACTION_PREFIXES), so their data can be trusted to describe the row.
TRACE_FIELDS = ("inputs_sha256", "outputs_sha256", "metadata_sha256", "session", "run")
SYSTEM_TRACE_ACTIONS = ("trace.created", "trace.outputs")
RESERVED_ACTION_PREFIXES = ("trace.", "run.", "governance.")


def _digest(value: Any) -> str:
    return sha256_hex(canonical_json(value))


def _trace_digests(trace: Trace) -> dict[str, str]:
    return {
        "inputs_sha256": _digest(trace.inputs),
        "outputs_sha256": _digest(trace.outputs),
        "metadata_sha256": _digest(trace.metadata),
    }


def _run_id(trace: Trace) -> str | None:
    return str(trace.run_id) if trace.run_id is not None else None


def provenance_append_for_user(
    *, user: AbstractBaseUser, trace_id: UUID | str, action: str, data: dict[str, Any]
) -> ProvenanceEntry:
    """A client's entry on a trace it may see; the platform's own actions are refused."""
    trace = trace_get_for_user(user=user, trace_id=trace_id)
    if trace is None:
        raise NotFound("Trace not found.")
    if trace.merged:
        raise Conflict("This trace is merged into its session's history and is read-only.")
    if action.startswith(RESERVED_ACTION_PREFIXES):
        raise ValidationFailed(
            fields={
                "action": [
                    f"Actions starting with {' or '.join(RESERVED_ACTION_PREFIXES)} "
                    "are recorded by the platform only."
                ]
            }
        )
    return provenance_append(trace=trace, actor=user.get_username(), action=action, data=data)


def provenance_append(*, trace: Trace, actor: str, action: str, data: dict[str, Any]) -> ProvenanceEntry:
    """Append one entry (the platform's; clients go through provenance_append_for_user).
    Serialised per trace by a row lock, so seq never forks."""
    return provenance_extend(trace=trace, actor=actor, entries=[(action, data)])[0]


def provenance_extend(
    *,
    trace: Trace,
    actor: str,
    entries: list[tuple[str, dict[str, Any]]],
    trace_values: dict[str, Any] | None = None,
) -> list[ProvenanceEntry]:
    """Append entries (action, data) in order, and write `trace_values` to the trace row with
    its new head: one lock, one insert and one update however many entries. Part of the
    caller's transaction (no savepoint of its own: a failure fails the caller's)."""
    return provenance_extend_many([ChainExtension(trace, actor, entries, trace_values)])


@dataclass(frozen=True)
class ChainExtension:
    """What provenance_extend_many appends to one trace."""

    trace: Trace
    actor: str
    entries: list[tuple[str, dict[str, Any]]]
    trace_values: dict[str, Any] | None = None


Head = tuple[str, int]  # a trace's head_hash and entry_count


def trace_heads_lock_sql(*, run_ids: Sequence[Any]) -> Statement:
    """The statement (PostgreSQL) that locks the traces of these runs, in id order, and reads
    their heads, for a caller to run together with its own statements; its rows go to
    trace_heads. Written out: the ORM's compiler took most of a millisecond for it."""
    quote = connection.ops.quote_name
    prep = Trace._meta.get_field("run").target_field.get_db_prep_value
    columns = ", ".join(quote(column) for column in HEAD_COLUMNS)
    sql = (
        f"SELECT {columns} FROM {quote(Trace._meta.db_table)} "
        f"WHERE {quote('run_id')} IN ({', '.join(['%s'] * len(run_ids))}) ORDER BY {quote('id')} FOR UPDATE"
    )
    return sql, [prep(run_id, connection) for run_id in run_ids]


def trace_heads(rows: list[tuple[Any, ...]] | None) -> dict[Any, Head]:
    """Heads by trace id from the rows of trace_heads_lock_sql."""
    return {pk: (head_hash, entry_count) for pk, head_hash, entry_count in rows or ()}


HEAD_COLUMNS = ("id", "head_hash", "entry_count")


def provenance_extend_many(
    extensions: list[ChainExtension],
    *,
    locked_heads: dict[Any, Head] | None = None,
    preceded_by: Sequence[Statement] = (),
) -> list[ProvenanceEntry]:
    """provenance_extend for several traces (the runs a worker claimed or completed
    together): one locking read, then one insert and one update of the trace rows for all of
    them (in one round trip where the database allows). Traces are locked in id order, so two
    callers never wait on each other in a cycle. A caller that has locked the traces already
    (trace_heads_lock_sql, in its own round trip) passes their heads as `locked_heads`; one
    with writes of its own to make first passes them as `preceded_by` (sent in the same round
    trip)."""
    if not extensions:
        _execute(preceded_by)
        return []
    with transaction.atomic(savepoint=False):
        ids = sorted({ext.trace.pk for ext in extensions})
        if locked_heads is None or not set(ids) <= set(locked_heads):
            locked_heads = trace_heads(
                list(
                    Trace.objects.select_for_update()
                    .filter(pk__in=ids)
                    .order_by("pk")
                    .values_list(*HEAD_COLUMNS)
                )
            )
        write = ChainWrite(extensions, locked_heads)
        if can_execute_together():
            statements = [*preceded_by, *write.statements()]
            write.written(execute_together(statements)[len(preceded_by) :])
        else:
            _execute(preceded_by)
            ProvenanceEntry.objects.bulk_create(write.rows)
            for update in _head_updates(write.heads, together=False):
                update()
            write.written(None)
    return write.rows


class ChainWrite:
    """The entries that extend locked traces and their rows' new heads: the statements that
    write them (PostgreSQL) for a caller to send with its own, then `written` with their
    results."""

    def __init__(self, extensions: list[ChainExtension], locked_heads: dict[Any, Head]) -> None:
        self._extensions = extensions
        created_at = timezone.now()
        self.rows: list[ProvenanceEntry] = []
        self.heads: dict[Any, dict[str, Any]] = {}  # trace id -> the values its row gets
        for ext in extensions:
            pk = ext.trace.pk
            head = self.heads.get(pk)
            prev_hash, seq = (head["head_hash"], head["entry_count"]) if head else locked_heads[pk]
            for action, data in ext.entries:
                seq += 1
                data = _normalised(data)
                digest = entry_hash(
                    prev_hash=prev_hash,
                    chain_id=str(pk),
                    seq=seq,
                    actor=ext.actor,
                    action=action,
                    data=data,
                    created_at=created_at,
                )
                self.rows.append(
                    ProvenanceEntry(
                        trace_id=pk,
                        seq=seq,
                        actor=ext.actor,
                        action=action,
                        data=data,
                        created_at=created_at,
                        prev_hash=prev_hash,
                        hash=digest,
                    )
                )
                prev_hash = digest
            self.heads[pk] = {
                **(head or {}),
                "head_hash": prev_hash,
                "entry_count": seq,
                **(ext.trace_values or {}),
            }

    def statements(self) -> list[Statement]:
        return [
            insert_rows_sql(ProvenanceEntry, self.rows, returning_pk=True),
            *_head_updates(self.heads, together=True),
        ]

    def written(self, results: list[StatementResult] | None) -> None:
        """After the statements ran (their results) or the rows were stored otherwise (None)."""
        if results is not None:
            for row, (pk,) in zip(self.rows, results[0].rows or (), strict=True):
                row.pk = pk
            mark_saved(self.rows)
        for ext in self._extensions:
            head = self.heads[ext.trace.pk]
            ext.trace.head_hash, ext.trace.entry_count = head["head_hash"], head["entry_count"]


def _execute(statements: Sequence[Statement]) -> None:
    if statements:
        execute_together(statements)


def _head_updates(heads: dict[Any, dict[str, Any]], *, together: bool) -> list[Any]:
    """The trace rows' writes: one UPDATE per set of written fields (every completion writes
    the same ones); as statements to run together, or as calls."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for pk, values in heads.items():
        groups.setdefault(tuple(sorted(values)), []).append({"pk": pk, **values})
    out: list[Any] = []
    for fields, group in groups.items():
        if len(group) == 1:
            ((values),) = group
            pk, changes = values["pk"], {f: values[f] for f in fields}
            if together:
                out.append(update_by_pk_sql(Trace, pk, changes))
            else:
                out.append(lambda pk=pk, changes=changes: Trace.objects.filter(pk=pk).update(**changes))
        elif together:
            out.append(update_rows_sql(Trace, group, fields))
        else:
            out.append(lambda group=group, fields=fields: update_rows(Trace, group, fields))
    return out


def trace_merge(*, trace: Trace, actor: str) -> Trace:
    """Merge a trace into its session's accepted history; it is read-only afterwards.
    The caller (governance) decides whether the policy allows it."""
    with transaction.atomic():
        if not Trace.objects.filter(pk=trace.pk, merged=False).update(merged=True, updated_at=timezone.now()):
            raise Conflict("This trace is merged already.")
        provenance_append(trace=trace, actor=actor, action="trace.merged", data={})
    trace.refresh_from_db()
    return trace


def trace_outputs_record(*, trace: Trace, actor: str, outputs: dict[str, Any]) -> None:
    """Set a trace's outputs and chain a digest of them."""
    provenance_extend(trace=trace, actor=actor, **trace_outputs_entry(outputs))


def trace_outputs_entry(outputs: dict[str, Any]) -> dict[str, Any]:
    """provenance_extend's arguments that set a trace's outputs: its `trace.outputs` entry
    and the row's new values, for callers that chain other entries in the same append."""
    outputs = _normalised(outputs)
    return {
        "entries": [("trace.outputs", {"outputs_sha256": _digest(outputs)})],
        "trace_values": {"outputs": outputs, "updated_at": timezone.now()},
    }


def trace_verify(*, trace: Trace) -> ChainVerification:
    """Recompute the chain; name the first entry (by seq) that does not hold, or the entry
    after which the trace row itself changed."""
    trace = Trace.objects.get(pk=trace.pk)
    recorded: dict[str, tuple[Any, int]] = {}  # field -> (last value the chain holds, its seq)

    def remember(entry: ProvenanceEntry) -> None:
        if entry.action in SYSTEM_TRACE_ACTIONS and isinstance(entry.data, dict):
            recorded.update(
                {field: (entry.data[field], entry.seq) for field in TRACE_FIELDS if field in entry.data}
            )

    verification = verify_chain(
        trace.provenance.order_by("seq", "id").iterator(),
        chain_id=str(trace.pk),
        head_hash=trace.head_hash,
        entry_count=trace.entry_count,
        visit=remember,
    )
    if not verification.valid:
        return verification
    # The trace row itself must still match what its chain last recorded of it.
    current = {**_trace_digests(trace), "session": str(trace.session_id), "run": _run_id(trace)}
    for field, value in current.items():
        if field in recorded and recorded[field][0] != value:
            name = field.removesuffix("_sha256")
            reason = f"the trace's {name} changed after this entry"
            return ChainVerification(False, recorded[field][1], reason, verification.entries)
    return verification
