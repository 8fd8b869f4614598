"""Sending one batch of claimed messages: each becomes the provider's OutboundMessage, the calls
go out concurrently (paced when the campaign has a rate), and every answer is recorded in bulk
(campaigns.engine.results).

What a message says comes from one of three places (_Plan):
- a provider template (every Zalo ZNS template, and a template synced from the provider): the
  provider renders it from its id and the parameters;
- a content template (SMS, Viber, email, entered in Loa): its body and subject, rendered here for
  each recipient with the message's frozen data;
- free text typed in the campaign (Campaign.content, and Campaign.subject for an email),
  rendered the same way.
An email goes to the contact's email attribute (Contact.email_of) unless a mapped parameter named
by the provider's email field gives the address."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.utils import timezone

from campaigns.engine.keys import idempotency_key_step
from campaigns.engine.legs import legs_record
from campaigns.engine.native import campaign_native_step, native_fallbacks
from campaigns.engine.outage import Breaker
from campaigns.engine.pacer import RatePacer
from campaigns.engine.results import BatchOutcome, messages_record_results
from campaigns.models import Campaign, Contact, Message
from providers.base import (
    BaseProvider,
    ErrorClass,
    NativeSms,
    OutboundMessage,
    SendOutcome,
    SendResult,
)
from providers.models import ChannelKind
from providers.quota import oa_quota_spend
from providers.redact import redact_text
from templates_app.content import render_content

logger = logging.getLogger("loa.engine")


@dataclass(frozen=True)
class _Plan:
    """What every message of the campaign shares, worked out once per batch."""

    channel_kind: str
    template_id: str  # "" unless the provider knows the template by its id
    body: str  # content to render per recipient ("" for a provider template of ZNS)
    subject: str
    strip_diacritics: bool
    param_order: tuple[str, ...]
    oa_id: str
    channel_external_id: str
    test_mode: bool
    campaign_name: str = ""  # eSMS campaignid (seed 003: "The campaign name of request")
    application_id: int | None = None  # MMP applicationId of the channel (Channel.settings)
    price: Decimal | None = None  # the template's price (the sandbox charges it)


def campaign_send_plan(campaign: Campaign) -> _Plan:
    """Where this campaign's messages take their text from (see the module docstring)."""
    channel, template = campaign.channel, campaign.template
    zns = channel.kind == ChannelKind.ZALO_ZNS
    body, template_id = "", ""
    subject = template.subject if template is not None else ""
    if template is not None and (zns or template.sent_by_id):
        template_id = template.provider_template_id
    if not zns:
        if campaign.content:
            # Text typed in the campaign wins, with its own subject (an email's).
            body, template_id, subject = campaign.content, "", campaign.subject
        elif template is not None and template.channel_kind != ChannelKind.ZALO_ZNS:
            body = template.body  # a content template (also rendered when synced: email needs it)
    return _Plan(
        channel_kind=channel.kind,
        template_id=template_id,
        body=body,
        subject=subject,
        strip_diacritics=bool(template and template.strip_diacritics),
        param_order=template.ordered_param_names() if template is not None else (),
        oa_id=channel.official_account.oa_id if channel.official_account_id else "",
        channel_external_id=channel.external_id,
        test_mode=campaign.test_mode,
        campaign_name=campaign.name,
        application_id=channel.application_id,
        price=template.price if template is not None else None,
    )


def _outbound(
    plan: _Plan, message: Message, email: str = "", fallback_sms: NativeSms | None = None
) -> OutboundMessage:
    data = message.template_data or {}
    content, subject = "", ""
    if plan.body:
        # Placeholders filled per recipient from the frozen data; email HTML sanitized
        # (templates_app.content).
        rendered = render_content(
            channel_kind=plan.channel_kind,
            body=plan.body,
            data=data,
            subject=plan.subject,
            strip_diacritics=plan.strip_diacritics,
        )
        content = rendered.outbound
        subject = rendered.subject
    return OutboundMessage(
        idempotency_key=message.idempotency_key,
        phone=message.phone,
        template_id=plan.template_id,
        template_data=data,
        param_order=plan.param_order,
        channel_kind=plan.channel_kind,
        oa_id=plan.oa_id,
        channel_external_id=plan.channel_external_id,
        test_mode=plan.test_mode,
        content=content,
        subject=subject,
        email=email,
        campaign_name=plan.campaign_name,
        application_id=plan.application_id,
        price=plan.price,
        fallback_sms=fallback_sms,
    )


# The one way a campaign's message becomes the provider's request. A campaign's test send
# (campaigns.testsends) builds its request with it from an unsaved Message, so the test carries
# exactly what the real send will.
campaign_outbound = _outbound


def _emails(plan: _Plan, messages: list[Message]) -> dict[int, str]:
    """Email campaigns: each contact's address, in one query for the batch."""
    if plan.channel_kind != ChannelKind.EMAIL:
        return {}
    rows = Contact.objects.filter(pk__in={m.contact_id for m in messages}).values_list(
        "pk", "attributes"
    )
    return {pk: Contact.email_of(attributes) for pk, attributes in rows}


def _each_concurrently(one, messages: list, pool: ThreadPoolExecutor, workers: int) -> list:
    """one(message) for every message, `workers` at a time, results in the messages' order.
    Each of `workers` tasks takes the next message until none is left: a batch of 400 costs 40
    futures, not 400 (a Future, its Condition and its wake-up per message were a tenth of a
    driver's CPU once the HTTP client was lean). Same concurrency, same calls."""
    results: list = [None] * len(messages)
    queue = iter(enumerate(messages))
    lock = threading.Lock()

    def drain() -> None:
        while True:
            with lock:  # each message goes to exactly one task
                item = next(queue, None)
            if item is None:
                return
            results[item[0]] = one(item[1])

    tasks = [pool.submit(drain) for _ in range(min(workers, len(messages)))]
    for task in tasks:
        task.result()  # re-raises what a task raised, as pool.map did
    return results


def messages_send_batch(
    *,
    campaign: Campaign,
    provider: BaseProvider,
    messages: list[Message],
    pacer: RatePacer | None = None,
    pool: ThreadPoolExecutor | None = None,
    breaker: Breaker | None = None,
) -> BatchOutcome:
    """Send claimed messages concurrently, then write every result in bulk. A driver passes its
    own `pool`, kept for all its batches (starting and joining 40 threads per batch of 400 was
    a twentieth of its CPU), and its `breaker`: once it is open (the provider cannot be
    reached), the rest of the batch is not attempted."""
    plan = campaign_send_plan(campaign)
    emails = _emails(plan, messages)
    # ---- provider-native fallback (issue 19): step 0's requests carry the step's SMS ----
    natives = {}
    # The lane's step from its key (no deferred column read): only step 0 carries a leg.
    first_step = idempotency_key_step(messages[0].idempotency_key) if messages else None
    native_step = campaign_native_step(campaign.pk) if first_step == 0 else None
    if native_step is not None:
        natives = native_fallbacks(campaign=campaign, step=native_step, messages=messages)
    # ----
    breaker = breaker or Breaker()
    breaker.start_batch()
    secrets = provider.secret_values()

    def one(msg: Message) -> tuple[Message, SendResult | None, object]:
        if breaker.open:
            return msg, None, None  # not attempted: back to pending as it was
        if pacer:
            pacer.wait()
        msg.sent_at = timezone.now()  # when the request left, for rate accounting and the charts
        try:
            result = provider.send(
                _outbound(plan, msg, emails.get(msg.contact_id, ""), natives.get(msg.pk))
            )
        except Exception as exc:  # a bug in an adapter must not lose the claim: reconcile it
            logger.exception("provider %s crashed on message %s", provider.kind, msg.pk)
            result = SendResult.failed(ErrorClass.AMBIGUOUS, "adapter_error", str(exc)[:300])
        if result.error_message:
            # A provider may echo our credentials in its error text; it is stored and shown.
            result.error_message = redact_text(result.error_message, secrets)
        call = provider.pop_last_call()
        breaker.record(result, call)
        return msg, result, call

    workers = max(1, int(settings.LOA["SEND_CONCURRENCY"]))
    if len(messages) == 1 or workers == 1:
        results = [one(m) for m in messages]
    elif pool is not None:
        results = _each_concurrently(one, messages, pool, workers)
    else:
        with ThreadPoolExecutor(max_workers=min(workers, len(messages))) as own:
            results = _each_concurrently(one, messages, own, workers)
    # What the provider's own fallback did, as the step's rows (campaigns.engine.legs), BEFORE
    # step 0's results: once a step-0 row is final it is never polled again, so a worker killed
    # between the two must leave it `sending` (reaped, reconciled, its leg recorded from the
    # poll), not final with its SMS leg unrecorded. Recording a leg twice builds one row.
    legs = [leg for _m, r, _c in results if r is not None for leg in r.legs]
    if legs:
        legs_record(account_id=campaign.channel.account_id, events=legs)
    outcome = messages_record_results(
        campaign_id=campaign.pk,
        results=results,
        breaker=breaker,
        api=campaign.origin == Campaign.Origin.API,
    )
    if campaign.channel.official_account_id:
        # What Zalo accepted counts against the OA's daily quota now, not at the next sync.
        accepted = sum(1 for _m, r, _c in results if r and r.outcome == SendOutcome.ACCEPTED)
        oa_quota_spend(oa_id=campaign.channel.official_account_id, count=accepted)
    provider.after_batch()
    return outcome
