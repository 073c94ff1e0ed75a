"""Writes of many rows in one statement, where Django's own would cost more than the work.

`bulk_update` builds a CASE expression per field and per row and resolves each through the
ORM: for 25 rows of 8 fields that is most of a worker's CPU per batch of short runs. On
PostgreSQL the same write is one `UPDATE ... FROM (VALUES ...)`; elsewhere (SQLite, the
embedded default) Django's bulk_update does it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connections
from django.db.models import Model


def update_rows(
    model: type[Model], rows: Sequence[dict[str, Any]], fields: Sequence[str], *, using: str = "default"
) -> None:
    """Write `fields` of each row (a dict with "pk" and those fields) in one statement."""
    if not rows:
        return
    connection = connections[using]
    if connection.vendor != "postgresql":
        model.objects.using(using).bulk_update([model(**row) for row in rows], list(fields))
        return
    opts = model._meta
    quote = connection.ops.quote_name
    columns = [opts.pk, *(opts.get_field(name) for name in fields)]
    names = ["pk", *fields]
    casts = [f"CAST(%s AS {column.db_type(connection)})" for column in columns]
    values_sql = ", ".join(f"({', '.join(casts)})" for _ in rows)
    params = [
        column.get_db_prep_save(row[name], connection)
        for row in rows
        for column, name in zip(columns, names, strict=True)
    ]
    aliases = [quote(f"v{index}") for index in range(len(columns))]
    assignments = ", ".join(
        f"{quote(column.column)} = v.{alias}" for column, alias in zip(columns[1:], aliases[1:], strict=True)
    )
    table = quote(opts.db_table)
    sql = (
        f"UPDATE {table} SET {assignments} FROM (VALUES {values_sql}) AS v({', '.join(aliases)}) "
        f"WHERE {table}.{quote(opts.pk.column)} = v.{aliases[0]}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
