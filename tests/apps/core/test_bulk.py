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
