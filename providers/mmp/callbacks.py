"""What the seeds document about MMP (000 VNA, 001 Metfone), exactly: the two webhook payloads
(broadcast status and conversation message) and the status vocabulary they use. Get Message
Status answers are read with the same vocabulary.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from providers import zalo
from providers.base import (
    EventStatus,
    InboundEvent,
    ParsedWebhook,
    StatusEvent,
    WebhookRejected,
    WebhookRequest,
)

# Documented by the seeds (not assumed): webhook `status` 1 PENDING 2 SENT 3 FAIL 4 DELIVERED
# 5 READ, and `cause` READ / DELIVERED / FAIL / SEND.
STATUS_CODES = {
    1: EventStatus.SENT,  # PENDING at the platform: accepted, not yet handed to the channel
    2: EventStatus.SENT,
    3: EventStatus.FAILED,
    4: EventStatus.DELIVERED,
    5: EventStatus.READ,
}
CAUSES = {
    "READ": EventStatus.READ,
    "DELIVERED": EventStatus.DELIVERED,
    "FAIL": EventStatus.FAILED,
    "FAILED": EventStatus.FAILED,
    "SEND": EventStatus.SENT,
    "SENT": EventStatus.SENT,
    "PENDING": EventStatus.SENT,
}


def status_of(status: Any, cause: Any) -> EventStatus:
    """Status 1..5 first (documented enum), the cause string otherwise; unknown -> UNKNOWN."""
    code = zalo.to_int(status)
    if code in STATUS_CODES:
        return STATUS_CODES[code]
    if isinstance(status, str) and status.strip().upper() in CAUSES:
        return CAUSES[status.strip().upper()]
    return CAUSES.get(str(cause or "").strip().upper(), EventStatus.UNKNOWN)


def webhook_parse(request: WebhookRequest, *, kind: str) -> ParsedWebhook:
    """One MMP webhook request (a payload or a list of them) -> statuses and inbound replies."""
    if request.method != "POST":
        return ParsedWebhook(ignored_reason="MMP webhooks are POST requests")
    try:
        data = json.loads(request.body or b"")
    except (ValueError, UnicodeDecodeError) as exc:
        raise WebhookRejected("Body is not JSON") from exc
    items = data if isinstance(data, list) else [data]
    if not items or not all(isinstance(i, dict) for i in items):
        raise WebhookRejected("Expected a JSON object (or a list of objects)")
    parsed = ParsedWebhook()
    reasons = []
    for item in items:
        # The two payloads reuse `type` with different meanings (broadcast: 1 Broadcast,
        # 2 Conversation; conversation: 1 EVENT, 2 MESSAGE, 3 TEMPLATE, 4 CHANNEL), so they are
        # told apart by shape: a conversation message has `from` and a `message` object.
        if "from" in item and isinstance(item.get("message"), dict):
            inbound = inbound_from_webhook(item)
            if inbound is None:
                reasons.append(f"conversation event type {item.get('type')} not used")
            else:
                parsed.inbound.append(inbound)
        elif "status" in item or "cause" in item:
            if not item.get("messageId") and not item.get("clientMessageId"):
                raise WebhookRejected("Status webhook without messageId or clientMessageId")
            parsed.statuses.append(status_from_webhook(item))
        else:
            reasons.append("unknown MMP payload")
    key_src = json.dumps(
        [
            [
                i.get("messageId"),
                i.get("clientMessageId"),
                i.get("status"),
                i.get("cause"),
                i.get("timestamp"),
            ]
            for i in items
        ],
        default=str,
    )
    parsed.dedupe_key = f"{kind}:" + hashlib.sha256(key_src.encode()).hexdigest()[:40]
    if not parsed.statuses and not parsed.inbound:
        parsed.ignored_reason = "; ".join(reasons) or "nothing to apply"
    return parsed


def status_from_webhook(item: dict) -> StatusEvent:
    """Webhook Broadcast: messageId, cause (READ/DELIVERED/FAIL/SEND), clientMessageId (our
    idempotency key), timestamp, type (1 Broadcast, 2 Conversation), status (1 PENDING,
    2 SENT, 3 FAIL, 4 DELIVERED, 5 READ), publicId, applicationId (1 viber, 10 viber bot,
    3 sms) — seed 000."""
    status = status_of(item.get("status"), item.get("cause"))
    failed = status == EventStatus.FAILED
    return StatusEvent(
        status,
        provider_message_id=str(item.get("messageId") or ""),
        idempotency_key=str(item.get("clientMessageId") or ""),
        occurred_at=zalo.epoch_to_datetime(item.get("timestamp")),
        error_code="mmp_fail" if failed else "",
        error_message=str(item.get("cause") or "FAIL") if failed else "",
        raw=item,
    )


def inbound_from_webhook(item: dict) -> InboundEvent | None:
    """Webhook Conversation: from (public conversation id), contact {name, phone, ...},
    messageId, message {type, message, extra}, timestamp, type (2 = MESSAGE), channelId —
    seed 000. Other types (EVENT, TEMPLATE, CHANNEL) carry no reply: ignored."""
    kind = zalo.to_int(item.get("type"))
    if kind is not None and kind != 2:
        return None
    message = item.get("message") or {}
    extra = message.get("extra") if isinstance(message.get("extra"), dict) else {}
    text = message.get("message") or extra.get("text") or message.get("text") or ""
    if not isinstance(text, str):
        text = json.dumps(text, ensure_ascii=False)
    mtype = str(message.get("type") or "text")
    if not text and mtype != "text":
        text = f"[{mtype}]"
    contact = item.get("contact") if isinstance(item.get("contact"), dict) else {}
    return InboundEvent(
        sender=str(item.get("from") or ""),
        text=text,
        phone=str(contact.get("phone") or ""),
        name=str(contact.get("name") or ""),
        # seed 000 shows "country": "VN" in contact; reading it as the country of the
        # contact's phone (for a number written without its code) is assumed.
        country=str(contact.get("country") or ""),
        channel_external_id=str(item.get("channelId") or item.get("publicId") or ""),
        provider_message_id=str(item.get("messageId") or ""),
        occurred_at=zalo.epoch_to_datetime(item.get("timestamp")),
        raw=item,
    )
