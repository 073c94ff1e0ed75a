"""Writes of many rows in one statement, where Django's own would cost more than the work.

`bulk_update` builds a CASE expression per field and per row and resolves each through the
ORM: for 25 rows of 8 fields that is most of a worker's CPU per batch of short runs. On
PostgreSQL the same write is one `UPDATE ... FROM (VALUES ...)`. `bulk_create` prepares every
value through its field and psycopg dumps each into an array: for a batch of 100 runs, their
traces and first provenance entries, over half of the submission's CPU. On PostgreSQL the rows
go instead as one JSON document that the server unpacks (`jsonb_to_recordset`); a single row as
a plain `VALUES` row, which the server plans and runs in about two thirds of the time. Elsewhere
(SQLite, the embedded default) Django's own bulk methods do both.

`execute_together` sends several statements of one transaction in one round trip where the
backend allows it (PostgreSQL with client-side binding, Django's default): a worker's claim and
completion are a handful of small statements each, and on a busy host every round trip is a
wait for the server's process to be scheduled, more than the statement itself.
"""

from __future__ import annotations

import datetime
import functools
import json
import math
import operator
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from django.db import connections
from django.db.models import AutoField, BigAutoField, Field, JSONField, Model, QuerySet, UUIDField, signals
from django.db.models.base import ModelState
from django.db.models.sql import UpdateQuery

_AUTO = (AutoField, BigAutoField)
M = TypeVar("M", bound=Model)
try:
    from psycopg.pq import ExecStatus

    _TUPLES_OK = ExecStatus.TUPLES_OK
except ImportError:  # psycopg is PostgreSQL's; SQLite's cursors have no pgresult
    _TUPLES_OK = None


def _json_value(value: Any, *, is_json: bool) -> Any:
    if is_json or value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    return str(value)


Statement = tuple[str, Sequence[Any]]


@dataclass(frozen=True)
class StatementResult:
    rowcount: int
    rows: list[tuple[Any, ...]] | None  # None for a statement that returns no rows


def can_execute_together(using: str = "default") -> bool:
    connection = connections[using]
    return connection.vendor == "postgresql" and not connection.settings_dict.get("OPTIONS", {}).get(
        "server_side_binding"
    )


def execute_together(statements: Sequence[Statement], *, using: str = "default") -> list[StatementResult]:
    """Execute statements in order, in one round trip where the backend allows it (else one by
    one); each one's row count and rows. Inside a transaction they are part of it; an error in
    one raises and leaves the rest unexecuted, as one by one would."""
    connection = connections[using]
    results = []
    with connection.cursor() as cursor:
        if not can_execute_together(using) or len(statements) == 1:
            for sql, params in statements:
                cursor.execute(sql, params)
                results.append(_result(cursor))
            return results
        cursor.execute(
            "; ".join(sql for sql, _ in statements), [p for _, params in statements for p in params]
        )
        raw = cursor.cursor  # psycopg's: Django's wrapper has no nextset()
        for index in range(len(statements)):
            if index:
                raw.nextset()
            results.append(_result(raw))
    return results


def _result(cursor: Any) -> StatementResult:
    # psycopg's pgresult where there is one: `description` builds a Column per column (a run's
    # row has dozens), on every statement, only to say whether rows came back
    result = getattr(cursor, "pgresult", None)
    if result is not None:
        returned_rows = result.nfields > 0 or result.status == _TUPLES_OK
    else:
        returned_rows = cursor.description is not None
    return StatementResult(cursor.rowcount, cursor.fetchall() if returned_rows else None)


class TransactionTogether:
    """A PostgreSQL transaction, outside any atomic block, whose BEGIN travels with its first
    statements and whose COMMIT with its last ones: a claim is two round trips instead of four
    (BEGIN and COMMIT are a round trip each otherwise). Made by transaction_together()."""

    def __init__(self, using: str) -> None:
        self._using = using
        self.open = False

    def execute(self, statements: Sequence[Statement]) -> list[StatementResult]:
        begin = [] if self.open else [("BEGIN", ())]
        self.open = True
        return execute_together([*begin, *statements], using=self._using)[len(begin) :]

    def commit(self, statements: Sequence[Statement] = ()) -> list[StatementResult]:
        begin = [] if self.open else [("BEGIN", ())]
        self.open = True  # until the COMMIT is known to have run: a failed batch is rolled back
        results = execute_together([*begin, *statements, ("COMMIT", ())], using=self._using)
        self.open = False
        return results[len(begin) : -1]

    def rollback(self) -> None:
        if self.open:
            self.open = False
            with connections[self._using].cursor() as cursor:
                cursor.execute("ROLLBACK")


@contextmanager
def transaction_together(using: str = "default") -> Iterator[TransactionTogether]:
    """A TransactionTogether (only where can_run_transaction_together(): Django must not hold
    a transaction of its own). Rolled back if the block raises or leaves without committing.
    Django's on_commit hooks do not wait for it: publish after."""
    connection = connections[using]
    if not can_run_transaction_together(using):
        raise RuntimeError("transaction_together needs PostgreSQL in autocommit, outside an atomic block")
    transaction = TransactionTogether(using)
    try:
        yield transaction
    finally:
        try:
            transaction.rollback()
        except BaseException:
            connection.close()  # a connection in an unknown state is not reused
            raise


def can_run_transaction_together(using: str = "default") -> bool:
    """PostgreSQL with Django holding no transaction (autocommit, no atomic block)."""
    connection = connections[using]
    return can_execute_together(using) and not connection.in_atomic_block and connection.get_autocommit()


class ReadTogether:
    """A queryset's read, run with other statements (execute_together): its statement, then
    the model instances (with their select_related objects) from the rows it returned, as the
    queryset itself would have built them."""

    def __init__(self, queryset: QuerySet[Any]) -> None:
        self._queryset = queryset.all()
        self._compiler = self._queryset.query.get_compiler(using=self._queryset.db)
        self.statement: Statement = self._compiler.as_sql()

    def instances(self, rows: list[tuple[Any, ...]] | None) -> list[Any]:
        compiler = self._compiler
        compiler.execute_sql = lambda *args, **kwargs: [rows or []]  # read already, together
        self._queryset.query.get_compiler = lambda *args, **kwargs: compiler
        return list(self._queryset)


class PreparedRead:
    """A read compiled once (per thread) and run many times with other parameters, with other
    statements (execute_together): ReadTogether compiles the ORM's query each time, about a
    millisecond for a run with its select_related objects, on every claim. `build(*sample)`
    gives the queryset; its compiled parameters must be exactly `sample`, so that a call's own
    values take their places (`statement(*values)`, values prepared as the sample is)."""

    def __init__(self, build: Callable[..., QuerySet[Any]], *sample: Any) -> None:
        self._build = build
        self._sample = sample
        self._local = threading.local()

    def _compiled(self) -> _CompiledRead:
        compiled = getattr(self._local, "compiled", None)
        if compiled is None:
            compiled = self._local.compiled = _CompiledRead.of(self._build(*self._sample), self._sample)
        return compiled

    def statement(self, *values: Any) -> Statement:
        if len(values) != len(self._sample):
            raise TypeError(f"this read takes {len(self._sample)} parameters, not {len(values)}")
        return self._compiled().sql, values

    def instances(self, rows: list[tuple[Any, ...]] | None) -> list[Any]:
        """The model instances (with their select_related objects) of the rows its statement read."""
        return self._compiled().instances(rows or [])

    def read(self, *values: Any) -> list[Any]:
        """Run it alone: its model instances. Where statements are not sent together (SQLite,
        server-side binding), the ORM's own query, whose parameters are prepared its way."""
        if not can_execute_together():
            return list(self._build(*values))
        (result,) = execute_together([self.statement(*values)])
        return self.instances(result.rows)


@dataclass(frozen=True)
class _CompiledRead:
    sql: str
    db: str
    compiler: Any
    converters: dict[int, Any]
    model: type[Model]
    fields: slice
    init_list: list[str]
    populators: list[Any]

    @classmethod
    def of(cls, queryset: QuerySet[Any], sample: tuple[Any, ...]) -> _CompiledRead:
        from django.db.models.query import ModelIterable, get_related_populators

        if queryset._iterable_class is not ModelIterable or queryset._known_related_objects:
            raise ValueError("PreparedRead reads model instances with their select_related objects only")
        compiler = queryset.query.get_compiler(using=queryset.db)
        sql, params = compiler.as_sql()
        if tuple(params) != tuple(sample) or compiler.annotation_col_map:
            raise ValueError("PreparedRead's query must take exactly its sample values as parameters")
        select, klass_info = compiler.select, compiler.klass_info
        start, end = klass_info["select_fields"][0], klass_info["select_fields"][-1] + 1
        return cls(
            sql=sql,
            db=queryset.db,
            compiler=compiler,
            converters=compiler.get_converters([s[0] for s in select[: compiler.col_count]]),
            model=klass_info["model"],
            fields=slice(start, end),
            init_list=[f[0].target.attname for f in select[start:end]],
            populators=get_related_populators(klass_info, select, queryset.db),
        )

    def instances(self, rows: list[tuple[Any, ...]]) -> list[Any]:
        # what ModelIterable does with the rows of this compiled query
        if self.converters:
            rows = list(self.compiler.apply_converters(rows, self.converters))
        out = []
        for row in rows:
            obj = self.model.from_db(self.db, self.init_list, row[self.fields])
            for populator in self.populators:
                populator.populate(row, obj)
            out.append(obj)
        return out


def update_sql(queryset: QuerySet[Any], **values: Any) -> Statement:
    """The SQL and parameters of `queryset.update(**values)`, to run later or together with others."""
    query = queryset.query.chain(UpdateQuery)
    query.add_update_values(values)
    compiler = query.get_compiler(queryset.db)
    compiler.pre_sql_setup()
    return compiler.as_sql()


def update_by_pk_sql(
    model: type[Model],
    pk: Any,
    values: dict[str, Any],
    *,
    where: dict[str, Any] | None = None,
    sql_values: dict[str, str] | None = None,
    using: str = "default",
) -> Statement:
    """The UPDATE of plain values on one row by primary key, only while the fields in `where`
    hold those values (a fence), built from the fields themselves: the ORM's query compiler
    takes a fraction of a millisecond a statement. `sql_values`: fields set by SQL of the
    caller's, no parameters, `{column}` standing for the field's own column
    ({"attempts": "{column} + 1"})."""
    connection = connections[using]
    opts = model._meta
    quote = connection.ops.quote_name

    def prepared(items: dict[str, Any], *, save: bool) -> tuple[list[str], list[Any]]:
        columns, params = [], []
        for name, value in items.items():
            field = opts.get_field(name)
            columns.append(quote(field.column))
            prep = field.get_db_prep_save if save else field.get_db_prep_value
            params.append(prep(value, connection))
        return columns, params

    set_columns, set_params = prepared(values, save=True)
    where_columns, where_params = prepared({opts.pk.name: pk, **(where or {})}, save=False)
    assignments = ", ".join(
        [
            *(f"{column} = %s" for column in set_columns),
            *(
                f"{quote(opts.get_field(name).column)} = "
                + sql.format(column=quote(opts.get_field(name).column))
                for name, sql in (sql_values or {}).items()
            ),
        ]
    )
    conditions = " AND ".join(f"{column} = %s" for column in where_columns)
    return f"UPDATE {quote(opts.db_table)} SET {assignments} WHERE {conditions}", [*set_params, *where_params]


def new_instance(model: type[M], **values: Any) -> M:
    """`model(**values)` for a row about to be inserted, without Model.__init__'s work per field
    (some 30 us for a run: a batch builds three instances a run). `values` by field name (a
    relation's object, cached as the descriptor would) or attname; the rest take their
    defaults (no field here has a db_default, which this would not give). Models with pre_init or
    post_init receivers get Model.__init__ itself."""
    shape = _new_shape(model)
    if any(signal.receivers and signal.has_listeners(model) for signal in _INIT_SIGNALS):
        return model(**values)
    obj = model.__new__(model)
    obj._state = ModelState()
    attributes = obj.__dict__
    for attname, default, call in shape.defaults:
        if attname not in values:
            attributes[attname] = default() if call else default
    for name, value in values.items():
        if name == "pk":
            name = model._meta.pk.attname
        relation = shape.relations.get(name)
        if relation is None:
            if name not in shape.attnames:
                raise TypeError(f"{model.__name__}() got an unexpected keyword argument {name!r}")
            attributes[name] = value
            continue
        if value is not None and not isinstance(value, relation.related_model):
            raise ValueError(f"{model.__name__}.{name} must be a {relation.related_model.__name__} instance")
        attributes[relation.attname] = (
            None if value is None else getattr(value, relation.target_field.attname)
        )
        relation.set_cached_value(obj, value)
        if value is not None and not relation.remote_field.multiple:
            relation.remote_field.set_cached_value(value, obj)  # one-to-one: the other side too
    return obj


_INIT_SIGNALS = (signals.pre_init, signals.post_init)


@dataclass(frozen=True)
class _NewShape:
    defaults: list[tuple[str, Any, bool]]  # attname, default, whether to call it
    relations: dict[str, Any]  # name -> the ForeignKey/OneToOneField
    attnames: frozenset[str]


@functools.cache
def _new_shape(model: type[Model]) -> _NewShape:
    fields = model._meta.concrete_fields
    defaults = []
    for field in fields:
        if field.has_default():
            default = field.default
            defaults.append((field.attname, default, callable(default)))
        else:
            defaults.append((field.attname, field.get_default(), False))
    relations = {field.name: field for field in fields if field.is_relation}
    return _NewShape(defaults, relations, frozenset(field.attname for field in fields))


def insert_rows(model: type[Model], objs: Sequence[Model], *, using: str = "default") -> None:
    """`model.objects.bulk_create(objs)` for objects whose primary keys are set already (or
    database-generated and not needed back: they are not read back)."""
    if not objs:
        return
    connection = connections[using]
    if connection.vendor != "postgresql":
        model.objects.using(using).bulk_create(objs)
        return
    with connection.cursor() as cursor:
        cursor.execute(*insert_rows_sql(model, objs, using=using))
    mark_saved(objs, using=using)


def mark_saved(objs: Sequence[Model], *, using: str = "default") -> None:
    for obj in objs:
        obj._state.adding = False
        obj._state.db = using


def insert_rows_sql(
    model: type[Model], objs: Sequence[Model], *, using: str = "default", returning_pk: bool = False
) -> Statement:
    """insert_rows' statement (PostgreSQL), to run later or together with others; with
    `returning_pk`, its rows are the new primary keys in the order of `objs`."""
    pk = model._meta.pk
    database_pk = isinstance(pk, _AUTO) and getattr(objs[0], pk.attname) is None
    shape = _insert_shape(model, database_pk, returning_pk, using)
    read, converters, hooks = shape.read, shape.converters, shape.hooks
    rows = []
    for obj in objs:
        values = list(read(obj))
        for index, field in hooks:
            values[index] = field.pre_save(obj, True)
        rows.append([convert(v) if convert else v for v, convert in zip(values, converters, strict=True)])
    if len(rows) == 1:
        return shape.values_sql, _values_params(rows[0], shape.json_columns)
    return shape.sql, [json.dumps(rows, allow_nan=False, separators=(",", ":"))]


def _values_params(row: list[Any], json_columns: frozenset[int]) -> list[Any]:
    # the same values, and the same refusal of NaN and infinities, as the JSON document's
    params = []
    for index, value in enumerate(row):
        if index in json_columns and value is not None:
            value = json.dumps(value, allow_nan=False, separators=(",", ":"))
        elif type(value) is float and not math.isfinite(value):
            raise ValueError(f"Out of range float values are not JSON compliant: {value!r}")
        params.append(value)
    return params


@dataclass(frozen=True)
class _InsertShape:
    sql: str  # the rows as one JSON document, each row an array
    values_sql: str  # one row as a VALUES row
    json_columns: frozenset[int]  # written as JSON text in values_sql
    read: Callable[[Model], tuple[Any, ...]]  # the fields' attributes, in column order
    converters: tuple[Callable[[Any], Any] | None, ...]  # to a JSON value (None: the value is one)
    hooks: tuple[tuple[int, Field[Any, Any]], ...]  # fields with a pre_save of their own


def _plain_json_value(value: Any) -> Any:
    return value if type(value) in _JSON_SCALARS else _json_value(value, is_json=False)


def _uuid_text(value: Any) -> Any:
    return str(value) if type(value) is uuid.UUID else _plain_json_value(value)


def _converter(field: Field[Any, Any]) -> Callable[[Any], Any] | None:
    if isinstance(field, JSONField):
        return None  # written as it is
    target = field.target_field if field.is_relation else field
    return _uuid_text if isinstance(target, UUIDField) else _plain_json_value


_JSON_SCALARS = frozenset({str, int, float, bool, type(None)})


@functools.cache
def _insert_shape(model: type[Model], database_pk: bool, returning_pk: bool, using: str) -> _InsertShape:
    # The statement depends only on the model's fields: built once, not per insert.
    connection = connections[using]
    opts = model._meta
    fields = [field for field in opts.concrete_fields if not (database_pk and field.primary_key)]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in fields)
    # Each row a JSON array, its values read by position: less of PostgreSQL's time than each
    # row as an object read by jsonb_to_recordset, and no keys to write (docs/benchmarks.md).
    # JSON null is SQL NULL in a JSON column, as Django stores None; text columns take their
    # values uncast: a cast to varchar(n) would cut a value too long.
    values = ", ".join(
        f"NULLIF(row -> {i}, 'null')"
        if isinstance(field, JSONField)
        else f"row ->> {i}"
        if _is_text(field, connection)
        else f"(row ->> {i})::{field.db_type(connection)}"
        for i, field in enumerate(fields)
    )
    sql = (
        f"INSERT INTO {quote(opts.db_table)} ({columns}) "
        f"SELECT {values} FROM jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS r(row, ordinality) "
        "ORDER BY ordinality"
    )
    casts = ["%s" if _is_text(field, connection) else f"%s::{field.db_type(connection)}" for field in fields]
    values_sql = f"INSERT INTO {quote(opts.db_table)} ({columns}) VALUES ({', '.join(casts)})"
    if returning_pk:
        sql += f" RETURNING {quote(opts.pk.column)}"
        values_sql += f" RETURNING {quote(opts.pk.column)}"
    attnames = [field.attname for field in fields]
    getter = operator.attrgetter(*attnames)
    return _InsertShape(
        sql,
        values_sql,
        frozenset(i for i, field in enumerate(fields) if isinstance(field, JSONField)),
        getter if len(fields) > 1 else lambda obj: (getter(obj),),
        tuple(_converter(field) for field in fields),
        # a field whose pre_save is Field's own only reads the attribute (auto_now fields and
        # the like compute theirs)
        tuple((i, field) for i, field in enumerate(fields) if type(field).pre_save is not Field.pre_save),
    )


def _is_text(field: Field[Any, Any], connection: Any) -> bool:
    return (field.db_type(connection) or "").startswith(("varchar", "text", "char"))


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
    with connection.cursor() as cursor:
        cursor.execute(*update_rows_sql(model, rows, fields, using=using))


def update_rows_sql(
    model: type[Model], rows: Sequence[dict[str, Any]], fields: Sequence[str], *, using: str = "default"
) -> Statement:
    """update_rows' statement (PostgreSQL), to run later or together with others."""
    connection = connections[using]
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
    return sql, params
