"""Contacts out to a spreadsheet: the CSV export (every attribute key a column, every cell
formula-safe), streamed."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator

from django.db import connection
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from providers.shared.phones import format_local
from providers.shared.text import csv_safe


def contacts_attribute_keys(*, queryset: QuerySet, limit: int = 200) -> list[str]:
    """Every attribute key used by the contacts of `queryset` (sorted), for export columns."""
    ids_sql, params = queryset.order_by().values("pk").query.sql_with_params()
    if connection.vendor == "postgresql":
        sql = (
            "SELECT DISTINCT k FROM campaigns_contact c,"
            " jsonb_object_keys(CASE WHEN jsonb_typeof(c.attributes) = 'object'"
            "  THEN c.attributes ELSE '{}'::jsonb END) k"
            f" WHERE c.id IN ({ids_sql}) ORDER BY k LIMIT {int(limit)}"
        )
    else:
        sql = (
            "SELECT DISTINCT j.key FROM campaigns_contact c, json_each(c.attributes) j"
            f" WHERE json_type(c.attributes) = 'object' AND c.id IN ({ids_sql})"
            f" ORDER BY j.key LIMIT {int(limit)}"
        )
    with connection.cursor() as cur:
        cur.execute(sql, params)
        return [row[0] for row in cur.fetchall()]


def contacts_export_rows(*, queryset: QuerySet) -> Iterator[list[str]]:
    """Header then one row per contact, every cell injection-safe; streamed in chunks."""
    keys = contacts_attribute_keys(queryset=queryset)
    # The phone as stored (international, what an import reads back and providers are sent),
    # then as people write it in its country.
    yield [
        _("phone"),
        _("phone (local)"),
        _("name"),
        *keys,
        _("opted out of"),
        _("source"),
        _("created"),
    ]
    rows = (
        queryset.order_by("pk")
        .only("pk", "phone", "name", "attributes", "source", "created_at")
        .prefetch_related("opt_outs")
        .iterator(chunk_size=2000)
    )
    for c in rows:
        attrs = c.attributes if isinstance(c.attributes, dict) else {}
        opted = " ".join(sorted(o.channel_kind for o in c.opt_outs.all()))
        yield [
            csv_safe(c.phone),
            csv_safe(format_local(c.phone)),
            csv_safe(c.name),
            *(csv_safe(attrs.get(k, "")) for k in keys),
            opted,
            csv_safe(c.source),
            timezone.localtime(c.created_at).strftime("%Y-%m-%d %H:%M:%S"),
        ]


class _Echo:
    def write(self, value):
        return value


def contacts_export_csv(
    *, queryset: QuerySet, on_done: Callable[[int, bool], None] | None = None
) -> Iterator[str]:
    """CSV text chunks for a StreamingHttpResponse (with a BOM for Excel). `on_done(rows,
    complete)` is called once the stream ends (complete=False: the download was cut short), with
    the contact rows sent: the audit trail's row count."""
    writer = csv.writer(_Echo())
    yield "\ufeff"
    rows, complete = -1, False  # -1: the header is not a contact
    try:
        for row in contacts_export_rows(queryset=queryset):
            rows += 1  # counted when handed over: a cut download counts what it got
            yield writer.writerow(row)
        complete = True
    finally:
        if on_done is not None:
            on_done(max(rows, 0), complete)
