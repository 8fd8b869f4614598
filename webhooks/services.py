"""Webhook intake: store raw first, parse with the provider module, apply through campaigns.

Answers: 200 for accepted, duplicate, unmatched or unsupported events (so providers stop
retrying); 400 for a malformed body; 404 for an unknown token. Never a 500 for bad input.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from campaigns.services import message_apply_event, message_find
from providers.base import ParsedWebhook, WebhookRejected, WebhookRequest
from providers.models import ProviderAccount, SandboxCallback
from webhooks.models import InboundMessage, Lease, WebhookEvent

logger = logging.getLogger("loa.webhooks")

OUT = WebhookEvent.Outcome
# Headers worth keeping for diagnosis; never cookies or authorization.
KEPT_HEADERS = (
    "content-type",
    "user-agent",
    "x-zevent-signature",
    "x-forwarded-for",
    "x-request-id",
)
MAX_BODY = 256 * 1024


@dataclass
class Answer:
    status: int
    outcome: str
    detail: str = ""


def webhook_receive(
    *,
    account: ProviderAccount,
    method: str,
    query: dict[str, str],
    body: bytes,
    headers: dict[str, str],
    remote_addr: str | None = None,
) -> Answer:
    kept = {k.lower(): v[:500] for k, v in headers.items() if k.lower() in KEPT_HEADERS}
    if len(body) > MAX_BODY:
        event = WebhookEvent.objects.create(
            account=account,
            method=method[:8],
            query=urlencode(query)[:10000],
            body="",
            headers=kept,
            remote_addr=remote_addr,
            outcome=OUT.REJECTED,
            outcome_detail="Body too large",
            processed_at=timezone.now(),
        )
        return Answer(413, OUT.REJECTED, "Body too large")
    text = body.decode("utf-8", errors="replace")
    event = WebhookEvent.objects.create(
        account=account,
        method=method[:8],
        query=urlencode(query)[:10000],
        body=text,
        headers=kept,
        remote_addr=remote_addr,
    )
    ProviderAccount.objects.filter(pk=account.pk).update(last_callback_at=event.received_at)
    return webhook_event_process(
        event=event,
        account=account,
        request=WebhookRequest(method=method, query=query, body=body, headers=kept),
    )


def webhook_event_process(
    *, event: WebhookEvent, account: ProviderAccount, request: WebhookRequest
) -> Answer:
    provider = account.get_provider()
    try:
        parsed = provider.parse_webhook(request)
    except WebhookRejected as exc:
        _finish(event, OUT.REJECTED, str(exc))
        return Answer(exc.status, OUT.REJECTED, str(exc))
    except Exception as exc:  # a parser bug must not become a 500 the provider retries forever
        logger.exception("webhook parser of %s crashed on event %s", account.kind, event.pk)
        _finish(event, OUT.REJECTED, f"Parser error: {type(exc).__name__}")
        return Answer(400, OUT.REJECTED, "Could not parse the callback")

    if parsed.dedupe_key:
        try:
            with transaction.atomic():
                WebhookEvent.objects.filter(pk=event.pk).update(dedupe_key=parsed.dedupe_key[:120])
        except IntegrityError:
            _finish(event, OUT.DUPLICATE, parsed.dedupe_key[:120])
            return Answer(200, OUT.DUPLICATE)
        event.dedupe_key = parsed.dedupe_key[:120]
    return _apply(event, account, parsed)


def _apply(event: WebhookEvent, account: ProviderAccount, parsed: ParsedWebhook) -> Answer:
    if not parsed.statuses and not parsed.inbound:
        _finish(event, OUT.IGNORED, parsed.ignored_reason or "No status or message in this event")
        return Answer(200, OUT.IGNORED)
    unmatched = 0
    applied = 0
    message_id = None
    for st in parsed.statuses:
        mid = message_find(
            account_id=account.pk,
            provider_message_id=st.provider_message_id,
            idempotency_key=st.idempotency_key,
        )
        if mid is None:
            unmatched += 1
            continue
        message_id = mid
        applied += int(message_apply_event(message_id=mid, event=st))
    for inbound in parsed.inbound:
        inbound_store(account=account, event=event, inbound=inbound)
    if unmatched:
        _finish(
            event,
            OUT.UNMATCHED,
            f"{unmatched} status(es) for a message not recorded (yet)",
            message_id,
        )
        return Answer(200, OUT.UNMATCHED)
    detail = (
        f"{applied} status change(s)"
        if parsed.statuses
        else f"{len(parsed.inbound)} inbound message(s)"
    )
    _finish(event, OUT.APPLIED, detail, message_id)
    return Answer(200, OUT.APPLIED)


def _finish(
    event: WebhookEvent, outcome: str, detail: str = "", message_id: int | None = None
) -> None:
    WebhookEvent.objects.filter(pk=event.pk).update(
        outcome=outcome,
        outcome_detail=detail[:500],
        message_id=message_id,
        processed_at=timezone.now(),
        attempts=event.attempts + 1,
    )
    event.outcome = outcome


OPT_OUT_KEYWORDS_DEFAULT = ("TU CHOI", "TUCHOI", "HUY", "STOP", "UNSUBSCRIBE")


def inbound_store(
    *, account: ProviderAccount, event: WebhookEvent | None, inbound
) -> InboundMessage:
    from campaigns.models import Contact, OptOut
    from providers.models import Channel
    from providers.phones import normalize_phone

    phone = normalize_phone(inbound.phone).phone if inbound.phone else None
    contact = Contact.objects.filter(phone=phone).first() if phone else None
    channel = None
    if inbound.channel_external_id:
        channel = Channel.objects.filter(
            account=account, external_id=inbound.channel_external_id
        ).first()
    keywords = settings.LOA.get("OPT_OUT_KEYWORDS") or OPT_OUT_KEYWORDS_DEFAULT
    from campaigns.text import fold

    normalized = fold(inbound.text).upper().strip(" .!")
    opted = normalized in {fold(k).upper() for k in keywords}
    msg = InboundMessage.objects.create(
        account=account,
        channel=channel,
        contact=contact,
        sender=inbound.sender[:100],
        sender_name=inbound.name[:200],
        phone=phone or "",
        text=inbound.text,
        provider_message_id=inbound.provider_message_id[:100],
        opted_out=opted,
        event=event,
    )
    if opted and contact is not None:
        OptOut.objects.get_or_create(
            contact=contact,
            channel_kind=channel.kind if channel else OptOut.ALL,
            defaults={"reason": inbound.text[:300], "source": OptOut.Source.REPLY},
        )
    return msg


def webhook_event_reprocess(*, event_id: int) -> Answer:
    """Parse and apply a stored event again (admin "re-apply", scheduler for unmatched)."""
    event = WebhookEvent.objects.select_related("account").get(pk=event_id)
    from urllib.parse import parse_qsl

    query = dict(parse_qsl(event.query, keep_blank_values=True))
    request = WebhookRequest(
        method=event.method, query=query, body=event.body.encode(), headers=event.headers
    )
    provider = event.account.get_provider()
    try:
        parsed = provider.parse_webhook(request)
    except Exception as exc:
        _finish(event, OUT.REJECTED, str(exc)[:300])
        return Answer(400, OUT.REJECTED, str(exc))
    return _apply(event, event.account, parsed)


def webhook_events_reapply(*, limit: int = 500) -> int:
    """Unmatched events are tried again; those older than the retention window are marked
    expired (visible in the admin), never silently dropped."""
    window = timedelta(hours=settings.LOA.get("UNMATCHED_RETENTION_HOURS", 72))
    cutoff = timezone.now() - window
    WebhookEvent.objects.filter(outcome=OUT.UNMATCHED, received_at__lt=cutoff).update(
        outcome=OUT.EXPIRED,
        outcome_detail="No matching message appeared within the retention window",
    )
    applied = 0
    for event_id in (
        WebhookEvent.objects.filter(outcome=OUT.UNMATCHED)
        .order_by("received_at")
        .values_list("id", flat=True)[:limit]
    ):
        applied += int(webhook_event_reprocess(event_id=event_id).outcome == OUT.APPLIED)
    return applied


# ---- the sandbox provider's callbacks ----------------------------------------------------------


def lease_acquire(name: str, seconds: float) -> str | None:
    holder = uuid.uuid4().hex
    now = timezone.now()
    until = now + timedelta(seconds=seconds)
    Lease.objects.get_or_create(name=name, defaults={"until": now - timedelta(seconds=1)})
    got = Lease.objects.filter(name=name, until__lt=now).update(holder=holder, until=until)
    return holder if got else None


def lease_release(name: str, holder: str) -> None:
    Lease.objects.filter(name=name, holder=holder).update(
        until=timezone.now() - timedelta(seconds=1)
    )


def sandbox_callbacks_waiting() -> bool:
    return SandboxCallback.objects.exists()


def sandbox_callbacks_deliver(*, limit: int = 1000) -> int:
    """Deliver due sandbox callbacks as if the provider had POSTed them to our webhook URL."""
    delivered = 0
    due = list(
        SandboxCallback.objects.filter(due_at__lte=timezone.now())
        .select_related("account")
        .order_by("due_at")[:limit]
    )
    for cb in due:
        # Claim by deleting: two pumps never deliver the same callback.
        if not SandboxCallback.objects.filter(pk=cb.pk).delete()[0]:
            continue
        webhook_receive(
            account=cb.account,
            method="POST",
            query={},
            body=json.dumps(cb.payload).encode(),
            headers={"Content-Type": "application/json", "User-Agent": "Loa-Sandbox"},
            remote_addr="127.0.0.1",
        )
        delivered += 1
    return delivered
