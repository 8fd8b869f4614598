"""Zalo ZNS conventions shared by the adapters that relay Zalo (eTelecom, eSMS, MMP's Zalo channel):
template statuses and tags, time formats, when a deferred message may go again, and Zalo OA
webhook events with their signature.

Sources: providers.md §4 (Zalo official API) and §1.5 (eTelecom forwards the OA's Zalo events).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.utils import timezone

from providers.base import (
    EventStatus,
    InboundEvent,
    ParsedWebhook,
    StatusEvent,
    WebhookRejected,
)

# Template status as Zalo (template/info/v2 `status`, eSMS GetZnsTemplateInfo `Status`), the Zalo
# list filter numbers (1 ENABLE, 2 PENDING_REVIEW, 3 REJECT, 4 DISABLE — providers.md §4.2), and
# [I] eTelecom's tri-state Z/P/N (providers.md §1.3) -> templates_app.Template.Status values.
TEMPLATE_STATUS = {
    "ENABLE": "approved",
    "ENABLED": "approved",
    "APPROVED": "approved",
    "ACTIVE": "approved",
    "PENDING_REVIEW": "pending",
    "PENDING": "pending",
    "IN_REVIEW": "pending",
    "REJECT": "rejected",
    "REJECTED": "rejected",
    "DISABLE": "disabled",
    "DISABLED": "disabled",
    "INACTIVE": "disabled",
    "DELETE": "deleted",
    "DELETED": "deleted",
    "1": "approved",
    "2": "pending",
    "3": "rejected",
    "4": "disabled",
    "P": "approved",
    "Z": "pending",
    "N": "disabled",
}

# Template tag: Zalo 1 TRANSACTION, 2 CUSTOMER_CARE, 3 PROMOTION (providers.md §4.4).
TEMPLATE_TAG = {
    "TRANSACTION": "transaction",
    "1": "transaction",
    "CUSTOMER_CARE": "customer_care",
    "CUSTOMERCARE": "customer_care",
    "2": "customer_care",
    "PROMOTION": "promotion",
    "3": "promotion",
}


def template_status(value: Any) -> str:
    """Our status for a provider's template status; unknown values are `pending` (never
    `approved` by accident: an unreviewed template must not be sendable)."""
    return TEMPLATE_STATUS.get(str(value or "").strip().upper(), "pending")


def template_tag(value: Any) -> str:
    return TEMPLATE_TAG.get(str(value or "").strip().upper().replace(" ", "_"), "transaction")


def to_decimal(value: Any) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        return Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None


def to_int(value: Any, default: int | None = None) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return default


# Zalo's deferrals (the DEFERRED codes of providers.errors.ZALO_ERRORS whose end is known): the
# night window (-133: a template that may not be sent 22:00-06:00) reopens at 06:00 local; the daily
# quotas (-144 the OA's, -147 the template's, -160, and -1441 the promotion quota) reset at midnight
# local, and sending resumes at 00:05 to be safe. Local is the site's time zone (Asia/Ho_Chi_Minh).
NIGHT_WINDOW_CODES = {-133}
# Zalo's night window for the templates -133 refuses: from 22:00 to 06:00 local time.
NIGHT_STARTS, NIGHT_ENDS = 22, 6
QUOTA_CODES = {-144, -147, -160, -1441}


def deferred_until(code: Any, now: datetime | None = None) -> datetime | None:
    """When Zalo takes a message refused with `code` again, or None when the code says nothing
    about it (not a Zalo deferral: the engine then waits its default interval)."""
    icode = to_int(code)
    if icode not in NIGHT_WINDOW_CODES and icode not in QUOTA_CODES:
        return None
    local = timezone.localtime(now or timezone.now())
    if icode in NIGHT_WINDOW_CODES:
        target = local.replace(hour=NIGHT_ENDS, minute=0, second=0, microsecond=0)
        return target if target > local else target + timedelta(days=1)
    return (local + timedelta(days=1)).replace(hour=0, minute=5, second=0, microsecond=0)


def epoch_to_datetime(value: Any) -> datetime | None:
    """An epoch timestamp in seconds, milliseconds or microseconds (providers send all three,
    often as strings). Only a plausible date (2015-2100) is believed; otherwise None, and the
    engine uses the time it received the event. (MMP's documented example 174911328000 is a
    truncated value that fits no unit: None.)"""
    try:
        number = float(str(value).strip())
    except (TypeError, ValueError):
        return None
    for divisor in (1.0, 1e3, 1e6):
        seconds = number / divisor
        if 1420070400 <= seconds <= 4102444800:  # 2015-01-01 .. 2100-01-01
            return datetime.fromtimestamp(seconds, tz=UTC)
    return None


def iso_to_datetime(value: Any) -> datetime | None:
    """RFC 3339 (eTelecom's `delivery_time`, `sent_time`); Go's zero time means "not set"."""
    if not value or not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.year < 2000:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# ---- Zalo OA webhook events ------------------------------------------------------------------


def event_signature(app_id: str, raw_body: bytes, timestamp: str, oa_secret: str) -> str:
    """X-ZEvent-Signature = SHA256(appId + raw body + timestamp + OA secret key), hex
    (providers.md §4.7; hainh.me blog, GoBy webhook page). The OA secret, not the app secret."""
    digest = hashlib.sha256()
    digest.update(str(app_id).encode())
    digest.update(raw_body)
    digest.update(str(timestamp).encode())
    digest.update(oa_secret.encode())
    return digest.hexdigest()


def event_oa_ids(data: dict) -> list[str]:
    """OA ids an event may concern: the OA is the sender of OA->user events (ZNS receipts) and the
    recipient of user->OA events (replies); some relays add `oa_id`."""
    ids = []
    for value in (
        data.get("oa_id"),
        (data.get("sender") or {}).get("id") if isinstance(data.get("sender"), dict) else None,
        (data.get("recipient") or {}).get("id")
        if isinstance(data.get("recipient"), dict)
        else None,
    ):
        if value not in (None, ""):
            ids.append(str(value))
    return ids


def verify_event_signature(
    *, headers: dict[str, str], raw_body: bytes, data: dict, oa_secrets: dict[str, str]
) -> bool:
    """Check X-ZEvent-Signature when we hold the OA's secret. Returns True when checked and valid,
    False when we hold no secret for this OA (the per-account URL token is then the only
    authentication); raises WebhookRejected(403) when the signature is missing or wrong."""
    secret = next((oa_secrets[i] for i in event_oa_ids(data) if oa_secrets.get(i)), "")
    if not secret:
        return False
    given = ""
    for key, value in headers.items():
        if key.lower() == "x-zevent-signature":
            given = str(value).strip()
    # Zalo writes the header as "mac=<hex>"; accept the bare hex too.
    if given.lower().startswith("mac="):
        given = given[4:].strip()
    if not given:
        raise WebhookRejected("Missing X-ZEvent-Signature", status=403)
    expected = event_signature(
        str(data.get("app_id", "")), raw_body, str(data.get("timestamp", "")), secret
    )
    if not hmac.compare_digest(expected.lower(), given.lower()):
        raise WebhookRejected("Bad X-ZEvent-Signature", status=403)
    return True


def parse_event(data: dict) -> ParsedWebhook:
    """One Zalo OA event -> normalized events. Unknown events are ignored, never errors."""
    name = str(data.get("event_name") or "")
    message = data.get("message") if isinstance(data.get("message"), dict) else {}
    when = epoch_to_datetime(data.get("timestamp"))
    key_src = json.dumps(
        [name, message.get("msg_id"), message.get("msg_ids"), data.get("timestamp")],
        sort_keys=True,
        default=str,
    )
    dedupe = "zalo:" + hashlib.sha256(key_src.encode()).hexdigest()[:40]
    if name == "user_received_message":
        # The same event name is used for OA-consultation receipts; the ZNS variant carries
        # message.delivery_time (providers.md §4.7) and message.msg_id = the ZNS msg_id we stored.
        if not message.get("msg_id"):
            return ParsedWebhook(dedupe_key=dedupe, ignored_reason="receipt without msg_id")
        if "delivery_time" not in message:
            return ParsedWebhook(dedupe_key=dedupe, ignored_reason="not a ZNS receipt")
        event = StatusEvent(
            status=EventStatus.DELIVERED,
            provider_message_id=str(message["msg_id"]),
            # [I] tracking_id in the receipt is unconfirmed; used when present.
            idempotency_key=str(message.get("tracking_id") or ""),
            occurred_at=epoch_to_datetime(message.get("delivery_time")) or when,
            raw=data,
        )
        return ParsedWebhook(statuses=[event], dedupe_key=dedupe)
    if name == "user_seen_message":
        ids = message.get("msg_ids") or ([message["msg_id"]] if message.get("msg_id") else [])
        events = [
            StatusEvent(status=EventStatus.READ, provider_message_id=str(i), occurred_at=when)
            for i in ids
            if i
        ]
        return ParsedWebhook(
            statuses=events, dedupe_key=dedupe, ignored_reason="" if events else "no msg_ids"
        )
    if name.startswith("user_send_"):
        sender = data.get("sender") if isinstance(data.get("sender"), dict) else {}
        kind = name.removeprefix("user_send_")
        text = message.get("text") or ""
        if not text and kind != "text":
            text = f"[{kind}]"
        inbound = InboundEvent(
            sender=str(sender.get("id") or data.get("user_id_by_app") or ""),
            text=str(text),
            provider_message_id=str(message.get("msg_id") or ""),
            occurred_at=when,
            raw=data,
        )
        return ParsedWebhook(inbound=[inbound], dedupe_key=dedupe)
    return ParsedWebhook(dedupe_key=dedupe, ignored_reason=f"Zalo event {name!r} not used")
