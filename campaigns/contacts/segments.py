"""A segment's contacts: its rules (validated by campaigns.segment_rules) turned into a queryset
over the contacts' attributes and tags, the live count and sample the admin shows, and the
attribute keys (with a guessed type) the rule builder offers.

Text rules compare loa_fold(attribute) with the folded value: "ha noi" matches "Hà Nội" and
"HÀ NỘI" on both databases. loa_fold, loa_number and loa_date are SQL functions: on PostgreSQL
created by migration 0016 (plain SQL, inlined), on SQLite the Python readers of
campaigns.segment_rules registered on every connection (connection_created below).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache

from django.core.cache import cache
from django.db import DatabaseError, connection, transaction
from django.db.backends.signals import connection_created
from django.db.models import (
    BooleanField,
    F,
    FloatField,
    Func,
    IntegerField,
    Q,
    QuerySet,
    TextField,
    Value,
)
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, Replace, Substr
from django.utils import timezone

from campaigns.contacts.segment_index import (
    column_value,
    covered_upto,
    index_base,
    ready_columns,
)
from campaigns.contacts.typed import declared_types
from campaigns.models import Contact, ContactListMembership, OptOut, Segment
from campaigns.segment_rules import (
    DATE_OPS,
    birthday_month_days,
    date_value,
    fold_key,
    fold_sql_value,
    number_value,
    parse_date,
)
from providers.shared.phones import format_local

SAMPLE_SIZE = 10
KEY_SAMPLE = 2000  # recent contacts whose attribute keys the builder offers


# ---- SQL functions -----------------------------------------------------------------------------


# SQLite calls these once per row: the values repeat (a few cities, a few tag lists), so a
# cache makes a count over 100,000 contacts cost dict lookups instead of Unicode work.
@lru_cache(maxsize=8192)
def _fold_cached(value):
    return fold_sql_value(value)


@lru_cache(maxsize=8192)
def _has_tag(tags, key) -> int:
    try:
        return int(key in json.loads(tags or "[]"))
    except (TypeError, ValueError):
        return 0


def _sqlite_functions(sender=None, connection=None, **kwargs) -> None:
    if connection is None or connection.vendor != "sqlite":
        return
    raw = connection.connection
    raw.create_function("loa_fold", 1, _fold_cached, deterministic=True)
    raw.create_function("loa_number", 1, number_value, deterministic=True)
    raw.create_function("loa_date", 1, date_value, deterministic=True)
    raw.create_function("loa_has_tag", 2, _has_tag, deterministic=True)


connection_created.connect(_sqlite_functions, dispatch_uid="loa_segment_sqlite_functions")


def ensure_sql_functions() -> None:
    """The SQLite functions on a connection opened before this module was imported."""
    if connection.vendor == "sqlite":
        connection.ensure_connection()
        _sqlite_functions(connection=connection)


class Fold(Func):
    function = "loa_fold"
    output_field = TextField()


class NumberOf(Func):
    function = "loa_number"
    output_field = FloatField()


class DateOf(Func):
    function = "loa_date"
    output_field = TextField()


class HasTagSQLite(Func):
    function = "loa_has_tag"
    output_field = BooleanField()


# ---- rules -> Q --------------------------------------------------------------------------------


def _values(value) -> list[str]:
    items = value if isinstance(value, list) else str(value).split(",")
    return [k for k in (fold_key(v) for v in items) if k]


def _tag_q(qs_alias: dict, name: str, value) -> Q:
    key = fold_key(value)
    if connection.vendor == "postgresql":
        # tags @> '["vip"]', with the predicate of the partial GIN index of migration 0016
        # (contacts with tags) repeated: without it the planner may not use that index.
        return Q(tags__contains=[key]) & ~Q(tags=[])
    qs_alias[name] = HasTagSQLite(F("tags"), Value(key))
    return Q(**{name: True})


def contact_value(kind: str, key: str):
    """What a rule compares, read from the contact's attributes: loa_fold, loa_number or loa_date
    of the attribute. Attribute names are used as JSON keys through KeyTextTransform, never as
    lookup strings, so a key such as "a__b" cannot turn into another lookup."""
    raw = KeyTextTransform(key, "attributes")
    if kind == "monthday":  # "2024-12-04" -> 1204: what birthday rules compare
        return Cast(Replace(Substr(DateOf(raw), 6, 5), Value("-"), Value("")), IntegerField())
    return {"number": NumberOf, "date": DateOf}.get(kind, Fold)(raw)


def _rule_q(aliases: dict, name: str, rule: dict, value_of=contact_value) -> Q:
    """One rule as a Q over annotations it adds to `aliases` (named from `name`), each what
    value_of(kind, attribute) reads: the contact's attributes, or the segment index's columns
    that hold the same values (campaigns.contacts.segment_index)."""
    op, value = rule["op"], rule.get("value")
    if op == "has_tag":
        return _tag_q(aliases, name, value)
    if op == "not_has_tag":
        return ~_tag_q(aliases, name, value)
    attribute = str(rule["attribute"])
    if op in ("gt", "gte", "lt", "lte"):
        aliases[name] = value_of("number", attribute)
        return Q(**{f"{name}__{op}": number_value(value)})
    if op in DATE_OPS:
        aliases[name] = value_of("date", attribute)
        if op in ("before", "after", "on"):
            lookup = {"before": "lt", "after": "gt", "on": "exact"}[op]
            return Q(**{f"{name}__{lookup}": parse_date(value).isoformat()})
        today = timezone.localdate()
        days = int(number_value(value))
        if op == "last_days":
            since = (today - timedelta(days=days)).isoformat()
            return Q(**{f"{name}__gte": since, f"{name}__lte": today.isoformat()})
        if op == "next_days":  # a renewal, a warranty end: from today to today + N
            until = (today + timedelta(days=days)).isoformat()
            return Q(**{f"{name}__gte": today.isoformat(), f"{name}__lte": until})
        # The day of the year as month * 100 + day (both sides): an integer IN list.
        aliases[f"{name}_md"] = value_of("monthday", attribute)
        if op == "anniversary_in":  # the year ignored, exactly N days from today
            days_of = birthday_month_days(today + timedelta(days=days), 0)
        else:
            days_of = birthday_month_days(today, days)
        return Q(**{f"{name}_md__in": [int(md.replace("-", "")) for md in days_of]})
    aliases[name] = value_of("text", attribute)
    missing = Q(**{f"{name}__isnull": True})
    if op in ("empty", "not_empty"):
        empty = missing | Q(**{name: ""})
        return empty if op == "empty" else ~empty
    if op == "in":
        return Q(**{f"{name}__in": _values(value)})
    key = fold_key(value)
    if op == "eq":
        return Q(**{name: key})
    if op == "neq":
        return missing | ~Q(**{name: key})
    if op == "contains":
        return Q(**{f"{name}__contains": key})
    if op == "not_contains":
        return missing | ~Q(**{f"{name}__contains": key})
    if op == "starts_with":
        return Q(**{f"{name}__startswith": key})
    raise ValueError(op)


def _join(qs: list[Q], match: str) -> Q | None:
    combined = None
    for q in qs:
        if combined is None:
            combined = q
        elif match == Segment.Match.ANY:
            combined |= q
        else:
            combined &= q
    return combined


def rules_q(rules, match: str, aliases: dict, value_of=contact_value) -> Q | None:
    """The rules (groups one level deep) as one Q, None when there are none."""
    parts: list[Q] = []
    for n, item in enumerate(rules if isinstance(rules, list) else []):
        if isinstance(item, dict) and isinstance(item.get("rules"), list):
            inner = [
                _rule_q(aliases, f"seg_{n}_{m}", rule, value_of)
                for m, rule in enumerate(item["rules"])
                if isinstance(rule, dict) and "op" in rule
            ]
            q = _join(inner, item.get("match") or Segment.Match.ALL)
            if q is not None:
                parts.append(q)
        elif isinstance(item, dict) and "op" in item:
            parts.append(_rule_q(aliases, f"seg_{n}", item, value_of))
    return _join(parts, match)


def contacts_matching(*, rules, match: str, list_ids: list[int] | None = None) -> QuerySet:
    """Members of any of `list_ids` (every contact when empty) whose attributes and tags match."""
    ensure_sql_functions()
    qs = Contact.objects.all()
    if list_ids:
        qs = qs.filter(
            pk__in=ContactListMembership.objects.filter(contact_list_id__in=list_ids).values(
                "contact_id"
            )
        )
    aliases: dict = {}
    q = rules_q(rules, match, aliases)
    if q is not None:
        qs = qs.alias(**aliases).filter(q)
    return qs


@dataclass
class IndexedMatches:
    """A segment's matches read through the segment index: the indexed contacts' rows (ids up to
    the index's mark, in contact_id) and, above the mark, the contacts' own query (`contacts`,
    the whole of it, is what an estimate samples)."""

    index: QuerySet
    contacts: QuerySet
    mark: int

    @property
    def newer(self) -> QuerySet:
        return self.contacts.filter(pk__gt=self.mark)

    def count(self) -> int:
        return self.index.count() + self.newer.count()


def indexed_matching(
    *, rules, match: str, list_ids: list[int] | None = None
) -> IndexedMatches | None:
    """contacts_matching's contacts through the segment index: the same Q over the index's
    columns, which hold the values the contacts' query computes, for the contacts it covers.
    None when the index cannot answer: SQLite, an attribute without a ready slot."""
    columns = ready_columns(rules)
    if columns is None:
        return None
    mark = covered_upto()
    # Both sides of the same mark: a build moving it between the two counts (each its own
    # statement) would otherwise count the contacts it just covered twice.
    qs = index_base(list_ids).filter(contact_id__lte=mark)
    aliases: dict = {}
    q = rules_q(rules, match, aliases, column_value(columns))
    if q is not None:
        qs = qs.alias(**aliases).filter(q)
    contacts = contacts_matching(rules=rules, match=match, list_ids=list_ids)
    return IndexedMatches(index=qs, contacts=contacts, mark=mark)


def _list_ids(segment: Segment) -> list[int]:
    return list(segment.contact_lists.values_list("pk", flat=True)) if segment.pk else []


def segment_queryset(segment: Segment, *, exclude_opted_out: str | None = None) -> QuerySet:
    """The contacts of a segment: members of its lists (any list; all contacts when it has none)
    whose attributes match its rules (all of them, or any, per `segment.match`).

    With `exclude_opted_out` set to a channel kind, contacts who refused that kind (or all
    channels) are left out.
    """
    qs = contacts_matching(rules=segment.rules, match=segment.match, list_ids=_list_ids(segment))
    if exclude_opted_out:
        qs = qs.exclude(
            pk__in=OptOut.objects.filter(channel_kind__in=[exclude_opted_out, OptOut.ALL]).values(
                "contact_id"
            )
        )
    return qs


def _within(timeout_ms: int, run, *settings: str):
    """run(cursor) under a PostgreSQL statement timeout (and `settings`, "name = value") of its
    own transaction; None when it ran out of time."""
    try:
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute(f"SET LOCAL statement_timeout = {int(timeout_ms)}")
            for setting in settings:
                cur.execute(f"SET LOCAL {setting}")
            return run(cur)
    except DatabaseError:
        return None


def count_within(qs: QuerySet | IndexedMatches, *, timeout_ms: int = 2000) -> int | None:
    """qs.count(); None when PostgreSQL could not count within the timeout."""
    if connection.vendor != "postgresql":
        return qs.count()
    # Room for an exact bitmap of a million-contact tag (the GIN index of "has tag"): with the
    # default 4 MB it turns lossy and every contact of the page is checked again. "Has tag VIP
    # within a list" at 10M contacts: 2.17 s -> 1.71 s. No JIT: compiling the long expression of
    # a date rule cost more than it saved (10M contacts: 9.3 s with it, 6.3 s without; the
    # other rules measured the same either way).
    return _within(timeout_ms, lambda cur: qs.count(), "work_mem = '64MB'", "jit = off")


def newest_within(
    qs: QuerySet | IndexedMatches, *, n: int = SAMPLE_SIZE, timeout_ms: int = 500
) -> list | None:
    """The newest `n` matches as (phone, name); None when PostgreSQL could not find them within
    the timeout. A segment within one list whose matches are all old walks the newest contacts
    first: 1.6 s at 10M contacts for "has tag VIP within a list" (docs/BENCHMARKS.md). Through
    the segment index: the newest above its mark, then the index's newest ids' contacts."""

    def find(cur=None) -> list:
        if not isinstance(qs, IndexedMatches):
            return list(qs.order_by("-pk").values_list("phone", "name")[:n])
        rows = list(qs.newer.order_by("-pk").values_list("phone", "name")[:n])
        if len(rows) < n:
            ids = qs.index.order_by("-contact_id").values("contact_id")[: n - len(rows)]
            older = Contact.objects.filter(pk__in=ids).order_by("-pk")
            rows += list(older.values_list("phone", "name"))
        return rows

    if connection.vendor != "postgresql":
        return find()
    return _within(timeout_ms, find)


# The share of the contacts table's pages a count estimate reads (count_estimate).
ESTIMATE_PERCENT = 1.0


def count_estimate(
    qs: QuerySet | IndexedMatches, *, percent: float = ESTIMATE_PERCENT
) -> int | None:
    """PostgreSQL: qs.count() estimated from `percent` of the contacts table's pages
    (TABLESAMPLE SYSTEM, the same pages each time: REPEATABLE), scaled up; None elsewhere or
    when the query does not read the contacts table first. For where an exact count is needless
    and too slow at 10M contacts (a JSON rule reads every row: 5-8 s measured, docs/BENCHMARKS.md
    "10M tenant"): about 1% of the time, within a few percent for a segment of more than a few
    thousand contacts. The campaign's build always counts exactly. Matches read through the
    segment index are estimated on their contacts' query."""
    if isinstance(qs, IndexedMatches):
        qs = qs.contacts
    if connection.vendor != "postgresql" or qs.model is not Contact:
        return None
    sql, params = qs.order_by().values("pk").query.sql_with_params()
    table = connection.ops.quote_name(Contact._meta.db_table)
    head = f"FROM {table} "
    if head not in sql:
        return None
    sample = f"FROM {table} TABLESAMPLE SYSTEM ({float(percent)}) REPEATABLE (22) "
    sql = sql.replace(head, sample, 1)

    def run(cur):
        cur.execute(f"SELECT count(*) FROM ({sql}) x", params)
        return round(cur.fetchone()[0] * 100 / float(percent))

    return _within(2000, run)


# Above this many contacts the segment list shows estimates only: an exact count there reads
# every contact (2-3 s at 10M) and the list would spend its 300 ms budget on each segment before
# estimating anyway (1.5 s for 4 segments, 7 s for 20).
LIST_EXACT_MAX = 1_000_000
ESTIMATE_CACHE_SECONDS = 600


def contacts_table_rows() -> int | None:
    """PostgreSQL's own estimate of the contacts table's size (pg_class.reltuples, kept by
    ANALYZE): free to read. None elsewhere, or before the table was ever analyzed."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cur:
        cur.execute(
            "SELECT reltuples::bigint FROM pg_class WHERE relname = %s", [Contact._meta.db_table]
        )
        row = cur.fetchone()
    return int(row[0]) if row and row[0] and row[0] > 0 else None


def segment_estimate_cached(segment: Segment) -> int | None:
    """count_estimate of the segment, kept ESTIMATE_CACHE_SECONDS (an estimate is a few percent
    off anyway); a saved change to the segment (its updated_at) makes a new one."""
    stamp = segment.updated_at.timestamp() if segment.updated_at else 0
    key = f"segment-estimate:{segment.pk}:{stamp}"
    cached = cache.get(key)
    if cached is not None:
        return cached
    estimate = count_estimate(segment_queryset(segment))
    if estimate is not None:
        cache.set(key, estimate, ESTIMATE_CACHE_SECONDS)
    return estimate


def matching_for_count(
    *, rules, match: str, list_ids: list[int] | None = None
) -> QuerySet | IndexedMatches:
    """What to count a segment's matches on: the segment index when it can answer (0.3 s where
    the contacts take 2-3 s at 10M), else the contacts."""
    indexed = indexed_matching(rules=rules, match=match, list_ids=list_ids)
    if indexed is not None:
        return indexed
    return contacts_matching(rules=rules, match=match, list_ids=list_ids)


def segment_matching_for_count(segment: Segment) -> QuerySet | IndexedMatches:
    return matching_for_count(rules=segment.rules, match=segment.match, list_ids=_list_ids(segment))


def segment_count(segment: Segment, *, timeout_ms: int = 2000) -> int | None:
    """The live count for the admin; None when PostgreSQL could not count within the timeout."""
    return count_within(segment_matching_for_count(segment), timeout_ms=timeout_ms)


@dataclass
class SegmentPreview:
    count: int | None  # None: the count timed out
    sample: list[dict]  # [{"name": ..., "phone": "0912 345 678"}]
    estimate: int | None = None  # when the count timed out: count_estimate's


def segment_preview(*, rules, match: str, list_ids: list[int] | None = None) -> SegmentPreview:
    """What the rule builder shows while rules change: the count (or, when it times out, an
    estimate from a sample) and the newest matches."""
    qs = matching_for_count(rules=rules, match=match, list_ids=list_ids)
    count = count_within(qs)
    estimate = count_estimate(qs) if count is None else None
    rows = (newest_within(qs) or []) if count != 0 else []
    return SegmentPreview(
        count=count,
        sample=[{"name": n, "phone": format_local(p)} for p, n in rows],
        estimate=estimate,
    )


def attribute_keys(*, sample: int = KEY_SAMPLE) -> list[dict]:
    """The attribute keys of the newest `sample` contacts, each with the type its values look
    like ("number", "date", "text"): what the builder offers (a sample, not a scan of a million
    rows; a rarer key can still be typed). A key declared typed (AttributeDefinition) is offered
    with its declared type ("lunar" for a lunar date) and "declared": True, sampled or not."""
    seen: dict[str, list[str]] = {}
    rows = Contact.objects.order_by("-pk").values_list("attributes", flat=True)[:sample]
    for attrs in rows:
        if not isinstance(attrs, dict):
            continue
        for key, value in attrs.items():
            values = seen.setdefault(str(key), [])
            if value not in (None, "") and len(values) < 50:
                values.append(str(value))
    declared = declared_types()
    out = []
    for key in sorted(set(seen) | set(declared), key=str.casefold):
        if key in declared:
            kind = declared[key][0]
            out.append(
                {"key": key, "type": "lunar" if kind == "lunar_date" else kind, "declared": True}
            )
            continue
        values = seen[key]
        kind = "text"
        if values and all(parse_date(v) for v in values):
            kind = "date"
        elif values and all(number_value(v) is not None for v in values):
            kind = "number"
        out.append({"key": key, "type": kind})
    return out
