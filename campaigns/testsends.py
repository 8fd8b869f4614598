"""A campaign's test send: the campaign's real content sent to a few phones before the real send
(the wizard's review step), through the campaign's own channel, as the campaign will send it.

What is shared with the real send, not copied:
- the request: campaigns.engine.send builds it (campaign_send_plan + campaign_outbound, from an
  unsaved Message), so template id, parameters in order, rendered text, OA, test mode and the
  campaign name are the campaign's;
- the parameters: a chosen contact's data through the campaign's mapping and the template's
  rules (templates_app.validation.RecipientChecker, as the audience validation and the preview
  render them), or values typed by the person, validated by the same rules;
- the phone: templates_app.testsend.channel_test_phone (normalized, a local number read in the
  channel's country, refused where the channel cannot reach it: providers/reach.py);
- whether the campaign may be sent at all: campaigns.engine.lifecycle.campaign_check_sendable.

Every phone becomes one CampaignTestSend row, never a Message: nothing is counted in the
campaign, its costs or its funnel. A user may make settings.LOA["TEST_SENDS_PER_DAY"] test sends
per local day; rows refused before sending (a mistyped number) do not count, since nothing went
out. The rows are claimed (outcome unknown) before the provider is called, so a worker that dies
mid-call leaves a counted row, as the engine leaves an attempt.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from campaigns.engine.lifecycle import campaign_check_sendable
from campaigns.engine.send import _Plan, campaign_outbound, campaign_send_plan
from campaigns.engine.validation import campaign_needs_contact_email, campaign_params
from campaigns.models import Campaign, CampaignTestSend, Contact, Message
from providers.base import ErrorClass, SendOutcome, SendResult
from providers.errors import explain
from providers.quota import oa_quota_spend
from providers.redact import redact_text
from providers.shared.errors import Refused
from templates_app.formatting import nfc
from templates_app.rendering import render_body
from templates_app.testsend import channel_test_phone
from templates_app.validation import RecipientChecker, validate_data

logger = logging.getLogger("loa.campaigns")

# Phones in one test: "at most a few numbers" (issue 17); the daily limit is the setting.
MAX_PHONES = 3
Outcome = CampaignTestSend.Outcome


def daily_test_send_limit() -> int:
    return max(0, int(settings.LOA.get("TEST_SENDS_PER_DAY", 5)))


def user_test_sends_today(*, user) -> int:
    """Test sends this user made since local midnight (Asia/Ho_Chi_Minh) that went to a
    provider (refusals before sending are free)."""
    now = timezone.localtime(timezone.now(), timezone.get_default_timezone())
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return (
        CampaignTestSend.objects.filter(user=user, created_at__gte=midnight)
        .exclude(outcome=Outcome.REFUSED)
        .count()
    )


def daily_test_sends_left(*, user) -> int:
    return max(0, daily_test_send_limit() - user_test_sends_today(user=user))


@dataclass(frozen=True)
class _Target:
    typed: str
    phone: str = ""  # normalized; "" when refused
    refusal: Refused | None = None


def campaign_test_send(
    *,
    campaign: Campaign,
    user,
    phones: list[str],
    contact: Contact | None = None,
    values: dict | None = None,
) -> list[CampaignTestSend]:
    """Send the campaign's message to these phones (at most MAX_PHONES), with the contact's data
    (the campaign's mapping applied) or the typed `values`. Returns one row per phone, in the
    order given: accepted, failed (the provider refused it), unknown (no clear answer) or
    refused before sending (the number is invalid or the channel cannot reach it).

    Raises Refused, and records nothing, when the test cannot be made at all: no phone, too
    many, the campaign is not sendable, the values break the template's rules, or the user's
    daily limit would be passed."""
    typed = _distinct(phones)
    if not typed:
        raise Refused(_("Enter at least one phone number."), code="no_phone")
    if len(typed) > MAX_PHONES:
        raise Refused(
            _("A test goes to at most {n} numbers.").format(n=MAX_PHONES), code="too_many_phones"
        )
    errors = campaign_check_sendable(campaign)
    if errors:
        raise Refused(" ".join(str(e) for e in errors), code="not_sendable")
    data = _test_data(campaign=campaign, contact=contact, values=values)
    email = _test_email(campaign=campaign, contact=contact)
    targets = [_target(campaign, raw) for raw in typed]
    plan = campaign_send_plan(campaign)
    rows = _claim(
        campaign=campaign,
        user=user,
        contact=contact,
        data=data,
        content=_content_text(campaign, plan, data),
        targets=targets,
    )
    pending = [r for r in rows if r.outcome == Outcome.UNKNOWN]
    if pending:
        _send(campaign=campaign, plan=plan, rows=pending, email=email)
    return rows


def _distinct(phones: list[str]) -> list[str]:
    seen, out = set(), []
    for raw in phones or []:
        text = str(raw or "").strip()
        if text and text not in seen:
            seen.add(text)
            out.append(text)
    return out


def _target(campaign: Campaign, raw: str) -> _Target:
    try:
        return _Target(typed=raw, phone=channel_test_phone(channel=campaign.channel, phone=raw))
    except Refused as exc:
        return _Target(typed=raw, refusal=exc)


def _test_data(*, campaign: Campaign, contact: Contact | None, values: dict | None) -> dict:
    """The template data: the contact's, rendered through the campaign's mapping, or the typed
    values; refused when the template's rules would refuse them (the real send skips such a
    recipient: a test must not pass where the campaign would not send)."""
    params = campaign_params(campaign)
    if contact is not None:
        checker = RecipientChecker(campaign.param_mapping or {}, params)
        problems = checker.check(contact.phone, contact.name, contact.attributes)
        if problems:
            raise Refused(
                _("Not sent: with this contact's data the template's rules fail: {errors}").format(
                    errors="; ".join(f"“{p}”: {problem.message}" for p, _v, problem in problems)
                ),
                code="invalid_values",
            )
        return checker.render(contact.phone, contact.name, contact.attributes)
    if not params:
        return {}
    if not values:
        raise Refused(
            _("Choose a contact whose data fills the message, or type the values."),
            code="no_values",
        )
    data = {p.name: nfc(str(values.get(p.name) or "").strip()) for p in params}
    errors = validate_data(params, data)
    if errors:
        raise Refused(
            _("Not sent, the template's rules refuse these values: {errors}").format(
                errors="; ".join(f"“{k}”: {v}" for k, v in errors.items())
            ),
            code="invalid_values",
        )
    return data


def _test_email(*, campaign: Campaign, contact: Contact | None) -> str:
    """An email campaign whose mapping names no address sends to the contact's own
    (campaigns.engine.send): the test does the same, and needs a contact that has one."""
    if not campaign_needs_contact_email(campaign):
        return ""
    email = Contact.email_of(contact.attributes) if contact is not None else ""
    if not email:
        raise Refused(
            _("An email is sent to the contact's address: choose a contact that has one."),
            code="no_email",
        )
    return email


def _claim(
    *,
    campaign: Campaign,
    user,
    contact: Contact | None,
    data: dict,
    content: str,
    targets: list[_Target],
) -> list[CampaignTestSend]:
    """Write the rows before any call: refused ones as refused, the others as unknown (counted
    against the daily limit from now on), checking the limit under a lock on the user's row so
    two tabs cannot both take the last test."""
    sendable = sum(1 for t in targets if t.refusal is None)
    with transaction.atomic():
        if user is not None and sendable:
            # One user's test sends in a row (PostgreSQL; SQLite writes one at a time anyway).
            get_user_model().objects.select_for_update().filter(pk=user.pk).first()
            used = user_test_sends_today(user=user)
            limit = daily_test_send_limit()
            if used + sendable > limit:
                raise Refused(
                    ngettext(
                        "You may send {limit} test a day and have {left} left today.",
                        "You may send {limit} tests a day and have {left} left today.",
                        limit,
                    ).format(limit=limit, left=max(0, limit - used)),
                    code="daily_limit",
                )
        rows = [
            CampaignTestSend(
                campaign=campaign,
                user=user,
                phone=t.phone or t.typed[:16],
                contact=contact,
                template_data=data,
                content=content,
                outcome=Outcome.REFUSED if t.refusal else Outcome.UNKNOWN,
                error_code=(t.refusal.code or "")[:40] if t.refusal else "",
                error_message=t.refusal.message[:500] if t.refusal else "",
            )
            for t in targets
        ]
        for row in rows:
            row.save()  # a few rows: save() keeps created_at and the pk on each
    return rows


def _content_text(campaign: Campaign, plan: _Plan, data: dict) -> str:
    """What the person reads on the campaign page: the text sent (SMS, Viber, email), or the
    template's preview text with the values in it (a ZNS is rendered by Zalo)."""
    if plan.body:
        return campaign_outbound(
            plan, Message(phone="", template_data=data, idempotency_key="preview")
        ).content
    return render_body(campaign.template.body, data) if campaign.template_id else ""


def _send(*, campaign: Campaign, plan: _Plan, rows: list[CampaignTestSend], email: str) -> None:
    provider = campaign.channel.account.get_provider()
    secret_values = provider.secret_values()
    try:
        for row in rows:
            message = Message(
                phone=row.phone,
                template_data=row.template_data,
                # Unique per attempt, alphanumeric (Zalo tracking_id: <=48 chars, no special
                # characters; eSMS RequestId <=50): never a campaign message's key.
                idempotency_key=f"loatest{secrets.token_hex(10)}",
            )
            try:
                result = provider.send(campaign_outbound(plan, message, email))
            except Exception as exc:  # shown in words, never a 500
                logger.exception("test send of campaign %s crashed", campaign.pk)
                result = SendResult.failed(ErrorClass.AMBIGUOUS, "adapter_error", str(exc)[:300])
            provider.pop_last_call()
            _record(row, result, secret_values)
            if result.outcome == SendOutcome.ACCEPTED and campaign.channel.official_account_id:
                # Zalo counts a test against the OA's daily quota like any ZNS.
                oa_quota_spend(oa_id=campaign.channel.official_account_id, count=1)
    finally:
        provider.close()


def _record(row: CampaignTestSend, result: SendResult, secret_values) -> None:
    if result.outcome == SendOutcome.ACCEPTED:
        row.outcome = Outcome.ACCEPTED
        row.provider_message_id = (result.provider_message_id or "")[:100]
    else:
        # An ambiguous answer (a 5xx, a timeout) may still have been sent: never resent.
        row.outcome = (
            Outcome.UNKNOWN if result.error_class == ErrorClass.AMBIGUOUS else Outcome.FAILED
        )
        row.error_code = (result.error_code or "")[:40]
        # A provider may echo our credentials in its error text; it is stored and shown.
        row.error_message = redact_text(result.error_message or "", secret_values)[:500]
    row.save(update_fields=["outcome", "provider_message_id", "error_code", "error_message"])


# ---- reads -------------------------------------------------------------------------------------


def campaign_test_sends(*, campaign: Campaign, limit: int = 50) -> QuerySet[CampaignTestSend]:
    """The campaign's test sends, newest first (the campaign page and the review step)."""
    return CampaignTestSend.objects.filter(campaign=campaign).select_related("user", "contact")[
        :limit
    ]


def explain_test_send(row: CampaignTestSend) -> str:
    """What happened, in the reader's language: the provider's code and text with its meaning
    (providers.errors.explain), or why Loa did not send it."""
    if row.outcome == Outcome.ACCEPTED:
        if row.provider_message_id:
            return _("Message id {id}.").format(id=row.provider_message_id)
        return ""
    if row.outcome == Outcome.REFUSED:
        return row.error_message
    code = row.error_code
    meaning = explain(code)
    if row.outcome == Outcome.UNKNOWN:
        if code.startswith("http_5"):
            what = _("The provider had a server error (HTTP {status}).").format(status=code[5:])
        else:
            what = meaning or row.error_message or _("No clear answer from the provider.")
        return _("{what} The test may still arrive; Loa never sends a test again.").format(
            what=what
        )
    parts = [p for p in (code, row.error_message) if p]
    text = " ".join(parts)
    if meaning and meaning != row.error_message:
        text = f"{text} ({meaning})" if text else meaning
    return text
