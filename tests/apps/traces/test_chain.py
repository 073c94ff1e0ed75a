from __future__ import annotations

import json

import pytest
from django.db import connection

from apps.traces.models import ProvenanceEntry
from apps.traces.services import provenance_append, trace_create, trace_verify

pytestmark = pytest.mark.django_db

TAMPERABLE_FIELDS = {
    "actor": "'intruder'",
    "action": "'run.forged'",
    "data": "'{\"forged\": true}'",
    "created_at": "created_at + interval '1 second'",
    "prev_hash": "repeat('a', 64)",
    "hash": "repeat('b', 64)",
    "seq": "seq + 100",
}


@pytest.fixture
def trace(session):
    trace = trace_create(user=session.owner, session_id=session.pk, inputs={"x": [1, 2.5, "é"]})
    for index in range(4):
        provenance_append(trace=trace, actor="alice", action="step", data={"i": index, "v": 0.1 * index})
    return trace


def _tamper(entry_id: int, column: str, expression: str) -> None:
    # Raw SQL: the model refuses updates, as an attacker with database access would not.
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE traces_provenanceentry SET {column} = {expression} WHERE id = %s", [entry_id])


def test_appending_keeps_the_chain_valid(trace):
    # given a trace with a creation entry and four appended steps
    # when it is verified
    verification = trace_verify(trace=trace)
    # then
    assert verification.valid and verification.broken_at is None
    assert verification.entries == 5
    entries = list(ProvenanceEntry.objects.filter(trace=trace).order_by("seq"))
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert all(later.prev_hash == earlier.hash for earlier, later in zip(entries, entries[1:], strict=False))


@pytest.mark.parametrize("field", sorted(TAMPERABLE_FIELDS))
@pytest.mark.parametrize("seq", [1, 3, 5])
def test_changing_any_field_of_any_entry_is_detected(trace, field, seq):
    entry = ProvenanceEntry.objects.get(trace=trace, seq=seq)
    _tamper(entry.pk, field, TAMPERABLE_FIELDS[field])

    verification = trace_verify(trace=trace)

    assert not verification.valid
    assert verification.broken_at == seq


def test_moving_an_entry_to_another_trace_is_detected(trace, session):
    other = trace_create(user=session.owner, session_id=session.pk)
    entry = ProvenanceEntry.objects.get(trace=trace, seq=2)
    _tamper(entry.pk, "trace_id", f"'{other.pk}'")

    assert trace_verify(trace=trace).broken_at == 2


def test_removing_the_last_entries_is_detected(trace):
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM traces_provenanceentry WHERE trace_id = %s AND seq >= 4", [trace.pk])
    verification = trace_verify(trace=trace)
    assert not verification.valid
    assert verification.broken_at == 4


def test_entries_are_append_only(trace):
    entry = ProvenanceEntry.objects.filter(trace=trace).first()
    entry.actor = "someone else"
    with pytest.raises(TypeError):
        entry.save()
    with pytest.raises(TypeError):
        entry.delete()
    with pytest.raises(TypeError):
        ProvenanceEntry.objects.filter(trace=trace).update(actor="x")
    with pytest.raises(TypeError):
        ProvenanceEntry.objects.filter(trace=trace).delete()
    assert trace_verify(trace=trace).valid


def test_stored_data_is_what_was_hashed(trace):
    # JSON round trips through the database (jsonb reorders keys) must not break the chain.
    entry = provenance_append(trace=trace, actor="bob", action="note", data={"b": 1.0, "a": [3, {"z": None}]})
    assert json.loads(json.dumps(ProvenanceEntry.objects.get(pk=entry.pk).data)) == {
        "a": [3, {"z": None}],
        "b": 1.0,
    }
    assert trace_verify(trace=trace).valid


@pytest.mark.parametrize("value", [1e20, 1.0, -0.0, 1.5e-300, 123456789.125, 2**70, 1.7976931348623157e308])
def test_numbers_that_the_database_rewrites_keep_the_chain_valid(trace, value):
    provenance_append(trace=trace, actor="alice", action="measure", data={"x": value, "xs": [value]})
    assert trace_verify(trace=trace).valid


@pytest.mark.parametrize(
    "column,expression,seq",
    [
        ("inputs", '\'{"x": "forged"}\'', 1),
        ("outputs", "'{\"forged\": 1}'", 1),
        ("metadata", "'{\"forged\": 1}'", 1),
    ],
)
def test_changing_the_traces_own_fields_is_detected(trace, column, expression, seq):
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE traces_trace SET {column} = {expression} WHERE id = %s", [trace.pk])
    verification = trace_verify(trace=trace)
    assert not verification.valid and verification.broken_at == seq
    assert column in verification.reason


def test_moving_a_trace_to_another_session_is_detected(trace, make_user):
    from apps.sessions.services import session_create

    elsewhere = session_create(owner=make_user("eve"), name="elsewhere")
    with connection.cursor() as cursor:
        cursor.execute("UPDATE traces_trace SET session_id = %s WHERE id = %s", [elsewhere.pk, trace.pk])
    assert trace_verify(trace=trace).broken_at == 1


def test_outputs_recorded_later_are_the_ones_checked(trace):
    from apps.traces.services import trace_outputs_record

    trace_outputs_record(trace=trace, actor="worker", outputs={"answer": 42})
    assert trace_verify(trace=trace).valid
    with connection.cursor() as cursor:
        cursor.execute("UPDATE traces_trace SET outputs = '{\"answer\": 41}' WHERE id = %s", [trace.pk])
    assert trace_verify(trace=trace).broken_at == 6
