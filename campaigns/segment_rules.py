"""The rules a Segment holds, their validation and the value readers they share: pure (no model
import), so that campaigns.models validates a Segment with it and campaigns.contacts.segments
turns the same rules into a query.

Format (a list; the format of every saved segment before groups existed is still valid):

    [{"attribute": "city", "op": "contains", "value": "ha noi"},
     {"op": "has_tag", "value": "VIP"},
     {"match": "any", "rules": [rule, rule, ...]}]        # a group: one level deep

The top-level list is joined by Segment.match (all/any); a group by its own "match".

Date operators (on an attribute's date, ISO or dd/mm/yyyy): before, after, on (a date);
last_days and next_days (the date within N days before or after today); birthday_days (the day
and month within today and the next N days) and anniversary_in (the day and month exactly N days
from today); 29/02 is counted on 28/02 in a year without it. Attributes declared dates
(campaigns.models.AttributeDefinition) are stored ISO by imports.

Text is compared folded (campaigns.segment_rules.fold_key: diacritics removed, lower case) on
both databases, so "ha noi" matches "Hà Nội" and "HÀ NỘI". Numbers and dates are read from the
attribute's text by number_value / date_value here (SQLite calls them as SQL functions) and by
the same rules written in SQL on PostgreSQL (migration 0016): both must stay in step.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

from django.utils.translation import gettext as _

from providers.shared.text import fold

TEXT_OPS = ("eq", "neq", "contains", "not_contains", "starts_with", "in")
PRESENCE_OPS = ("empty", "not_empty")
NUMBER_OPS = ("gt", "gte", "lt", "lte")
DATE_OPS = ("before", "after", "on", "last_days", "next_days", "birthday_days", "anniversary_in")
TAG_OPS = ("has_tag", "not_has_tag")
SEGMENT_OPS = (*TEXT_OPS, *PRESENCE_OPS, *NUMBER_OPS, *DATE_OPS, *TAG_OPS)
DAY_OPS = ("last_days", "next_days", "birthday_days", "anniversary_in")
MAX_DAYS = 366
MAX_TAG = 50


# ---- value readers (Python side of the SQL functions loa_fold, loa_number, loa_date) ------------


def fold_key(value) -> str:
    """What text rules compare: "  HÀ   Nội " -> "ha noi" (also a tag's key)."""
    if value is None:
        return ""
    return " ".join(fold(str(value)).lower().split())


def fold_sql_value(value) -> str | None:
    """loa_fold for SQLite: like PostgreSQL's (lower(translate(...))), spaces kept as they are."""
    if value is None:
        return None
    return fold(str(value)).lower()


_GROUPED = re.compile(r"[+-]?[1-9]\d{0,2}(?:([.,])\d{3})(?:\1\d{3})*")
_PLAIN = re.compile(r"[+-]?\d+(?:[.,]\d+)?")


def number_value(value) -> float | None:
    """A number as Vietnamese files write it: "1.500.000" and "1,500,000" (thousands), "0,5",
    "12.5", "-3"; anything else is no number (None)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    text = re.sub(r"\s+", "", str(value))
    if _GROUPED.fullmatch(text):
        return float(text.replace(".", "").replace(",", ""))
    if _PLAIN.fullmatch(text):
        return float(text.replace(",", "."))
    return None


_ISO = re.compile(r"\s*(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T].*)?")
_DMY = re.compile(r"\s*(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})\s*")


def parse_date(value) -> date | None:
    """A date written ISO (2024-08-01, with a time after it or not) or dd/mm/yyyy (also with
    "." or "-"), as templates_app.formatting reads them; None when it is not one."""
    if value is None:
        return None
    text = str(value)
    m = _ISO.fullmatch(text)
    if m:
        y, mo, d = m.groups()
    else:
        m = _DMY.fullmatch(text)
        if not m:
            return None
        d, mo, y = m.groups()
    try:
        return date(int(y), int(mo), int(d))
    except ValueError:
        return None


def date_value(value) -> str | None:
    """loa_date: the date as ISO text ("2024-08-01"), which sorts as dates do."""
    parsed = parse_date(value)
    return parsed.isoformat() if parsed else None


def birthday_month_days(today: date, days: int) -> list[str]:
    """The "MM-DD" of today and the next `days` days: across the year end (28/12 + 7 days
    reaches 04/01), and 29/02 counted on 28/02 in a year without it."""
    out = []
    for n in range(days + 1):
        d = today + timedelta(days=n)
        out.append(d.strftime("%m-%d"))
        if d.month == 2 and d.day == 28 and (d + timedelta(days=1)).month == 3:
            out.append("02-29")
    return out


def tag_names(text) -> list[str]:
    """Tags as people write them in one cell: "VIP|Online", "VIP, Online", "VIP; Online"."""
    names: list[str] = []
    keys: set[str] = set()
    for part in re.split(r"[|,;]", str(text or "")):
        name = " ".join(part.split())[:MAX_TAG]
        key = fold_key(name)
        if key and key not in keys:
            keys.add(key)
            names.append(name)
    return names


# ---- the rules ---------------------------------------------------------------------------------


def iter_rules(rules):
    """Every rule, groups opened (for summaries and checks)."""
    for item in rules if isinstance(rules, list) else []:
        if isinstance(item, dict) and isinstance(item.get("rules"), list):
            yield from (r for r in item["rules"])
        else:
            yield item


def value_kind(op: str) -> str | None:
    """What a rule's operator reads of the attribute: its folded text, its number or its date;
    None for the tag operators (they read the tags)."""
    if op in TAG_OPS:
        return None
    if op in NUMBER_OPS:
        return "number"
    if op in DATE_OPS:
        return "date"
    return "text"


def attribute_reads(rules) -> set[tuple[str, str]]:
    """(kind, attribute) for every rule that reads an attribute: what a segment index must hold
    to count the rules (campaigns.contacts.segment_index)."""
    reads = set()
    for rule in iter_rules(rules):
        if isinstance(rule, dict) and "op" in rule:
            kind = value_kind(rule["op"])
            if kind is not None:
                reads.add((kind, str(rule.get("attribute"))))
    return reads


def _rule_errors(rule, n: int) -> list[str]:
    if not isinstance(rule, dict):
        return [_("Rule {n} must be an object with attribute, op and value.").format(n=n)]
    errors = []
    op, value = rule.get("op"), rule.get("value")
    if op not in SEGMENT_OPS:
        return [
            _("Rule {n}: the operator must be one of {ops}.").format(
                n=n, ops=", ".join(SEGMENT_OPS)
            )
        ]
    attribute = rule.get("attribute")
    if op not in TAG_OPS and (not isinstance(attribute, str) or not attribute.strip()):
        errors.append(_("Rule {n} has no attribute.").format(n=n))
    if op == "in":
        if not (isinstance(value, list) and value) and not (
            isinstance(value, str) and value.strip()
        ):
            errors.append(_("Rule {n}: “in” needs a list of values.").format(n=n))
    elif op in NUMBER_OPS:
        if number_value(value) is None:
            errors.append(_("Rule {n} needs a number.").format(n=n))
    elif op in ("before", "after", "on"):
        if parse_date(value) is None:
            errors.append(_("Rule {n} needs a date (dd/mm/yyyy).").format(n=n))
    elif op in DAY_OPS:
        days = number_value(value)
        if days is None or days != int(days) or not 0 <= days <= MAX_DAYS:
            errors.append(
                _("Rule {n} needs a number of days from 0 to {max}.").format(n=n, max=MAX_DAYS)
            )
    elif op in TAG_OPS:
        if not fold_key(value):
            errors.append(_("Rule {n} needs a tag.").format(n=n))
    elif op not in PRESENCE_OPS and (
        not isinstance(value, str | int | float)
        or (op in ("contains", "not_contains", "starts_with") and not fold_key(value))
    ):
        errors.append(_("Rule {n} needs a value.").format(n=n))
    return errors


def segment_rules_errors(rules) -> list[str]:
    """What is wrong with a segment's rules, in words (empty when they are fine)."""
    if rules in (None, ""):
        return []
    if not isinstance(rules, list):
        return [
            _('Rules must be a list, e.g. [{"attribute": "city", "op": "eq", "value": "Hà Nội"}].')
        ]
    errors = []
    n = 0
    for item in rules:
        if isinstance(item, dict) and "rules" in item:
            if item.get("match", "all") not in ("all", "any") or not isinstance(
                item["rules"], list
            ):
                errors.append(_("A group needs “match” (all or any) and a list of rules."))
                continue
            for rule in item["rules"]:
                n += 1
                if isinstance(rule, dict) and "rules" in rule:
                    errors.append(_("Groups cannot hold other groups."))
                    continue
                errors.extend(_rule_errors(rule, n))
            continue
        n += 1
        errors.extend(_rule_errors(item, n))
    return errors
