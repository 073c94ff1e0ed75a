"""apps.core.bulk: one-statement inserts and updates store exactly what Django's own
bulk_create and bulk_update would (PostgreSQL: JSON recordset and UPDATE ... FROM VALUES)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from apps.core.bulk import insert_rows, update_rows
from apps.runs.models import Run, RunStatus

pytestmark = pytest.mark.django_db

AWKWARD = {
    "text": 'ünïcode \u2028 "quoted" \' \\ back',
    "nested": [1, 2.5, None, True, {"k": []}],
    "big": 2**62,
}


def runs(session, n: int) -> list[Run]:
    return [
        Run(
            id=uuid.uuid4(),
            owner=session.owner,
            session=session,
            kind="echo",
            payload=AWKWARD if i == 0 else {"i": i},
            queue="cpu",
            priority=i % 10,
            status=RunStatus.QUEUED,
            queued_at=datetime(2026, 12, 2, 10, 0, 0, 123456, tzinfo=UTC),
            task_id="" if i else "t-0",
        )
        for i in range(n)
    ]


def stored(pks) -> list[dict]:
    fields = (
        "id",
        "payload",
        "priority",
        "status",
        "queued_at",
        "task_id",
        "progress",
        "result",
        "created_at",
    )
    return list(Run.objects.filter(pk__in=pks).order_by("priority").values(*fields))


def test_insert_rows_stores_what_bulk_create_would(session):
    ours, djangos = runs(session, 3), runs(session, 3)
    insert_rows(Run, ours)
    Run.objects.bulk_create(djangos)
    mine, theirs = stored([r.pk for r in ours]), stored([r.pk for r in djangos])
    assert [row["payload"] for row in mine] == [AWKWARD, {"i": 1}, {"i": 2}]
    for a, b in zip(mine, theirs, strict=True):
        assert {k: v for k, v in a.items() if k not in ("id", "created_at")} == {
            k: v for k, v in b.items() if k not in ("id", "created_at")
        }
        assert a["created_at"] is not None and a["result"] is None  # auto_now_add and null defaults
    assert all(not run._state.adding for run in ours)


@pytest.mark.parametrize("payload", [AWKWARD, {"percent": "100% of %s", "null": None}, {}])
def test_a_single_row_stores_what_bulk_create_would(session, payload):
    # one row goes as a VALUES row, not as a JSON document: the same values either way
    (ours,), (djangos,) = runs(session, 1), runs(session, 1)
    ours.payload = djangos.payload = payload
    ours.result = djangos.result = ["x", {"y": 1.5}]
    insert_rows(Run, [ours])
    Run.objects.bulk_create([djangos])
    (mine,), (theirs,) = stored([ours.pk]), stored([djangos.pk])
    assert mine["payload"] == payload and mine["result"] == ["x", {"y": 1.5}]
    assert {k: v for k, v in mine.items() if k not in ("id", "created_at")} == {
        k: v for k, v in theirs.items() if k not in ("id", "created_at")
    }
    assert mine["id"] == ours.pk and mine["created_at"] is not None


def test_a_single_row_refuses_what_the_json_document_refuses(session):
    from django.db import DataError, transaction

    (run,) = runs(session, 1)
    run.progress = float("nan")
    with pytest.raises(ValueError):
        insert_rows(Run, [run])
    (run,) = runs(session, 1)
    run.task_id = "t" * 65  # a value too long for its column is an error, not cut short
    with pytest.raises(DataError), transaction.atomic():
        insert_rows(Run, [run])
    assert not Run.objects.filter(pk=run.pk).exists()


def test_several_rows_store_null_as_null_and_refuse_what_one_row_refuses(session):
    from django.db import DataError, transaction

    several = runs(session, 3)
    several[1].result = {"kept": None}
    insert_rows(Run, several)
    # None in a JSON column is SQL NULL, as Django stores it, not the JSON value null
    assert Run.objects.filter(pk__in=[r.pk for r in several], result__isnull=True).count() == 2
    assert Run.objects.get(pk=several[1].pk).result == {"kept": None}
    several = runs(session, 3)
    several[2].task_id = "t" * 65  # too long for its column: an error, not cut short
    with pytest.raises(DataError), transaction.atomic():
        insert_rows(Run, several)
    several = runs(session, 3)
    several[1].progress = float("inf")
    with pytest.raises(ValueError):
        insert_rows(Run, several)
    assert not Run.objects.filter(pk__in=[r.pk for r in several]).exists()


def test_update_rows_writes_each_rows_own_values(session):
    rows = runs(session, 3)
    insert_rows(Run, rows)
    update_rows(
        Run,
        [
            {"pk": rows[0].pk, "status": RunStatus.SUCCEEDED, "result": AWKWARD, "progress": 1.0},
            {"pk": rows[2].pk, "status": RunStatus.FAILED, "result": None, "progress": 0.5},
        ],
        ["status", "result", "progress"],
    )
    after = {row["id"]: row for row in stored([r.pk for r in rows])}
    assert (after[rows[0].pk]["status"], after[rows[0].pk]["result"]) == ("succeeded", AWKWARD)
    assert (after[rows[2].pk]["status"], after[rows[2].pk]["progress"]) == ("failed", 0.5)
    assert after[rows[1].pk]["status"] == "queued" and after[rows[1].pk]["result"] is None  # untouched


def test_statements_executed_together_give_each_its_count_and_rows_in_one_round_trip(session):
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    from apps.core.bulk import can_execute_together, execute_together, update_sql

    first, second = runs(session, 2)
    insert_rows(Run, [first, second])
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        moved, missed, read = execute_together(
            [
                update_sql(Run.objects.filter(pk=first.pk), priority=7),
                update_sql(Run.objects.filter(pk=uuid.uuid4()), priority=8),
                Run.objects.filter(pk=first.pk).values_list("priority").query.sql_with_params(),
            ]
        )
    assert (moved.rowcount, moved.rows, missed.rowcount) == (1, None, 0)
    assert read.rows == [(7,)]  # the read sees the write before it, in the same transaction
    assert len(queries) == (1 if can_execute_together() else 3)


def test_an_error_in_statements_executed_together_writes_none_of_them(session):
    from django.db import DatabaseError, transaction

    from apps.core.bulk import execute_together, update_sql

    (run,) = runs(session, 1)
    insert_rows(Run, [run])
    with pytest.raises(DatabaseError), transaction.atomic():
        execute_together(
            [update_sql(Run.objects.filter(pk=run.pk), priority=9), ("SELECT * FROM no_such_table", [])]
        )
    assert Run.objects.get(pk=run.pk).priority == 0


def test_insert_rows_sql_returns_the_new_keys_in_the_order_of_the_objects(session):
    from apps.core.bulk import can_execute_together, execute_together, insert_rows_sql
    from apps.traces.models import ProvenanceEntry
    from apps.traces.services import trace_create

    if not can_execute_together():
        pytest.skip("insert_rows_sql is the PostgreSQL path")
    trace = trace_create(user=session.owner, session_id=session.pk)
    entries = [
        ProvenanceEntry(
            trace=trace,
            seq=seq,
            actor="a",
            action=f"x.{seq}",
            data={},
            created_at=datetime.now(UTC),
            prev_hash="0" * 64,
            hash=f"{seq:064d}",
        )
        for seq in (5, 3, 9, 2)
    ]
    (inserted,) = execute_together([insert_rows_sql(ProvenanceEntry, entries, returning_pk=True)])
    by_key = dict(ProvenanceEntry.objects.filter(trace=trace).values_list("pk", "seq"))
    assert [by_key[pk] for (pk,) in inserted.rows] == [5, 3, 9, 2]


def test_update_by_pk_sql_writes_what_update_would_and_only_behind_its_fence(session):
    from django.db import transaction

    from apps.core.bulk import execute_together, update_by_pk_sql

    ours, djangos = runs(session, 2)
    insert_rows(Run, [ours, djangos])
    values = {
        "result": AWKWARD,
        "progress": 0.5,
        "finished_at": datetime(2026, 12, 2, 11, 0, 0, 7, tzinfo=UTC),
    }
    with transaction.atomic():
        fenced, written = execute_together(
            [
                update_by_pk_sql(Run, ours.pk, {"progress": 0.9}, where={"status": RunStatus.RUNNING}),
                update_by_pk_sql(Run, ours.pk, values, where={"status": RunStatus.QUEUED}),
            ]
        )
    Run.objects.filter(pk=djangos.pk).update(**values)
    assert (fenced.rowcount, written.rowcount) == (0, 1)
    fields = ("result", "progress", "finished_at")
    assert (
        Run.objects.filter(pk=ours.pk).values(*fields).get()
        == Run.objects.filter(pk=djangos.pk).values(*fields).get()
    )


def test_read_together_builds_the_instances_and_related_objects_the_queryset_would(session):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from apps.core.bulk import ReadTogether, execute_together

    first, second = runs(session, 2)
    insert_rows(Run, [first, second])
    queryset = (
        Run.objects.select_related("session__owner").filter(pk__in=[first.pk, second.pk]).order_by("priority")
    )
    read = ReadTogether(queryset)
    (result,) = execute_together([read.statement])
    ours = read.instances(result.rows)
    with CaptureQueriesContext(connection) as queries:
        owners = [run.session.owner.username for run in ours]
    assert len(queries) == 0  # the related objects came with the rows
    assert [(run.pk, run.payload) for run in ours] == [(run.pk, run.payload) for run in queryset]
    assert owners == [session.owner.username] * 2


def test_prepared_read_compiles_once_and_reads_each_call_s_own_row(session):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from apps.core.bulk import PreparedRead, execute_together

    first, second = runs(session, 2)
    second.payload = AWKWARD
    insert_rows(Run, [first, second])
    read = PreparedRead(
        lambda pk: Run.objects.select_related("session__owner").filter(pk=pk), uuid.UUID(int=0)
    )
    got = []
    for run in (first, second, first):
        (result,) = execute_together([read.statement(run.pk)])
        got.extend(read.instances(result.rows))
    (missing,) = execute_together([read.statement(uuid.uuid4())])
    assert read.instances(missing.rows) == []
    with CaptureQueriesContext(connection) as queries:
        owners = [run.session.owner.username for run in got]
    assert len(queries) == 0  # the related objects came with the rows
    assert [(run.pk, run.payload) for run in got] == [
        (run.pk, run.payload) for run in (Run.objects.get(pk=pk) for pk in (first.pk, second.pk, first.pk))
    ]
    assert owners == [session.owner.username] * 3
    assert got[0].created_at == Run.objects.get(pk=first.pk).created_at  # the converters ran
    with pytest.raises(TypeError):
        read.statement(first.pk, second.pk)


def test_prepared_read_refuses_a_query_whose_parameters_are_not_its_sample(session):

    from apps.core.bulk import PreparedRead

    read = PreparedRead(lambda pk: Run.objects.filter(pk=pk, status=RunStatus.QUEUED), uuid.UUID(int=0))
    with pytest.raises(ValueError, match="sample"):
        read.statement(uuid.uuid4())


def test_update_by_pk_sql_sets_fields_by_sql_of_the_caller(session):
    from apps.core.bulk import execute_together, update_by_pk_sql

    (run,) = runs(session, 1)
    insert_rows(Run, [run])
    before = Run.objects.get(pk=run.pk).attempts
    (claimed,) = execute_together(
        [
            update_by_pk_sql(
                Run,
                run.pk,
                {"worker_hostname": "w1"},
                where={"status": RunStatus.QUEUED},
                sql_values={"attempts": "{column} + 1", "heartbeat_at": "STATEMENT_TIMESTAMP()"},
            )
        ]
    )
    stored = Run.objects.get(pk=run.pk)
    assert claimed.rowcount == 1
    assert (stored.attempts, stored.worker_hostname) == (before + 1, "w1")
    assert stored.heartbeat_at is not None


# --- new_instance -------------------------------------------------------------------------------


def _field_values(obj: object) -> dict[str, object]:
    return {field.attname: getattr(obj, field.attname) for field in type(obj)._meta.concrete_fields}


@pytest.mark.django_db
def test_new_instance_is_what_the_model_constructor_builds(session, django_assert_num_queries):
    from apps.core.bulk import new_instance
    from apps.traces.models import Trace

    values = dict(
        id=uuid.uuid4(),
        owner=session.owner,
        session=session,
        kind="echo",
        payload={"a": [1, 2]},
        queue="cpu",
        priority=3,
        status=RunStatus.QUEUED,
        queued_at=datetime(2026, 12, 3, tzinfo=UTC),
        batch=None,
    )
    built, constructed = new_instance(Run, **values), Run(**values)
    assert _field_values(built) == _field_values(constructed)
    assert built._state.adding and built._state.db is None
    # every default taken, a fresh one for a callable default
    assert (built.progress, built.attempts, built.hold_reason, built.error, built.created_at) == (
        0.0,
        0,
        "",
        None,
        None,
    )
    assert new_instance(Run, session=session).payload is not new_instance(Run, session=session).payload
    assert new_instance(Run, session=session).pk != new_instance(Run, session=session).pk
    # relations set by object are cached (no query), by attname taken as the id
    with django_assert_num_queries(0):
        assert built.session is session and built.owner is session.owner and built.batch is None
    assert new_instance(Run, session_id=session.pk).session_id == session.pk
    # a one-to-one caches its other side too, as the descriptor does
    trace = new_instance(Trace, session_id=session.pk, run=built)
    with django_assert_num_queries(0):
        assert built.trace is trace and trace.run is built
    with pytest.raises(TypeError, match="no_such_field"):
        new_instance(Run, no_such_field=1)
    with pytest.raises(ValueError, match="must be a Session instance"):
        new_instance(Run, session=session.owner)
    assert new_instance(Run, pk=values["id"]).id == values["id"]


@pytest.mark.django_db
def test_new_instance_runs_init_signal_receivers_through_the_constructor(session):
    from django.db.models.signals import post_init

    from apps.core.bulk import new_instance

    seen = []

    def receiver(sender, instance, **kwargs):
        seen.append(instance)

    post_init.connect(receiver, sender=Run)
    try:
        run = new_instance(Run, session=session, kind="echo")
    finally:
        post_init.disconnect(receiver, sender=Run)
    assert seen == [run]
