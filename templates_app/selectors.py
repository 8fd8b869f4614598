"""Reads for the admin and the campaign wizard: validation summaries, the failing-rows report and
the contact to preview with."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from django.utils.translation import gettext as _

from templates_app.services import (
    RecipientChecker,
    audience_failure_rows,
    audience_rows,
    audience_validate,
    campaign_params,
)

SAMPLE_LIMIT = 20


def campaign_validation_summary(*, campaign) -> dict:
    """What would fail if this campaign were sent now, per recipient and parameter.

    {"total", "ok", "failing", "reasons": [{"param", "code", "reason", "count"}],
     "samples": [{"contact_id", "phone", "name", "param", "value", "reason"}] (at most 20),
     "mapping_errors": [...], "seconds"}. `count` is the number of recipients failing that way.
    """
    return audience_validate(campaign=campaign, sample_limit=SAMPLE_LIMIT).as_dict()


def _safe(value) -> str:
    """Formula-injection guard for spreadsheet exports (OWASP: = + - @ TAB CR)."""
    text = "" if value is None else str(value)
    return "'" + text if text and text[0] in "=+-@\t\r" else text


def campaign_validation_report_rows(*, campaign) -> Iterator[str]:
    """CSV (UTF-8 with BOM for Excel) of every failing parameter of every recipient, streamed."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(
        [_("contact id"), _("phone"), _("name"), _("parameter"), _("value"), _("reason")]
    )
    yield "\ufeff" + buf.getvalue()
    buf.seek(0)
    buf.truncate()
    for n, row in enumerate(audience_failure_rows(campaign=campaign), start=1):
        writer.writerow([_safe(v) for v in row])
        if n % 500 == 0:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    if buf.tell():
        yield buf.getvalue()


PICKS = ("first", "longest", "failing")


def audience_pick_contact(*, campaign, pick: str = "first"):
    """A recipient to preview with: the first of the audience, the one whose message is longest,
    or the first whose message would fail. None when the audience is empty (or nothing fails)."""
    from campaigns.models import Contact

    params = campaign_params(campaign)
    checker = RecipientChecker(campaign.param_mapping, params)
    best_id, best_len = None, -1
    for pk, phone, name, attributes in audience_rows(campaign, 5000):
        if pick == "first":
            best_id = pk
            break
        if pick == "failing":
            if checker.check(phone, name, attributes):
                best_id = pk
                break
            continue
        length = sum(len(v) for v in checker.render(phone, name, attributes).values())
        if length > best_len:
            best_id, best_len = pk, length
    return Contact.objects.filter(pk=best_id).first() if best_id is not None else None


def template_campaigns(*, template, limit: int = 20):
    """Campaigns using this template, newest first (the preview can borrow their mapping)."""
    from campaigns.models import Campaign

    return Campaign.objects.filter(template=template).order_by("-created_at")[:limit]


def template_pick_contact(*, template, campaign=None, pick: str = "first", phone: str = ""):
    """The contact a template preview shows: by phone when given, else picked from the campaign's
    audience, else the newest contact."""
    from campaigns.models import Contact
    from providers.phones import normalize_phone

    if phone:
        normalized = normalize_phone(phone)
        return Contact.objects.filter(phone=normalized.phone).first() if normalized.phone else None
    if campaign is not None:
        return audience_pick_contact(campaign=campaign, pick=pick)
    return Contact.objects.order_by("-pk").first()
