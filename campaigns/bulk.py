"""Set-based writes of per-row values, for the hot paths (send results, status application,
webhook intake and outcomes).

Django's bulk_update builds a CASE expression per field and row; at a few hundred rows per batch
it cost more CPU than the work itself (profiled: 7 ms per message on the send path, 3 ms per
event in the webhook applier). One `UPDATE … FROM …` per chunk does the same in one statement.

On PostgreSQL the rows travel as one array per column (`unnest(%s::bigint[], …)`): the statement
text is the same whatever the number of rows, so psycopg does not re-parse thousands of
placeholders each time (that parsing alone was a third of the applier's CPU). SQLite gets
`VALUES (…), (…)`.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache

import psycopg
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Model


def _conn():
    # The connection wrapper itself, looked up once per call: every attribute read through
    # django.db.connection goes through a thread-local lookup, and the hot paths read dozens.
    return connections[DEFAULT_DB_ALIAS]


def _value(obj, f):
    """A field's value from a model instance, or from a dict keyed by attname ("pk" for the
    primary key): the hot paths need not build model instances just to write a few columns."""
    if isinstance(obj, dict):
        return obj["pk"] if f.primary_key else obj[f.attname]
    return getattr(obj, f.attname)


# Fields whose plain values (str, int, bool, None) PostgreSQL takes as they are: Django's
# get_db_prep_save only hands them through (to_python and back), at a few microseconds per value
# and thousands of values per batch. Anything else (an enum, a lazy string, a Decimal, a naive
# datetime) still goes through get_db_prep_save.
_AS_IS = frozenset(
    {
        "AutoField",
        "BigAutoField",
        "BigIntegerField",
        "BooleanField",
        "CharField",
        "ForeignKey",
        "IntegerField",
        "PositiveIntegerField",
        "PositiveSmallIntegerField",
        "SmallIntegerField",
        "TextField",
    }
)
_PLAIN = (str, int, bool, type(None))


def _pg_column(f, objs, conn) -> list:
    """One column's values for a PostgreSQL array parameter."""
    values = [_value(obj, f) for obj in objs]
    kind = f.get_internal_type()
    if kind in _AS_IS:
        prep = f.get_db_prep_save
        return [v if type(v) in _PLAIN else prep(v, conn) for v in values]
    if kind == "DateTimeField":  # an aware datetime is what PostgreSQL's adapter returns as is
        prep = f.get_db_prep_save
        return [
            v if v is None or (type(v) is datetime and v.tzinfo is not None) else prep(v, conn)
            for v in values
        ]
    return [f.get_db_prep_save(v, conn) for v in values]


def _pg_rows(conn, fields, objs, *, pk=None) -> tuple[str, list[str], list]:
    """`unnest(%b::type[], ...)`, its column names, and one list per column. Binary arrays: the
    text format escapes every quote of every stored request body, one regex match at a time."""
    cols = ([pk] if pk is not None else []) + list(fields)
    arrays = [_pg_column(f, objs, conn) for f in cols]
    return _unnest_sql(conn.vendor, tuple(cols)), [f.column for f in cols], arrays


@lru_cache(maxsize=256)
def _unnest_sql(vendor: str, cols: tuple) -> str:
    conn = connections[DEFAULT_DB_ALIAS]
    return "unnest(" + ", ".join(f"%b::{f.db_type(conn)}[]" for f in cols) + ")"


@lru_cache(maxsize=256)
def _insert_sql(
    vendor: str, table: str, fields: tuple, rows: int, ignore: bool, returning: tuple
) -> str:
    """The INSERT text for `rows` rows (0: PostgreSQL arrays), built once per shape."""
    qn = connections[DEFAULT_DB_ALIAS].ops.quote_name
    names = ", ".join(qn(f.column) for f in fields)
    if rows == 0:
        sql = f"INSERT INTO {qn(table)} ({names}) SELECT * FROM {_unnest_sql(vendor, fields)}"
    else:
        row = "(" + ", ".join(["%s"] * len(fields)) + ")"
        sql = f"INSERT INTO {qn(table)} ({names}) VALUES {', '.join([row] * rows)}"
    if ignore:
        sql += " ON CONFLICT DO NOTHING"
    if returning:
        sql += " RETURNING " + ", ".join(qn(c) for c in returning)
    return sql


def rows_insert(
    model: type[Model],
    objs: list[Model],
    fields: list,
    *,
    ignore_conflicts: bool = False,
    returning: tuple[str, ...] = (),
) -> list[tuple]:
    """INSERT the objects' values of `fields` (model fields) in one statement; with
    `ignore_conflicts`, rows that hit a unique constraint are skipped (ON CONFLICT DO NOTHING, no
    target: whichever unique index it is). Returns the `returning` columns of the rows inserted."""
    if len(objs) > 1000:  # SQLite binds at most 32,766 parameters a statement
        out: list[tuple] = []
        for i in range(0, len(objs), 1000):
            out += rows_insert(
                model,
                objs[i : i + 1000],
                fields,
                ignore_conflicts=ignore_conflicts,
                returning=returning,
            )
        return out
    if not objs:
        return []
    conn = _conn()
    fields = tuple(fields)
    if conn.vendor == "postgresql" and len(objs) > 1:
        params = [_pg_column(f, objs, conn) for f in fields]
        rows = 0
    else:
        params = [f.get_db_prep_save(_value(obj, f), conn) for obj in objs for f in fields]
        rows = len(objs)
    sql = _insert_sql(
        conn.vendor, model._meta.db_table, fields, rows, ignore_conflicts, tuple(returning)
    )
    return bulk_execute(conn, sql, params, fetch=bool(returning))[0]


def bulk_execute(conn, sql: str, params: list, *, fetch: bool = False):
    """Run one hot-path statement. On PostgreSQL: with the parameters bound by the server and
    the statement prepared once per connection (psycopg's `prepare=True`), so neither side
    re-parses the same INSERT or UPDATE a thousand times a second; Django's cursor would quote
    every value into the SQL text client-side. Errors come out as Django's, as usual."""
    if conn.vendor != "postgresql":
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return (cur.fetchall() if fetch else []), cur.rowcount
    conn.ensure_connection()
    with conn.wrap_database_errors, psycopg.Cursor(conn.connection) as cur:
        cur.execute(sql, params, prepare=True)
        return (cur.fetchall() if fetch else []), cur.rowcount


def rows_bulk_set(
    model: type[Model],
    objs: list[Model] | list[dict],
    fields: list[str],
    *,
    guard: str = "",
    guard_params: list | tuple = (),
    chunk: int = 1000,
) -> int:
    """Write each object's values of `fields` to its row; returns the rows updated. `objs` are
    model instances, or dicts keyed by "pk" and the fields' attnames.

    `guard` is extra SQL appended to the WHERE clause (starting with " AND "), referring to the
    table by its quoted name, with `guard_params` for its placeholders."""
    if not objs:
        return 0
    conn = _conn()
    qn = conn.ops.quote_name
    table = qn(model._meta.db_table)
    model_fields = [model._meta.get_field(f) for f in fields]
    pk = model._meta.pk
    sets = ", ".join(f"{qn(f.column)} = v.{qn(f.column)}" for f in model_fields)
    updated = 0
    for i in range(0, len(objs), chunk):
        part = objs[i : i + chunk]
        if conn.vendor == "postgresql":
            source, cols, params = _pg_rows(conn, model_fields, part, pk=pk)
            sql = (
                f"UPDATE {table} SET {sets} FROM {source} AS v({', '.join(qn(c) for c in cols)}) "
                f"WHERE {table}.{qn(pk.column)} = v.{qn(pk.column)}{guard}"
            )
        else:
            # SQLite names VALUES columns column1..N; and a statement starting with WITH would
            # not report its rowcount through the sqlite3 module, so no CTE here.
            row = "(" + ", ".join(["%s"] * (len(model_fields) + 1)) + ")"
            params = []
            for obj in part:
                params.append(_value(obj, pk))
                params.extend(f.get_db_prep_save(_value(obj, f), conn) for f in model_fields)
            sqlite_sets = ", ".join(
                f"{qn(f.column)} = v.column{n + 2}" for n, f in enumerate(model_fields)
            )
            sql = (
                f"UPDATE {table} SET {sqlite_sets} FROM (VALUES {', '.join([row] * len(part))}) "
                f"AS v WHERE {table}.{qn(pk.column)} = v.column1{guard}"
            )
        updated += bulk_execute(conn, sql, [*params, *guard_params])[1]
    return updated
