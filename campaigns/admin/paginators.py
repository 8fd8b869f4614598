"""A changelist paginator that never runs a full COUNT(*) on big tables.

On PostgreSQL an unfiltered count comes from pg_class.reltuples (the planner's estimate); a
filtered count runs under a short statement timeout and falls back to "many" when it expires
(the cure from "Optimizing Django Admin Paginator", lessons.md).
"""

from django.core.paginator import Paginator
from django.db import OperationalError, connection, transaction
from django.utils.functional import cached_property

FALLBACK = 1_000_000


class EstimatedCountPaginator(Paginator):
    @cached_property
    def count(self) -> int:
        qs = self.object_list
        if connection.vendor != "postgresql":
            return super().count
        if not qs.query.where:
            with connection.cursor() as cur:
                cur.execute(
                    "SELECT reltuples::bigint FROM pg_class WHERE relname = %s",
                    [qs.model._meta.db_table],
                )
                row = cur.fetchone()
            if row and row[0] and row[0] > 10_000:
                return int(row[0])
        try:
            with transaction.atomic(), connection.cursor() as cur:
                cur.execute("SET LOCAL statement_timeout = 150")
                return super().count
        except OperationalError:
            return FALLBACK
