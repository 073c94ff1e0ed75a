"""The tables every run writes carry no index another one already serves: each index is one
more write on every insert and every status change."""

from __future__ import annotations

import re

import pytest
from django.db import connection

HOT_TABLES = ["runs_run", "runs_runevent", "traces_trace", "traces_provenanceentry"]


def _indexes(table: str) -> dict[str, tuple[list[str], bool]]:
    """name -> (columns in order, partial) for each index on `table`."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s", [table])
        rows = cursor.fetchall()
    found = {}
    for name, definition in rows:
        columns = re.search(r"USING \w+ \((.*?)\)(?: WHERE|$)", definition).group(1)
        found[name] = ([part.split()[0] for part in columns.split(", ")], " WHERE " in definition)
    return found


@pytest.mark.django_db
@pytest.mark.parametrize("table", HOT_TABLES)
def test_no_index_is_served_by_another(table):
    if connection.vendor != "postgresql":
        pytest.skip("reads PostgreSQL's catalogue")
    indexes = _indexes(table)
    assert indexes, f"{table} has no indexes: the table name is wrong"
    redundant = [
        (name, other)
        for name, (columns, partial) in indexes.items()
        for other, (other_columns, other_partial) in indexes.items()
        if other != name
        and not partial
        and not other_partial
        and other_columns[: len(columns)] == columns
        # two indexes on the same columns: one of them is redundant, report it once
        and (len(other_columns) > len(columns) or name > other)
    ]
    assert redundant == [], f"{table}: index served by another (redundant, serving): {redundant}"


@pytest.mark.django_db
def test_the_indexes_the_hot_queries_use_are_there():
    if connection.vendor != "postgresql":
        pytest.skip("reads PostgreSQL's catalogue")
    runs = {tuple(columns) for columns, _ in _indexes("runs_run").values()}
    # the owner's and the session's run lists, the queues' counts, the metric history by kind
    assert {("owner_id", "created_at"), ("session_id", "created_at"), ("status", "queue"), ("kind",)} <= runs
    provenance = {tuple(columns) for columns, _ in _indexes("traces_provenanceentry").values()}
    assert ("trace_id", "seq") in provenance
