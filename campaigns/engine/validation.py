"""Audience validation: the campaign's mapping rendered and checked for every recipient, before
anything is sent (nothing is stored).

templates_app checks one recipient (templates_app.validation.RecipientChecker: the mapping and the
param rules compiled once); this module walks the campaign's audience (campaigns.engine.audience)
with it: the summary the wizard shows, the downloadable report of every failing row, the ids of
failing recipients, and the recipient the template preview shows (the RecipientSource installed
into templates_app's preview in CampaignsConfig.ready).
"""

from __future__ import annotations

import csv
import io
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from django.db.models import QuerySet
from django.utils.translation import gettext as _

from campaigns.engine.audience import campaign_audience
from campaigns.engine.reach import campaign_reach, unreachable_reason
from campaigns.models import Campaign, Contact
from providers.models import ChannelKind
from providers.shared.phones import format_local, normalize_phone, phone_country
from providers.shared.text import csv_safe
from templates_app.models import Template
from templates_app.params import ParamSpec, template_params
from templates_app.preview import RecipientSource, SavedMapping
from templates_app.rendering import ContactData, placeholders, validate_mapping
from templates_app.validation import Problem, RecipientChecker

SAMPLE_LIMIT = 20


def campaign_params(campaign: Campaign) -> list:
    """What the campaign's mapping must fill: its template's params, or for free content (no
    template) a plain-text param per {{placeholder}}."""
    if campaign.template_id:
        return template_params(template=campaign.template)
    return [ParamSpec(n) for n in placeholders(campaign.content)]


@dataclass
class ValidationSummary:
    total: int = 0
    ok: int = 0
    failing: int = 0
    # (param, code, reason) -> recipients
    reasons: Counter = field(default_factory=Counter)
    samples: list[dict] = field(default_factory=list)
    mapping_errors: list[str] = field(default_factory=list)
    failing_ids: list[int] | None = None
    seconds: float = 0.0
    # Recipients the channel cannot reach (campaigns.engine.reach), per country: not checked
    # against the template (they are never sent), so neither ok nor failing counts them.
    unreachable: int = 0
    unreachable_by_country: Counter = field(default_factory=Counter)

    def reason_rows(self) -> list[dict]:
        return [
            {"param": p, "code": c, "reason": r, "count": n}
            for (p, c, r), n in self.reasons.most_common()
        ]

    def as_dict(self) -> dict:
        return {
            "total": self.total,
            "ok": self.ok,
            "failing": self.failing,
            "reasons": self.reason_rows(),
            "samples": self.samples,
            "mapping_errors": self.mapping_errors,
            "seconds": round(self.seconds, 3),
            "unreachable": self.unreachable,
            "unreachable_by_country": dict(self.unreachable_by_country),
        }


def audience_rows(campaign: Campaign, chunk: int = 5000) -> Iterator[tuple[int, str, str, dict]]:
    """(contact id, phone, name, attributes) of every recipient, in id order, streamed."""
    qs = campaign_audience(campaign).order_by("pk").values_list("pk", "phone", "name", "attributes")
    return qs.iterator(chunk_size=chunk)


class _EmailRecipientChecker(RecipientChecker):
    """An email campaign whose mapping gives no address: the message goes to the contact's own
    (campaigns.engine.send, Contact.email_of), so a contact without one fails too."""

    def __init__(self, mapping: dict | None, params: list):
        super().__init__(mapping, params)
        self.no_email = Problem(
            "no_email", _("no email address (the contact has no email attribute)")
        )

    def check(self, phone: str, name: str, attributes: dict | None):
        problems = super().check(phone, name, attributes)
        if not Contact.email_of(attributes):
            problems = [*(problems or []), ("email", "", self.no_email)]
        return problems


def campaign_needs_contact_email(campaign: Campaign) -> bool:
    """An email campaign whose mapping names no address parameter (the provider account's
    "email_field", default "email"): each contact's own address is used."""
    if campaign.channel.kind != ChannelKind.EMAIL:
        return False
    field_name = str((campaign.channel.account.settings or {}).get("email_field") or "email")
    return field_name not in (campaign.param_mapping or {})


def _checker(campaign: Campaign) -> RecipientChecker:
    cls = _EmailRecipientChecker if campaign_needs_contact_email(campaign) else RecipientChecker
    return cls(campaign.param_mapping, campaign_params(campaign))


def audience_validate(
    *,
    campaign: Campaign,
    sample_limit: int = 20,
    collect_failing_ids: bool = False,
    chunk: int = 5000,
) -> ValidationSummary:
    """Render and check the mapping for every recipient of the campaign's audience.

    Nothing is stored: the summary counts recipients that pass and fail, groups failures by
    (param, reason), and keeps up to `sample_limit` failing rows to show. Recipients the
    channel cannot reach are counted apart, per country, and not checked further: the reach is
    one `str.startswith` over the calling-code prefixes per row (no phone parsing), and
    phone_country only for the rows it excludes.
    """
    started = time.monotonic()
    checker = _checker(campaign)
    prefixes = campaign_reach(campaign).prefixes
    unreachable: Counter = Counter()
    summary = ValidationSummary(failing_ids=[] if collect_failing_ids else None)
    summary.mapping_errors = validate_mapping(campaign.param_mapping or {}, checker.names)
    reasons = summary.reasons
    samples = summary.samples
    failing_ids = summary.failing_ids
    total = failing = 0
    check = checker.check
    for pk, phone, name, attributes in audience_rows(campaign, chunk):
        total += 1
        if prefixes is not None and not phone.startswith(prefixes):
            unreachable[phone_country(phone)] += 1
            continue
        problems = check(phone, name, attributes)
        if problems is None:
            continue
        failing += 1
        if failing_ids is not None:
            failing_ids.append(pk)
        for pname, value, problem in problems:
            reasons[(pname, problem.code, problem.message)] += 1
            if len(samples) < sample_limit:
                samples.append(
                    {
                        "contact_id": pk,
                        "phone": phone,
                        "name": name,
                        "param": pname,
                        "value": value,
                        "reason": problem.message,
                    }
                )
    summary.unreachable_by_country = unreachable
    summary.unreachable = sum(unreachable.values())
    summary.total, summary.failing = total, failing
    summary.ok = total - failing - summary.unreachable
    summary.seconds = time.monotonic() - started
    return summary


def audience_failing_contact_ids(*, campaign: Campaign) -> list[int]:
    """Ids of recipients whose message would fail validation (to exclude them)."""
    return audience_validate(
        campaign=campaign, sample_limit=0, collect_failing_ids=True
    ).failing_ids


def audience_failure_rows(
    *, campaign: Campaign, chunk: int = 5000, unreachable: bool = False
) -> Iterator[tuple]:
    """(contact_id, phone, name, param, value, reason) for every failing param of every recipient,
    streamed. Recipients the channel cannot reach are not checked against the template: with
    `unreachable` (the downloadable report) each is one row, param "", with why; without
    (what materialization skips as invalid) they are left out."""
    checker = _checker(campaign)
    reach = campaign_reach(campaign)
    prefixes = reach.prefixes
    for pk, phone, name, attributes in audience_rows(campaign, chunk):
        if prefixes is not None and not phone.startswith(prefixes):
            if unreachable:
                yield pk, phone, name, "", "", unreachable_reason(reach, phone_country(phone))
            continue
        problems = checker.check(phone, name, attributes)
        if problems:
            for pname, value, problem in problems:
                yield pk, phone, name, pname, value, problem.message


def campaign_validation_summary(*, campaign: Campaign) -> dict:
    """What would fail if this campaign were sent now, per recipient and parameter.

    {"total", "ok", "failing", "reasons": [{"param", "code", "reason", "count"}],
     "samples": [{"contact_id", "phone", "name", "param", "value", "reason"}] (at most 20),
     "mapping_errors": [...], "seconds"}. `count` is the number of recipients failing that way.
    """
    return audience_validate(campaign=campaign, sample_limit=SAMPLE_LIMIT).as_dict()


def campaign_validation_report_rows(
    *, campaign: Campaign, on_done: Callable[[int, bool], None] | None = None
) -> Iterator[str]:
    """CSV (UTF-8 with BOM for Excel) of every failing parameter of every recipient, streamed;
    every cell through the formula guard. `on_done(rows, complete)` is called when the stream
    ends (the audit trail's row count)."""
    sent, complete = 0, False
    try:
        for chunk, rows in _validation_report_chunks(campaign):
            sent = rows  # counted when handed over: a cut download counts what it got
            yield chunk
        complete = True
    finally:
        if on_done is not None:
            on_done(sent, complete)


def _validation_report_chunks(campaign: Campaign) -> Iterator[tuple[str, int]]:
    n = 0
    buf = io.StringIO()
    writer = csv.writer(buf)
    # The stored phone (as sent, international) and, beside it, as people write it locally.
    writer.writerow(
        [
            _("contact id"),
            _("phone"),
            _("phone (local)"),
            _("name"),
            _("parameter"),
            _("value"),
            _("reason"),
        ]
    )
    yield "\ufeff" + buf.getvalue(), 0
    buf.seek(0)
    buf.truncate()
    rows = audience_failure_rows(campaign=campaign, unreachable=True)
    for n, (pk, phone, *rest) in enumerate(rows, start=1):  # noqa: B007
        writer.writerow([csv_safe(v) for v in (pk, phone, format_local(phone), *rest)])
        if n % 500 == 0:
            yield buf.getvalue(), n
            buf.seek(0)
            buf.truncate()
    if buf.tell():
        yield buf.getvalue(), n


# ---- the recipient a template preview shows ----------------------------------------------------


def audience_pick_contact(*, campaign: Campaign, pick: str = "first") -> Contact | None:
    """A recipient to preview with: the first of the audience, the one whose message is longest,
    or the first whose message would fail. None when the audience is empty (or nothing fails)."""
    checker = _checker(campaign)
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


def template_campaigns(*, template: Template, limit: int = 20) -> QuerySet[Campaign]:
    """Campaigns using this template, newest first (the preview can borrow their mapping)."""
    return Campaign.objects.filter(template=template).order_by("-created_at")[:limit]


def preview_contact_pick(
    *, campaign: Campaign | None = None, pick: str = "first", phone: str = ""
) -> Contact | None:
    """The contact a template preview shows: by phone when given, else picked from the campaign's
    audience, else the newest contact."""
    if phone:
        normalized = normalize_phone(phone)
        return Contact.objects.filter(phone=normalized.phone).first() if normalized.phone else None
    if campaign is not None:
        return audience_pick_contact(campaign=campaign, pick=pick)
    return Contact.objects.order_by("-pk").first()


def contact_data(contact: Contact) -> ContactData:
    """The plain data templates_app renders for one contact."""
    return ContactData(
        phone=contact.phone or "",
        name=contact.name or "",
        attributes=contact.attributes or {},
        contact_id=contact.pk,
    )


class CampaignRecipients(RecipientSource):
    """The template preview's real recipients: campaigns using the template lend their mapping
    and audience; a phone finds any contact. Installed in CampaignsConfig.ready."""

    def saved_mappings(self, *, template: Template) -> list[SavedMapping]:
        return [
            SavedMapping(pk=c.pk, name=c.name, mapping=c.param_mapping or {})
            for c in template_campaigns(template=template)
        ]

    def recipient(
        self, *, template: Template, saved: SavedMapping | None, pick: str, phone: str
    ) -> ContactData | None:
        campaign = None
        if saved is not None and not phone:
            campaign = (
                Campaign.objects.select_related("template", "channel")
                .filter(pk=saved.pk, template=template)
                .first()
            )
        contact = preview_contact_pick(campaign=campaign, pick=pick, phone=phone)
        return contact_data(contact) if contact is not None else None
