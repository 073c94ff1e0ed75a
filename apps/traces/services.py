from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from apps.core.bulk import insert_rows, update_rows
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


def trace_create_for_runs(
    *, runs: list[Any], actor: str, inputs: list[dict[str, Any]], metadata: list[dict[str, Any]]
) -> list[Trace]:
    """The platform's traces of new runs (apps.runs), each with its first provenance entry,
    in two bulk inserts inside the runs' transaction. A new trace has no chain to lock: its
    first entry is computed here, and the row is written with its head already in place."""
    created_at = timezone.now()
    traces, entries = [], []
    no_outputs = _digest({})
    for run, run_inputs, run_metadata in zip(runs, inputs, metadata, strict=True):
        # each value's canonical text once: what is stored (read back as the database will give
        # it) and its digest come from the same text, as _trace_digests computes them later
        inputs_body, metadata_body = canonical_json(run_inputs), canonical_json(run_metadata)
        trace = Trace(
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
            ProvenanceEntry(
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
    insert_rows(Trace, traces)
    insert_rows(ProvenanceEntry, entries)
    for run, trace in zip(runs, traces, strict=True):
        run.trace = trace
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


def provenance_extend_many(extensions: list[ChainExtension]) -> list[ProvenanceEntry]:
    """provenance_extend for several traces (the runs a worker claimed or completed
    together): one locking read, one insert and one update of the trace rows for all of
    them. Traces are locked in id order, so two callers never wait on each other in a cycle."""
    if not extensions:
        return []
    with transaction.atomic(savepoint=False):
        ids = sorted({ext.trace.pk for ext in extensions})
        heads = {
            head.pk: head
            for head in Trace.objects.select_for_update()
            .only("id", "head_hash", "entry_count")
            .filter(pk__in=ids)
            .order_by("pk")
        }
        created_at = timezone.now()
        rows, changed = [], []
        for ext in extensions:
            head = heads[ext.trace.pk]
            prev_hash, seq = head.head_hash, head.entry_count
            for action, data in ext.entries:
                seq += 1
                data = _normalised(data)
                digest = entry_hash(
                    prev_hash=prev_hash,
                    chain_id=str(head.pk),
                    seq=seq,
                    actor=ext.actor,
                    action=action,
                    data=data,
                    created_at=created_at,
                )
                rows.append(
                    ProvenanceEntry(
                        trace_id=head.pk,
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
            head.head_hash, head.entry_count = prev_hash, seq
            for name, value in (ext.trace_values or {}).items():
                setattr(head, name, value)
            changed.append((ext, head))
        ProvenanceEntry.objects.bulk_create(rows)
        if len(changed) == 1:
            ((ext, head),) = changed
            Trace.objects.filter(pk=head.pk).update(
                head_hash=head.head_hash, entry_count=head.entry_count, **(ext.trace_values or {})
            )
        else:
            # one UPDATE per set of written fields (every completion writes the same ones)
            groups: dict[tuple[str, ...], dict[Any, dict[str, Any]]] = {}
            for ext, head in changed:
                fields = ("head_hash", "entry_count", *sorted(ext.trace_values or {}))
                groups.setdefault(fields, {})[head.pk] = {
                    "pk": head.pk,
                    **{f: getattr(head, f) for f in fields},
                }
            for fields, group in groups.items():
                update_rows(Trace, list(group.values()), fields)
    for ext, head in changed:
        ext.trace.head_hash, ext.trace.entry_count = head.head_hash, head.entry_count
    return rows


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
