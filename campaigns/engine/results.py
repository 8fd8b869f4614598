"""Recording a batch's provider answers onto the messages, in bulk, in one transaction.

Results are written only onto rows still in `sending` (a callback may have overtaken the answer:
sending -> delivered), and the campaign's counters move with F() expressions in the same
transaction. What happens to each class of failure (providers.base.ErrorClass):
permanent -> failed; ambiguous -> unknown (reconciled before any resend); retryable -> pending
again after a backoff (failed after MAX_RETRIES); deferred -> pending until the time the provider
gave (quota, night window); configuration -> pending, and the driver pauses the campaign.
A connection that could not be opened (campaigns.engine.outage: the request never reached the
provider) is retryable without counting against MAX_RETRIES, and a message the batch did not
attempt (the outage breaker opened) goes back to pending as it was.

Each message's MessageAttempt row was written in flight when it was claimed; here it is completed
with the call (or deleted when no call was made).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

from django.db import connection, transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from campaigns.bulk import rows_bulk_set, rows_insert
from campaigns.engine.delivery import fee_refusal
from campaigns.engine.outage import Breaker, is_unreachable
from campaigns.engine.signals import StatusChange, statuses_changed_announce
from campaigns.models import Campaign, Message, MessageAttempt
from providers.base import ErrorClass, SendOutcome, SendResult

S = Message.Status
MAX_RETRIES = 5
# A deferred answer whose provider said nothing about when to try again waits this long.
DEFERRED_WAIT = timedelta(minutes=15)

_ATTEMPT_FIELDS = [f for f in MessageAttempt._meta.concrete_fields if not f.primary_key]
# What completing an in-flight attempt row writes.
_ATTEMPT_DONE = [
    "status_code",
    "duration_ms",
    "request_body",
    "response_body",
    "error_class",
    "error",
    "in_flight",
    "created_at",
]
_ERROR_FIELDS = ["error_class", "error_code", "error_message"]


@dataclass
class BatchOutcome:
    sent: int = 0
    failed: int = 0
    unknown: int = 0
    retry: int = 0
    unreachable: int = 0  # connection failures: the requests never reached the provider
    released: int = 0  # not attempted (the outage breaker was open): pending as they were
    cancelled: int = 0  # would have gone back to pending, but the campaign was cancelled
    config_error: str = ""
    deferred_until: datetime | None = None
    deferred_reason: str = ""


@dataclass
class _Sorted:
    """A batch's messages by what their answer makes of them."""

    accepted: list[Message]
    failed: list[Message]
    unknown: list[Message]
    retry: list[Message]
    released: list[Message]


def messages_record_results(
    *,
    campaign_id: int,
    results: list[tuple[Message, SendResult | None, object]],
    breaker: Breaker | None = None,
    api: bool | None = None,
) -> BatchOutcome:
    """Write (message, result, HTTP call) triples: statuses, errors, counters and attempts. A
    result of None: the message was not attempted (the breaker was open). `api`: whether the
    campaign is an API message's (Campaign.origin), when the caller knows (None: looked up)."""
    now = timezone.now()
    out = BatchOutcome()
    rows = _Sorted([], [], [], [], [])
    inserts, completed, unused = [], [], []
    streak = breaker.consecutive if breaker is not None else 0
    for msg, res, call in results:
        attempt_id = getattr(msg, "attempt_id", None)
        if call is not None:
            row = _attempt_row(msg, res, call, now)
            if attempt_id:
                completed.append({"pk": attempt_id, **row})
            else:
                inserts.append(row)
        elif attempt_id:
            unused.append(attempt_id)  # no call was made: there is no attempt to show
        if res is None:
            msg.attempts = max(0, msg.attempts - 1)
            msg.next_attempt_at = None
            rows.released.append(msg)
        else:
            _sort(msg, res, now, out, rows, streak)
    with transaction.atomic():
        _write(campaign_id, rows, out, now)
        _write_outage(campaign_id, out, breaker, now)
        if inserts:
            rows_insert(MessageAttempt, inserts, _ATTEMPT_FIELDS)
        if completed:
            rows_bulk_set(MessageAttempt, completed, _ATTEMPT_DONE)
        if unused:
            MessageAttempt.objects.filter(pk__in=unused, in_flight=True).delete()
        if api is not False:  # campaign traffic pays nothing for the API's callbacks
            statuses_changed_announce(changes=_changes(campaign_id, rows, now))
    return out


def _changes(campaign_id: int, rows: _Sorted, now: datetime) -> list[tuple[int, StatusChange]]:
    """What this batch may have changed, for message_statuses_changed: the writes above apply only
    to rows still in `sending`, so a receiver compares with the row's status (a callback that
    overtook the answer already moved it)."""
    sent = [
        (campaign_id, StatusChange(m.pk, S.SENT, m.sent_at or now, m.fee)) for m in rows.accepted
    ]
    failed = [(campaign_id, StatusChange(m.pk, S.FAILED, m.failed_at or now)) for m in rows.failed]
    return sent + failed


def _attempt_row(msg: Message, res: SendResult, call, now: datetime) -> dict:
    return {
        "message_id": msg.pk,
        "status_code": call.status,
        "duration_ms": call.duration_ms,
        "request_body": call.request_body,
        "response_body": call.response_body,
        "error_class": str(res.error_class or ""),
        "error": (call.error or res.error_message)[:300],
        "in_flight": False,
        "created_at": msg.sent_at or now,  # when the request left
    }


def _sort(
    msg: Message, res: SendResult, now: datetime, out: BatchOutcome, rows: _Sorted, streak: int
) -> None:
    """Set the message's new fields from its answer and put it in its group."""
    msg.error_class = str(res.error_class or "")
    msg.error_code = res.error_code
    msg.error_message = res.error_message[:500]
    if res.outcome == SendOutcome.ACCEPTED:
        msg.provider_message_id = res.provider_message_id
        # A fee the answer cannot mean (Infinity, NaN, negative, absurd) is dropped: it would
        # break the write or the campaign's cost.
        msg.fee = _believable_fee(res.fee)
        msg.sent_at = msg.sent_at or now
        msg.error_class = msg.error_code = msg.error_message = ""
        rows.accepted.append(msg)
    elif res.error_class == ErrorClass.PERMANENT:
        msg.failed_at = now
        rows.failed.append(msg)
    elif res.error_class == ErrorClass.AMBIGUOUS:
        rows.unknown.append(msg)
    elif res.error_class == ErrorClass.CONFIGURATION:
        out.config_error = out.config_error or f"{res.error_code}: {res.error_message}"
        msg.next_attempt_at = None
        rows.retry.append(msg)
    elif res.error_class == ErrorClass.DEFERRED:
        # The provider knows when it will take the message again (a quota's reset, a night
        # window's end): res.retry_at.
        msg.next_attempt_at = res.retry_at or now + DEFERRED_WAIT
        if out.deferred_until is None or msg.next_attempt_at > out.deferred_until:
            out.deferred_until = msg.next_attempt_at
            out.deferred_reason = res.error_message or res.error_code
        rows.retry.append(msg)
    elif is_unreachable(res):
        # The request never reached the provider: this try does not count against MAX_RETRIES,
        # and the wait grows with the connection failures in a row (the breaker pauses the
        # campaign after OUTAGE_PAUSE_AFTER of them).
        out.unreachable += 1
        msg.attempts = max(0, msg.attempts - 1)
        msg.next_attempt_at = now + timedelta(seconds=min(120, 5 * 2 ** min(max(streak, 1), 5)))
        rows.retry.append(msg)
    elif msg.attempts >= MAX_RETRIES:  # retryable, too many times
        msg.failed_at = now
        rows.failed.append(msg)
    else:
        backoff = res.retry_after or min(300, 2**msg.attempts * 5)
        msg.next_attempt_at = now + timedelta(seconds=backoff)
        rows.retry.append(msg)


def _believable_fee(value) -> Decimal | None:
    """The send answer's fee, or None when it cannot be believed (delivery.fee_refusal)."""
    if value is None:
        return None
    try:
        fee = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return None if fee_refusal(fee) else fee


def _write(campaign_id: int, rows: _Sorted, out: BatchOutcome, now: datetime) -> None:
    fees = Decimal(0)
    if rows.accepted:
        # A callback may have overtaken us (sending -> delivered): only rows still in
        # `sending` become `sent`, and only those are counted here.
        out.sent = messages_bulk_set(
            [_with(m, status=S.SENT) for m in rows.accepted],
            ["status", "provider_message_id", "fee", "sent_at", *_ERROR_FIELDS],
            only_status=S.SENDING,
        )
        # Rows a callback already moved still need their provider id for later callbacks.
        if out.sent < len(rows.accepted):
            messages_bulk_set(
                rows.accepted, ["provider_message_id"], only_blank="provider_message_id"
            )
        fees = sum((m.fee for m in rows.accepted if m.fee), Decimal(0))
    if rows.failed:
        out.failed = messages_bulk_set(
            [_with(m, status=S.FAILED) for m in rows.failed],
            ["status", *_ERROR_FIELDS, "failed_at"],
            only_status=S.SENDING,
        )
    if rows.unknown:
        out.unknown = messages_bulk_set(
            [_with(m, status=S.UNKNOWN) for m in rows.unknown],
            ["status", *_ERROR_FIELDS],
            only_status=S.SENDING,
        )
    if rows.retry:
        out.retry = messages_bulk_set(
            [_with(m, status=S.PENDING) for m in rows.retry],
            ["status", *_ERROR_FIELDS, "next_attempt_at", "attempts"],
            only_status=S.SENDING,
        )
    if rows.released:
        out.released = messages_bulk_set(
            [_with(m, status=S.PENDING) for m in rows.released],
            ["status", "next_attempt_at", "attempts"],
            only_status=S.SENDING,
        )
    if out.sent or out.failed or out.unknown or fees:
        Campaign.objects.filter(pk=campaign_id).update(
            sent_count=F("sent_count") + out.sent,
            failed_count=F("failed_count") + out.failed,
            unknown_count=F("unknown_count") + out.unknown,
            cost=F("cost") + fees,
            updated_at=now,
        )
    if rows.retry or rows.released:
        _cancel_if_cancelled(campaign_id, [m.pk for m in rows.retry + rows.released], out, now)


def _cancel_if_cancelled(campaign_id: int, ids: list[int], out: BatchOutcome, now) -> None:
    """Rows this batch put back to pending in a campaign cancelled meanwhile are cancelled too.
    The campaign row is locked first: a cancel either committed before (its status is read
    here) or waits for this transaction and then finds these rows pending (campaign_cancel
    ends the pending rows in the same transaction as its transition)."""
    status = (
        Campaign.objects.select_for_update()
        .filter(pk=campaign_id)
        .values_list("status", flat=True)
        .first()
    )
    if status != Campaign.Status.CANCELLED:
        return
    out.cancelled = Message.objects.filter(pk__in=ids, status=S.PENDING).update(
        status=S.CANCELLED, updated_at=now
    )
    Campaign.objects.filter(pk=campaign_id).update(
        cancelled_count=F("cancelled_count") + out.cancelled
    )


def _write_outage(campaign_id: int, out: BatchOutcome, breaker: Breaker | None, now) -> None:
    """The campaign's outage fields (campaigns.engine.outage): set while the last calls could
    not connect, cleared by an answer from the provider."""
    if breaker is None or not (out.unreachable or breaker.answered):
        return
    if breaker.consecutive:
        since = now if breaker.answered else Coalesce(F("outage_since"), Value(now))
        Campaign.objects.filter(pk=campaign_id).update(
            outage_since=since,
            outage_error=breaker.last_error[:300],
            outage_failures=breaker.consecutive,
        )
        breaker.known_outage = True
    elif breaker.known_outage:  # the provider answered: the outage is over
        Campaign.objects.filter(pk=campaign_id).update(
            outage_since=None, outage_error="", outage_failures=0
        )
        breaker.known_outage = False


def messages_bulk_set(
    messages: list[Message],
    fields: list[str],
    *,
    only_status: str | None = None,
    only_blank: str | None = None,
) -> int:
    """Write per-row values of `fields` for many messages (campaigns.bulk.rows_bulk_set),
    guarded by the row's current status and/or a blank column."""
    table = connection.ops.quote_name(Message._meta.db_table)
    guard = ""
    guard_params: list = []
    if only_status is not None:
        guard += f" AND {table}.status = %s"
        guard_params.append(only_status)
    if only_blank is not None:
        guard += f" AND {table}.{connection.ops.quote_name(only_blank)} = ''"
    return rows_bulk_set(Message, messages, fields, guard=guard, guard_params=guard_params)


def _with(msg: Message, **fields) -> Message:
    for k, v in fields.items():
        setattr(msg, k, v)
    return msg
