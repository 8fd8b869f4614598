"""Contact services beyond the import: opt-outs, segments, export.

Opt-outs are rows in their own table (contact, channel kind, reason, source, time): imports never
touch them, and the send engine re-checks them at send time.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from django.db import DatabaseError, connection, transaction
from django.db.models import Q, QuerySet
from django.db.models.fields.json import KeyTextTransform
from django.utils import timezone
from django.utils.translation import gettext as _

from campaigns.importing import (
    PHONE_HEADERS,
    ImportFileError,
    RowError,
    csv_safe,
    inspect_file,
    iter_rows,
    read_preview,
    slugify_header,
)
from campaigns.models import Contact, ContactListMembership, OptOut, Segment
from providers.phones import normalize_phone


class InvalidPhone(ValueError):
    """The phone given to an opt-out could not be normalized; the message says why."""


def opt_out_channel_kinds() -> list[str]:
    return [value for value, _label in OptOut.CHANNEL_CHOICES]


# ---- opt-outs ------------------------------------------------------------------------------------


def contact_opt_out(
    *,
    phone: str,
    channel_kind: str = OptOut.ALL,
    reason: str = "",
    source: str = OptOut.Source.ADMIN,
) -> OptOut:
    """Record that `phone` refuses `channel_kind` ("all" for every channel).

    A phone that is not a contact yet becomes one (with no list), so that the refusal is kept and
    honoured if the number is imported later. An existing opt-out is kept as it is (its first
    reason and time are the evidence). Raises InvalidPhone.
    """
    if channel_kind not in opt_out_channel_kinds():
        raise ValueError(f"unknown channel kind {channel_kind!r}")
    result = normalize_phone(phone, mobile_only=False)
    if not result.ok:
        raise InvalidPhone(result.error)
    with transaction.atomic():
        contact, _created = Contact.objects.get_or_create(
            phone=result.phone,
            defaults={
                "source": f"opt-out:{source}"[:255],
            },
        )
        opt_out, _created = OptOut.objects.get_or_create(
            contact=contact,
            channel_kind=channel_kind,
            defaults={"reason": (reason or "")[:300], "source": source},
        )
    return opt_out


def contacts_opt_out(
    *,
    contact_ids: Iterable[int],
    channel_kind: str = OptOut.ALL,
    reason: str = "",
    source: str = OptOut.Source.ADMIN,
) -> int:
    """Opt out many contacts at once (admin action); returns how many opt-outs are new."""
    if channel_kind not in opt_out_channel_kinds():
        raise ValueError(f"unknown channel kind {channel_kind!r}")
    ids = list(contact_ids)
    created = 0
    for i in range(0, len(ids), 2000):
        chunk = ids[i : i + 2000]
        with transaction.atomic():
            have = set(
                OptOut.objects.filter(contact_id__in=chunk, channel_kind=channel_kind).values_list(
                    "contact_id", flat=True
                )
            )
            new = [
                OptOut(contact_id=c, channel_kind=channel_kind, reason=reason[:300], source=source)
                for c in chunk
                if c not in have
            ]
            OptOut.objects.bulk_create(new, ignore_conflicts=True)
            created += len(new)
    return created


@dataclass
class OptOutFileResult:
    total: int = 0
    opted_out: int = 0  # new opt-outs
    already: int = 0  # the phone had already opted out of that channel
    duplicates: int = 0  # the same phone earlier in the file
    invalid: int = 0
    errors: list[tuple[int, str, str]] = field(default_factory=list)  # first 1000
    warnings: list[str] = field(default_factory=list)

    def adds_up(self) -> bool:
        return self.total == self.opted_out + self.already + self.duplicates + self.invalid


def opt_out_file_process(
    *,
    file,
    channel_kind: str = OptOut.ALL,
    reason: str = "",
    source: str = OptOut.Source.FILE,
) -> OptOutFileResult:
    """Opt out every phone of an uploaded file (CSV/TSV/XLSX, any encoding): the phone column is
    found by its header ("phone", "SĐT", ...) or by its content. Raises ImportFileError."""
    if channel_kind not in opt_out_channel_kinds():
        raise ImportFileError(_("Unknown channel."))
    file.seek(0)
    info = inspect_file(file)
    first, sample = read_preview(file, info)
    slugs = [slugify_header(c) for c in first]
    phone_col = next((i for i, s in enumerate(slugs) if s in PHONE_HEADERS), None)
    has_header = phone_col is not None
    if phone_col is None:
        # No known header: the first column whose cells are phones (the header row may be
        # anything, or absent).
        for i in range(max(len(r) for r in [first, *sample])):
            cells = [r[i] for r in [first, *sample] if i < len(r) and r[i].strip()]
            ok = sum(1 for c in cells if normalize_phone(c, mobile_only=False).ok)
            if ok and ok * 2 >= len(cells) - 1:
                phone_col = i
                has_header = not normalize_phone(first[i] if i < len(first) else "").ok
                break
    if phone_col is None:
        raise ImportFileError(_("No phone column found: name the column “phone” or “SĐT”."))
    result = OptOutFileResult(warnings=list(info.warnings))
    seen: dict[str, int] = {}
    batch: list[str] = []
    rowno = 0
    for record in iter_rows(file, info):
        rowno += 1
        if rowno == 1 and has_header:
            continue
        if isinstance(record, RowError):
            result.total += 1
            result.invalid += 1
            _keep_error(result, rowno, "", str(record))
            continue
        raw = record[phone_col] if phone_col < len(record) else ""
        if not raw.strip():
            if any(c.strip() for c in record):
                result.total += 1
                result.invalid += 1
                _keep_error(result, rowno, raw, _("The phone is empty."))
            continue
        result.total += 1
        phone = normalize_phone(raw, mobile_only=False)
        if not phone.ok:
            result.invalid += 1
            _keep_error(result, rowno, raw, phone.error)
            continue
        if phone.phone in seen:
            result.duplicates += 1
            _keep_error(
                result,
                rowno,
                raw,
                _("Duplicate: the same phone as row {row}.").format(row=seen[phone.phone]),
            )
            continue
        seen[phone.phone] = rowno
        batch.append(phone.phone)
        if len(batch) >= 2000:
            _opt_out_batch(batch, channel_kind, reason, source, result)
            batch = []
    _opt_out_batch(batch, channel_kind, reason, source, result)
    return result


def _keep_error(result: OptOutFileResult, rowno: int, raw: str, reason: str) -> None:
    if len(result.errors) < 1000:
        result.errors.append((rowno, raw, reason))


def _opt_out_batch(
    phones: list[str], channel_kind: str, reason: str, source: str, result: OptOutFileResult
) -> None:
    if not phones:
        return
    with transaction.atomic():
        Contact.objects.bulk_create(
            [Contact(phone=p, source=f"opt-out:{source}") for p in phones],
            ignore_conflicts=True,
        )
        ids = list(Contact.objects.filter(phone__in=phones).values_list("id", flat=True))
        have = set(
            OptOut.objects.filter(contact_id__in=ids, channel_kind=channel_kind).values_list(
                "contact_id", flat=True
            )
        )
        OptOut.objects.bulk_create(
            [
                OptOut(contact_id=i, channel_kind=channel_kind, reason=reason[:300], source=source)
                for i in ids
                if i not in have
            ],
            ignore_conflicts=True,
        )
    result.already += len(have)
    result.opted_out += len(ids) - len(have)


# ---- segments ------------------------------------------------------------------------------------

SEGMENT_OPS = ("eq", "neq", "contains", "in", "empty", "not_empty")


def segment_rules_errors(rules) -> list[str]:
    """What is wrong with a segment's rules, in words (empty when they are fine)."""
    if rules in (None, ""):
        return []
    if not isinstance(rules, list):
        return [
            _('Rules must be a list, e.g. [{"attribute": "city", "op": "eq", "value": "Hà Nội"}].')
        ]
    errors = []
    for n, rule in enumerate(rules, start=1):
        if not isinstance(rule, dict):
            errors.append(_("Rule {n} must be an object with attribute, op and value.").format(n=n))
            continue
        attribute, op = rule.get("attribute"), rule.get("op")
        if not isinstance(attribute, str) or not attribute.strip():
            errors.append(_("Rule {n} has no attribute.").format(n=n))
        if op not in SEGMENT_OPS:
            errors.append(
                _("Rule {n}: the operator must be one of {ops}.").format(
                    n=n, ops=", ".join(SEGMENT_OPS)
                )
            )
        elif op == "in":
            value = rule.get("value")
            if not (isinstance(value, list) and value) and not (
                isinstance(value, str) and value.strip()
            ):
                errors.append(_("Rule {n}: “in” needs a list of values.").format(n=n))
        elif op not in ("empty", "not_empty") and not isinstance(
            rule.get("value"), str | int | float
        ):
            errors.append(_("Rule {n} needs a value.").format(n=n))
    return errors


def _rule_q(alias: str, op: str, value) -> Q:
    """One rule against the annotated text of one attribute (NULL when the key is missing)."""
    is_null = Q(**{f"{alias}__isnull": True})
    if op == "eq":
        return Q(**{f"{alias}__iexact": str(value)})
    if op == "neq":
        return is_null | (~is_null & ~Q(**{f"{alias}__iexact": str(value)}))
    if op == "contains":
        return Q(**{f"{alias}__icontains": str(value)})
    if op == "in":
        values = value if isinstance(value, list) else [v.strip() for v in str(value).split(",")]
        q = Q(pk__in=[])
        for v in values:
            q |= Q(**{f"{alias}__iexact": str(v)})
        return q
    # iexact "", not exact "": on SQLite an exact lookup on a JSON key compares JSON values
    blank = Q(**{f"{alias}__iexact": ""})
    if op == "empty":
        return is_null | blank
    if op == "not_empty":
        return ~is_null & ~blank
    raise ValueError(op)


def segment_queryset(segment: Segment, *, exclude_opted_out: str | None = None) -> QuerySet:
    """The contacts of a segment: members of its lists (any list; all contacts when it has none)
    whose attributes match its rules (all of them, or any, per `segment.match`).

    Attribute names are used as JSON keys through KeyTextTransform, never as lookup strings, so a
    key such as "a__b" cannot turn into another lookup. With `exclude_opted_out` set to a channel
    kind, contacts who refused that kind (or all channels) are left out.
    """
    qs = Contact.objects.all()
    if segment.pk:
        list_ids = list(segment.contact_lists.values_list("pk", flat=True))
        if list_ids:
            qs = qs.filter(
                pk__in=ContactListMembership.objects.filter(contact_list_id__in=list_ids).values(
                    "contact_id"
                )
            )
    rules = segment.rules if isinstance(segment.rules, list) else []
    combined = None
    for n, rule in enumerate(rules):
        alias = f"seg_attr_{n}"
        qs = qs.alias(**{alias: KeyTextTransform(str(rule["attribute"]), "attributes")})
        q = _rule_q(alias, rule["op"], rule.get("value"))
        if combined is None:
            combined = q
        elif segment.match == Segment.Match.ANY:
            combined |= q
        else:
            combined &= q
    if combined is not None:
        qs = qs.filter(combined)
    if exclude_opted_out:
        qs = qs.exclude(
            pk__in=OptOut.objects.filter(channel_kind__in=[exclude_opted_out, OptOut.ALL]).values(
                "contact_id"
            )
        )
    return qs


def segment_count(segment: Segment, *, timeout_ms: int = 2000) -> int | None:
    """The live count for the admin; None when PostgreSQL could not count within the timeout."""
    qs = segment_queryset(segment)
    if connection.vendor != "postgresql":
        return qs.count()
    try:
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute(f"SET LOCAL statement_timeout = {int(timeout_ms)}")
            return qs.count()
    except DatabaseError:
        return None


# ---- export ----------------------------------------------------------------------------------------


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
    yield [
        _("phone"),
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
            csv_safe(c.name),
            *(csv_safe(attrs.get(k, "")) for k in keys),
            opted,
            csv_safe(c.source),
            timezone.localtime(c.created_at).strftime("%Y-%m-%d %H:%M:%S"),
        ]


class _Echo:
    def write(self, value):
        return value


def contacts_export_csv(*, queryset: QuerySet) -> Iterator[str]:
    """CSV text chunks for a StreamingHttpResponse (with a BOM for Excel)."""
    writer = csv.writer(_Echo())
    yield "\ufeff"
    for row in contacts_export_rows(queryset=queryset):
        yield writer.writerow(row)
