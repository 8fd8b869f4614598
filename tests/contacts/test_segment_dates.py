"""loa_date, the date reader of segment rules on PostgreSQL (migration 0025): its fast path for
"YYYY-MM-DD" and "d/m/yyyy" gives what the parser of 0016 (loa_date_parse) and Python's
date_value give, for every input, and PostgreSQL inlines it (no function call per row: 200 µs
a row before, docs/BENCHMARKS.md)."""

from __future__ import annotations

import itertools

import pytest
from django.db import connection

from campaigns.segment_rules import date_value
from tests.factories import ContactFactory

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="loa_date is PostgreSQL's"),
]

EDGES = [
    "2024-02-29",
    "2100-02-29",
    "1600-02-29",
    "2000-02-30",
    "29/02/2100",
    "29/2/1600",
    "2023-02-29",
    "1900-02-29",
    "2000-02-29",
    "2100-02-28",
    "2024-04-31",
    "2024-04-30",
    "2024-12-31",
    "2024-13-01",
    "2024-00-10",
    "2024-01-00",
    "0000-01-01",
    "0001-01-01",
    "0999-12-31",
    "9999-12-31",
    "2024-1-5",
    " 2024-01-05",
    "2024-01-05 ",
    "2024-01-05 10:00",
    "2024-01-05T10:00:00",
    "2024-01-5",
    "20240105",
    "2024/01/05",
    "5/1/2024",
    "05/01/2024",
    "31/04/2024",
    "30/04/2024",
    "29/02/2023",
    "29/02/2024",
    "29/02/1900",
    "29/02/2000",
    "0/1/2024",
    "1/0/2024",
    "1/13/2024",
    "32/1/2024",
    "1/1/0000",
    "1/1/0001",
    "05.01.2024",
    "05-01-2024",
    " 05/01/2024 ",
    "5/1/24",
    "005/1/2024",
    "1/1/20244",
    "",
    " ",
    "abc",
    "2024-01-05x",
    "x2024-01-05",
    "31/12/9999",
    "٠٥/٠١/٢٠٢٤",
]


def _read(cur, function: str, text: str | None):
    cur.execute(f"SELECT {function}(%s)", [text])
    return cur.fetchone()[0]


def test_the_fast_path_reads_every_input_as_the_parser_and_python_do():
    generated = [
        f"{y}-{m:02d}-{d:02d}"
        for y, m, d in itertools.product((1999, 2000, 2024), range(0, 14), range(0, 33))
    ] + [
        f"{d}/{m}/{y}"
        for y, m, d in itertools.product((1900, 2023, 2024), range(0, 14), range(0, 33))
    ]
    with connection.cursor() as cur:
        for text in [*EDGES, *generated]:
            fast, parsed = _read(cur, "loa_date", text), _read(cur, "loa_date_parse", text)
            assert fast == parsed, text
            if text.isascii():  # Python's \d also reads other scripts' digits (a known difference)
                assert fast == date_value(text), text
        assert _read(cur, "loa_date", None) is None


def test_postgresql_inlines_it_and_a_date_rule_reads_it_so():
    from campaigns.contacts.segments import contacts_matching

    ContactFactory(attributes={"born": "1990-12-30"})
    ContactFactory(attributes={"born": "30/12/1991"})
    ContactFactory(attributes={"born": "30.12.1992"})  # the parser's form
    qs = contacts_matching(
        rules=[{"attribute": "born", "op": "before", "value": "01/01/1992"}], match="all"
    )
    assert qs.count() == 2
    sql, params = qs.query.sql_with_params()
    with connection.cursor() as cur:
        cur.execute("EXPLAIN (VERBOSE) " + sql, params)
        plan = "\n".join(row[0] for row in cur.fetchall())
    assert "loa_date_parse" in plan and "loa_date(" not in plan, plan
