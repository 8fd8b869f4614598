"""What a parsed callback may carry into the database, checked at intake and again by the applier.

A callback is written to several tables (messages, campaign counters, replies, opt-outs), and
one value a column cannot take used to fail the applier's whole batch, again and again. Found in
real traffic or in the independent check: NUL bytes in identifiers (eSMS `SMSID=%00%00`, a
JSON `\\u0000` in an eTelecom tracking_id or an MMP messageId; PostgreSQL text cannot hold NUL),
lone surrogates (JSON `\\ud800`: no database encodes them), fees of 1e20, NaN, Infinity and
-5e9, and dates past year 9999 once converted to UTC.

The rules, the same at intake (so the provider hears 400 at once and the raw request is kept as
rejected) and in the applier (events stored by an earlier version):
- an identifier (message id, our key, a reply's sender, channel or message id) holding such a
  character is refused: it cannot be stored, and a cleaned copy could name another message;
- free text (error messages, a reply's text and name) is cleaned: NUL removed, a lone surrogate
  replaced by U+FFFD;
- an unbelievable fee (campaigns.engine.delivery.fee_refusal) or date is dropped, the status kept,
  and a note says so (the applier writes it into the event's detail).
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime

from campaigns.engine.delivery import fee_refusal
from providers.base import InboundEvent, ParsedWebhook, StatusEvent, WebhookRejected

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# Dates a provider may report; outside, the time the event was received is used instead.
_EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
_LATEST = datetime(2100, 1, 1, tzinfo=UTC)


def text_clean(value: str) -> str:
    """Free text any column can store: NUL removed, a lone surrogate replaced."""
    if not value or not _UNSTORABLE.search(value):
        return value
    return _UNSTORABLE.sub(lambda m: "" if m.group(0) == "\x00" else "\ufffd", value)


def parsed_check(parsed: ParsedWebhook) -> tuple[ParsedWebhook, list[str]]:
    """The parsed callback made storable, and notes on what was dropped. Raises WebhookRejected
    when an identifier holds a character no database can store (module docstring)."""
    notes: list[str] = []
    statuses = [_status(st, notes) for st in parsed.statuses]
    inbound = [_inbound(ev) for ev in parsed.inbound]
    clean = replace(
        parsed,
        statuses=statuses,
        inbound=inbound,
        dedupe_key=_UNSTORABLE.sub("", parsed.dedupe_key or ""),
        ignored_reason=text_clean(parsed.ignored_reason),
    )
    return clean, notes


def _identifier(name: str, value: str) -> str:
    if value and _UNSTORABLE.search(value):
        kind = "a NUL byte" if "\x00" in value else "an invalid (surrogate) character"
        raise WebhookRejected(f"The {name} contains {kind}: {value!r:.80}")
    return value


def _status(st: StatusEvent, notes: list[str]) -> StatusEvent:
    fee = st.fee
    if fee is not None:
        reason = fee_refusal(fee)
        if reason:
            notes.append(f"fee {fee} ignored: {reason}")
            fee = None
    return replace(
        st,
        provider_message_id=_identifier("message id", st.provider_message_id),
        idempotency_key=_identifier("message key", st.idempotency_key),
        error_code=text_clean(st.error_code),
        error_message=text_clean(st.error_message),
        fee=fee,
        occurred_at=_when(st.occurred_at, notes),
    )


def _inbound(ev: InboundEvent) -> InboundEvent:
    return replace(
        ev,
        sender=_identifier("sender", ev.sender),
        provider_message_id=_identifier("message id", ev.provider_message_id),
        channel_external_id=_identifier("channel id", ev.channel_external_id),
        phone=text_clean(ev.phone),  # normalized (or refused) by the phone rules afterwards
        text=text_clean(ev.text),
        name=text_clean(ev.name),
        occurred_at=_when(ev.occurred_at, []),
    )


def _when(value: datetime | None, notes: list[str]) -> datetime | None:
    if value is None:
        return None
    try:
        utc = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    except (OverflowError, ValueError):
        utc = None
    if utc is None or not (_EARLIEST <= utc < _LATEST):
        notes.append(f"time {value.isoformat()} ignored")
        return None
    return utc
