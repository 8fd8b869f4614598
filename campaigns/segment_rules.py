"""The rules a Segment holds and their validation: pure (no model import), so that
campaigns.models validates a Segment with it and campaigns.contacts.segments turns the same
rules into a query."""

from __future__ import annotations

from django.utils.translation import gettext as _

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
