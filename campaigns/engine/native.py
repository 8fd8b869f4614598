"""The provider's own fallback (issue 19, a chain step in provider mode): step 0's one request
carries the step's SMS, and the provider sends it by itself when the ZNS fails (eTelecom
`enable_sms_on_zns_failure`, eSMS `MultiChannelMessage`). Built from the reference notes
(providers.md §1.2, §2.3), not from the seeds: docs/PROVIDERS.md "Fallback" says what is assumed.

Here: which step runs that way, and the SMS each step-0 message carries (NativeSms), rendered for
its recipient with the step's own mapping, exactly as Loa's own step would render it
(templates_app.rendering, .content). A recipient who opted out of the step's channel kind gets
no SMS leg: their request is a plain ZNS. What the provider then did is recorded by
campaigns.engine.legs.

Offered only where it exists (providers.fallback.NATIVE_FALLBACK: the previous step's provider
and channel kind) for step 1 with an SMS text; Loa's own sweep (campaigns.engine.fallback) and
the driver's lanes leave such a step alone (campaign_chain(native=False))."""

from __future__ import annotations

from django.utils.translation import gettext as _

from campaigns.engine.keys import idempotency_key
from campaigns.models import Campaign, Contact, FallbackStep, Message, OptOut
from providers.base import NativeSms
from providers.fallback import NATIVE_FALLBACK
from providers.models import ChannelKind
from templates_app.content import render_content
from templates_app.rendering import ContactData, render_params

PROVIDER = FallbackStep.Mode.PROVIDER


def native_offered(*, provider_kind: str, previous_kind: str, position: int) -> bool:
    """May step `position` after a channel of this provider and kind run as the provider's
    own fallback? Only step 1 after a ZNS channel of a provider that offers it."""
    return (
        position == 1 and previous_kind == ChannelKind.ZALO_ZNS and provider_kind in NATIVE_FALLBACK
    )


def native_step_errors(*, campaign: Campaign, step: FallbackStep) -> list[str]:
    """Why a step in provider mode cannot go as such (the wizard and the start's checks)."""
    if step.mode != PROVIDER:
        return []
    errors = []
    account = campaign.channel.account
    if not native_offered(
        provider_kind=account.kind, previous_kind=campaign.channel.kind, position=step.position
    ):
        errors.append(
            _(
                "Fallback step {n}: the provider of “{channel}” offers no fallback of its own; "
                "choose Loa's own fallback."
            ).format(n=step.position, channel=campaign.channel.name)
        )
    if step.channel.kind != ChannelKind.SMS:
        errors.append(
            _("Fallback step {n}: the provider's own fallback sends an SMS only.").format(
                n=step.position
            )
        )
    if step.template_id is not None and step.template.channel_kind != ChannelKind.SMS:
        errors.append(
            _("Fallback step {n}: the provider's own fallback needs an SMS text.").format(
                n=step.position
            )
        )
    if account.kind == "esms" and not str((account.settings or {}).get("sms_brandname") or ""):
        errors.append(
            _(
                "Fallback step {n}: eSMS's own fallback needs the account's SMS brandname "
                "(setting sms_brandname)."
            ).format(n=step.position)
        )
    return errors


def campaign_native_step(campaign_id: int) -> FallbackStep | None:
    """Step 1 when it runs as the provider's own fallback, else None (one query)."""
    return (
        FallbackStep.objects.filter(campaign_id=campaign_id, position=1, mode=PROVIDER)
        .select_related("channel", "template")
        .first()
    )


def _body(step: FallbackStep) -> tuple[str, bool]:
    """The step's text and whether to strip diacritics: its free text, else its SMS template's
    body (a template Loa holds the text of)."""
    if step.content:
        return step.content, False
    template = step.template
    if template is not None and template.channel_kind == ChannelKind.SMS:
        return template.body, bool(template.strip_diacritics)
    return "", False


def native_fallbacks(
    *, campaign: Campaign, step: FallbackStep, messages: list[Message]
) -> dict[int, NativeSms]:
    """{message id: the SMS its request carries} for a batch of step-0 messages: one query for
    the contacts and one for their opt-outs of the step's channel kind."""
    body, strip = _body(step)
    if not body or not messages:
        return {}
    contact_ids = {m.contact_id for m in messages}
    opted_out = set(
        OptOut.objects.filter(
            contact_id__in=contact_ids, channel_kind__in=[step.channel.kind, OptOut.ALL]
        ).values_list("contact_id", flat=True)
    )
    contacts = {
        pk: ContactData(phone=phone, name=name, attributes=attributes or {}, contact_id=pk)
        for pk, phone, name, attributes in Contact.objects.filter(
            pk__in=contact_ids - opted_out
        ).values_list("pk", "phone", "name", "attributes")
    }
    out: dict[int, NativeSms] = {}
    for msg in messages:
        contact = contacts.get(msg.contact_id)
        if contact is None:
            continue
        data = render_params(step.param_mapping or {}, contact)
        text = render_content(
            channel_kind=ChannelKind.SMS, body=body, data=data, strip_diacritics=strip
        ).text
        if not text.strip():
            continue
        out[msg.pk] = NativeSms(
            content=text,
            idempotency_key=idempotency_key(campaign, msg.contact_id, step.position),
            unicode=not text.isascii(),
        )
    return out
