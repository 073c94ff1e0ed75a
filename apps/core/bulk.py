"""Writes of many rows in one statement, where Django's own would cost more than the work.

`bulk_update` builds a CASE expression per field and per row and resolves each through the
ORM: for 25 rows of 8 fields that is most of a worker's CPU per batch of short runs. On
PostgreSQL the same write is one `UPDATE ... FROM (VALUES ...)`. `bulk_create` prepares every
value through its field and psycopg dumps each into an array: for a batch of 100 runs, their
traces and first provenance entries, over half of the submission's CPU. On PostgreSQL the rows
go instead as one JSON document that the server unpacks (`jsonb_to_recordset`). Elsewhere
(SQLite, the embedded default) Django's own bulk methods do both.
"""

from __future__ import annotations

import datetime
import json
import uuid
from collections.abc import Sequence
from typing import Any

from django.db import connections
from django.db.models import AutoField, BigAutoField, JSONField, Model

_AUTO = (AutoField, BigAutoField)


def _json_value(value: Any, *, is_json: bool) -> Any:
    if is_json or value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    return str(value)


def insert_rows(model: type[Model], objs: Sequence[Model], *, using: str = "default") -> None:
    """`model.objects.bulk_create(objs)` for objects whose primary keys are set already (or
    database-generated and not needed back: they are not read back)."""
    if not objs:
        return
    connection = connections[using]
    if connection.vendor != "postgresql":
        model.objects.using(using).bulk_create(objs)
        return
    opts = model._meta
    fields = [
        field
        for field in opts.concrete_fields
        if not (isinstance(field, _AUTO) and field.primary_key and getattr(objs[0], field.attname) is None)
    ]
    is_json = [isinstance(field, JSONField) for field in fields]
    rows = [
        {
            field.column: _json_value(field.pre_save(obj, True), is_json=json_field)
            for field, json_field in zip(fields, is_json, strict=True)
        }
        for obj in objs
    ]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in fields)
    record = ", ".join(f"{quote(field.column)} {field.db_type(connection)}" for field in fields)
    sql = (
        f"INSERT INTO {quote(opts.db_table)} ({columns}) "
        f"SELECT {columns} FROM jsonb_to_recordset(%s::jsonb) AS r({record})"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [json.dumps(rows, allow_nan=False, separators=(",", ":"))])
    for obj in objs:
        obj._state.adding = False
        obj._state.db = using


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
