"""A segment's contacts: its rules (validated by campaigns.segment_rules) turned into a queryset
over the contacts' attributes, and the live count the admin shows."""

from __future__ import annotations

from django.db import DatabaseError, connection, transaction
from django.db.models import Q, QuerySet
from django.db.models.fields.json import KeyTextTransform

from campaigns.models import Contact, ContactListMembership, OptOut, Segment


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
