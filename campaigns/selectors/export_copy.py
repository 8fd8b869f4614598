"""The campaign results CSV written by PostgreSQL itself (COPY ... TO STDOUT), for the common
case: a campaign without a fallback chain on a channel that sends parameters, not a body Loa
renders (ZNS). Byte for byte the file campaigns.selectors.export writes in Python (a test
compares both), at several times its speed: the database formats every cell, Python only turns
each row's line ending into the csv module's "\\r\\n" and groups rows into chunks. No model
instance, no per-cell Python: measured 9,100 rows/s in Python against the figures in
docs/BENCHMARKS.md ("10M tenant").

What SQL cannot be sure to write as Python would (a phone outside the two served countries'
stored forms, an attribute that is a float or a structure, a parameter that is not a string or
an integer, an error code spelled unusually) comes out as MARK + a tag + the raw value; the rare
row holding one is re-read with the csv module and those cells are rendered by the same Python
functions as the Python path."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator

from django.db import connection, transaction
from django.utils import timezone, translation

from campaigns.models import Campaign, Message
from providers.errors import _GENERIC, ESMS_CODES, TWIRP_CODES, ZALO_ERRORS, explain
from providers.shared.phones import format_local
from providers.shared.text import csv_safe, csv_safe_sql

# Never in real data: a cell that starts with it is finished in Python (the module docstring).
MARK = "\x01\x02loa:"
CHUNK_ROWS = 500  # as the Python path: chunks of a few dozen KB


def copy_export_possible(*, campaign: Campaign, has_text: bool, chain) -> bool:
    """PostgreSQL, no fallback chain, no rendered body, and a named time zone."""
    tz = timezone.get_current_timezone()
    return (
        connection.vendor == "postgresql"
        and not chain
        and not has_text
        and bool(getattr(tz, "key", ""))
    )


def _meanings() -> dict[str, str]:
    """explain() of every code its catalogues hold, written as stored (in the active language)."""
    codes = {str(k) for k in ZALO_ERRORS} | {str(k) for k in ESMS_CODES}
    codes |= set(_GENERIC) | set(TWIRP_CODES)
    return {code: explain(code) for code in codes}


def _safe(expr: str) -> str:
    return csv_safe_sql(f"({expr})")


def _attribute_sql(n: int) -> str:
    """The cell of attribute key %(k{n})s: strings (formula-guarded), integers and booleans as
    Python writes them; anything else (a float, an object, a list) marked for Python."""
    v = f"c.attributes -> %(k{n})s"
    return (
        f"CASE jsonb_typeof({v})"
        f" WHEN 'string' THEN {_safe(f'c.attributes ->> %(k{n})s')}"
        f" WHEN 'boolean' THEN ({v})::text"
        f" WHEN 'number' THEN CASE WHEN ({v})::text ~ '^-?[0-9]+$'"
        f" THEN {_safe(f'({v})::text')} ELSE %(mark)s || 'A' || ({v})::text END"
        f" WHEN 'null' THEN NULL"
        f" ELSE %(mark)s || 'A' || ({v})::text END"
    )


# The parameters sent, "name: value; ...", in the template's order then the others by name
# (_params_text); only when every value is a string or an integer (else marked for Python).
_PARAMS = (
    "CASE WHEN jsonb_typeof(m.template_data) <> 'object' THEN NULL"
    " WHEN EXISTS (SELECT 1 FROM jsonb_each(m.template_data) e WHERE NOT ("
    "  jsonb_typeof(e.value) = 'string' OR e.value::text ~ '^-?[0-9]+$'))"
    " THEN %(mark)s || 'J' || m.template_data::text"
    " ELSE (SELECT string_agg(e.key || ': ' || e.value, '; '"
    '  ORDER BY array_position(%(order)s::text[], e.key), e.key COLLATE "C")'
    "  FROM jsonb_each_text(m.template_data) e) END"
)

# The local form (format_local's fast path for the stored VN and KH forms), else marked.
_LOCAL = (
    "CASE WHEN m.phone = '' THEN NULL"
    " WHEN m.phone ~ '^84[35789][0-9]{8}$'"
    " THEN '0' || substr(m.phone, 3, 3) || ' ' || substr(m.phone, 6, 3) || ' ' || substr(m.phone, 9)"
    " WHEN m.phone ~ '^855[1-9][0-9]{7,8}$'"
    " THEN '0' || substr(m.phone, 4, 2) || ' ' || substr(m.phone, 6, 3) || ' ' || substr(m.phone, 9)"
    " ELSE %(mark)s || 'P' || m.phone END"
)

# What the error code means: the catalogues' codes as stored; a code int() might read another
# way ("0118", " 118") is marked; anything else means nothing ("").
_MEANING = (
    "CASE WHEN m.error_code = '' THEN NULL"
    " WHEN %(meanings)s::jsonb ? m.error_code THEN %(meanings)s::jsonb ->> m.error_code"
    " WHEN m.error_code ~ '^-?[1-9][0-9]*$' OR m.error_code = '0' THEN NULL"
    " WHEN m.error_code ~ '[0-9]' THEN %(mark)s || 'E' || m.error_code"
    " ELSE NULL END"
)


def _time(column: str) -> str:
    return f"to_char(m.{column} AT TIME ZONE %(tz)s, 'YYYY-MM-DD HH24:MI:SS')"


def export_copy_sql(*, campaign: Campaign, keys: list[str], param_order) -> tuple[str, dict]:
    """The COPY statement and its parameters. Every empty cell is NULL: COPY writes NULL as
    nothing and an empty string as "" (the csv module writes both as nothing)."""
    statuses = {s.value: csv_safe(str(s.label)) for s in Message.Status}
    params: dict = {
        "campaign": campaign.pk,
        "mark": MARK,
        "order": list(param_order),
        "tz": timezone.get_current_timezone().key,
        "meanings": json.dumps({k: csv_safe(v) for k, v in _meanings().items() if v}),
        "statuses": json.dumps(statuses),
    }
    for n, key in enumerate(keys):
        params[f"k{n}"] = key
    cells = [
        _LOCAL,
        f"NULLIF({_safe('m.phone')}, '')",
        f"NULLIF({_safe('c.name')}, '')",
        *(f"NULLIF({_attribute_sql(n)}, '')" for n in range(len(keys))),
        f"NULLIF(CASE WHEN starts_with(pp.p, %(mark)s) THEN pp.p ELSE {_safe('pp.p')} END, '')",
        "%(statuses)s::jsonb ->> m.status",
        _time("sent_at"),
        _time("delivered_at"),
        _time("read_at"),
        _time("failed_at"),
        f"NULLIF({_safe('m.error_code')}, '')",
        f"NULLIF({_MEANING}, '')",
        "CASE WHEN m.fee = trunc(m.fee) THEN trunc(m.fee)::bigint::text ELSE m.fee::float8::text"
        " END",
        f"NULLIF({_safe('m.provider_message_id')}, '')",
    ]
    sql = (
        "COPY (SELECT " + ", ".join(cells) + " FROM campaigns_message m"
        " LEFT JOIN campaigns_contact c ON c.id = m.contact_id"
        # OFFSET 0: computed once a row, not once per reference (the planner would inline it)
        f" CROSS JOIN LATERAL (SELECT {_PARAMS} AS p OFFSET 0) pp"
        " WHERE m.campaign_id = %(campaign)s ORDER BY m.id) TO STDOUT WITH (FORMAT csv)"
    )
    return sql, params


def _finish(line: str, renderers: dict) -> str:
    """A row holding a marked cell, re-read and written again by the csv module; `renderers`
    (tag -> function of the raw value) write the marked cells as the Python export does."""
    row = next(csv.reader([line]))
    out = []
    for cell in row:
        if not cell.startswith(MARK):
            out.append(cell)
            continue
        tag, raw = cell[len(MARK)], cell[len(MARK) + 1 :]
        if tag == "P":
            out.append(csv_safe(format_local(raw)))
        elif tag == "E":
            out.append(csv_safe(explain(raw)))
        else:  # "A": an attribute, "J": the parameters
            out.append(renderers[tag](json.loads(raw)))
    buf = io.StringIO()
    csv.writer(buf).writerow(out)
    return buf.getvalue()


def export_copy_chunks(
    *, campaign: Campaign, keys: list[str], param_order, lang: str, renderers: dict
) -> Iterator[tuple[str, int]]:
    """(chunk of CSV rows, rows so far), without the header; `renderers` as for _finish."""
    with translation.override(lang):
        sql, params = export_copy_sql(campaign=campaign, keys=keys, param_order=param_order)
    with transaction.atomic(), connection.cursor() as cur:
        # One read, planned for a campaign's slice of a big table: no JIT compilation (seconds
        # of LLVM for one statement) and no hash of the whole contacts table (the campaign's
        # contacts are read through the primary key instead): 64 s against 39 s for the
        # 1,000,000-message campaign at 10M contacts, under the same load.
        cur.execute("SET LOCAL jit = off")
        cur.execute("SET LOCAL enable_hashjoin = off")
        yield from _copy_rows(cur, sql, params, lang=lang, renderers=renderers)


def _copy_rows(cur, sql, params, *, lang, renderers) -> Iterator[tuple[str, int]]:
    mark = MARK.encode()
    n, parts = 0, []
    with cur.cursor.copy(sql, params) as copy:
        # libpq hands COPY data over one row at a time: each ends with "\n", the csv module's
        # rows with "\r\n" (a newline inside a quoted cell stays as it is in both).
        for data in copy:
            row = bytes(data)
            if mark in row:
                with translation.override(lang):
                    parts.append(_finish(row.decode(), renderers).encode())
            else:
                parts.append(row[:-1] + b"\r\n")
            n += 1
            if n % CHUNK_ROWS == 0:
                yield b"".join(parts).decode(), n
                parts = []
    if parts:
        yield b"".join(parts).decode(), n
