"""Delivery: applying normalized status events (webhooks, status polls) to messages, and finding
the message an event is about.

Monotonic by construction: a message's status only moves forward (pending < sending < unknown <
sent < delivered < read); failed is final but never overwrites delivered or read; a late or
duplicate event decides nothing. Counters are "reached" counts moved in the same transaction.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from campaigns.bulk import rows_bulk_set
from campaigns.engine.keys import idempotency_key_parse
from campaigns.engine.signals import StatusChange, statuses_changed_announce
from campaigns.models import Campaign, FallbackStep, Message
from providers.base import ErrorClass, EventStatus, StatusEvent

S = Message.Status
# Forward order of the delivery path; failed/skipped/cancelled are terminal beside it.
RANK = {S.PENDING: 0, S.SENDING: 1, S.UNKNOWN: 2, S.SENT: 3, S.DELIVERED: 4, S.READ: 5}
TERMINAL = {S.FAILED, S.SKIPPED, S.CANCELLED, S.READ}
# Counters are "reached" counts: a read message counts as sent, delivered and read.
REACHED = [(S.SENT, "sent_count"), (S.DELIVERED, "delivered_count"), (S.READ, "read_count")]

# The highest fee one message may cost, in VND. A ZNS costs a few hundred VND, an SMS under
# 1,000, a long email or a rich Viber message a few thousand: ten million is three orders of
# magnitude above any real price and still far below what Message.fee (12 digits) and
# Campaign.cost (14) hold. A provider reporting more is wrong or forged (a callback said
# TotalPrice=1e20), and such a fee is refused, never added to a campaign's cost.
FEE_MAX = Decimal("10000000")


def fee_refusal(fee: Decimal) -> str:
    """Why this fee cannot be believed ("" when it can): not a number, infinite, negative (a
    callback said TotalPrice=-5e9 and a campaign cost -4,999,998,500 VND), or above FEE_MAX."""
    if fee.is_nan():
        return "not a number"
    if not fee.is_finite():
        return "not finite"
    if fee < 0:
        return "negative"
    if fee > FEE_MAX:
        return f"above the {FEE_MAX:,.0f} VND a message may cost"
    return ""


def _decide(old: str, new: str) -> str | None:
    """The status a message moves to, or None if the event changes nothing."""
    if old in TERMINAL:
        return None
    if new == EventStatus.FAILED:
        # failed is final but never overwrites delivered or read
        return S.FAILED if old in (S.PENDING, S.SENDING, S.UNKNOWN, S.SENT) else None
    if new in (EventStatus.SENT, EventStatus.DELIVERED, EventStatus.READ):
        return new if RANK[new] > RANK.get(old, 99) else None
    return None


def _transition(
    old: str, event: StatusEvent, current_fee
) -> tuple[str | None, dict, dict, Decimal | None]:
    """What one event does to a message in status `old`: (new status or None, row fields,
    counter deltas, fee to record)."""
    new = _decide(old, event.status)
    fee = event.fee if (event.fee is not None and current_fee is None) else None
    if fee is not None and fee_refusal(fee):
        fee = None  # the callback's checks drop it first (webhooks.sanitize); polls end here
    fields: dict = {}
    counters: dict = {}
    if new is not None:
        at = event.occurred_at or timezone.now()
        fields["status"] = new
        if new == S.FAILED:
            fields.update(
                failed_at=at,
                error_code=event.error_code[:40],
                error_message=event.error_message[:500],
                error_class=ErrorClass.PERMANENT,
            )
            counters["failed_count"] = 1
        else:
            for level, counter in REACHED:
                if RANK[old] < RANK[level] <= RANK[new]:
                    counters[counter] = 1
                    fields[f"{level}_at"] = at
        if old == S.UNKNOWN:
            counters["unknown_count"] = -1
        if event.provider_message_id:
            fields["provider_message_id"] = event.provider_message_id[:100]
    if fee is not None:
        fields["fee"] = fee
    return new, fields, counters, fee


def messages_apply_events(*, items: list[tuple[int, StatusEvent]]) -> int:
    """Apply many (message id, event) pairs in one transaction; returns status changes made.

    The rows are locked first (FOR UPDATE on PostgreSQL, in id order so two appliers never
    deadlock each other; SQLite's BEGIN IMMEDIATE is a database lock), events are folded in
    arrival order in memory, then each changed row is written once and each campaign's counters
    move once, by F() expressions, in the same transaction.
    """
    if not items:
        return 0
    ids = sorted({mid for mid, _e in items})
    changed = 0
    with transaction.atomic():
        qs = Message.objects.filter(pk__in=ids).order_by("pk")
        if connection.features.has_select_for_update:
            qs = qs.select_for_update()
        rows = {r["pk"]: r for r in qs.values("pk", "status", "fee", "campaign_id")}
        updates: dict[int, dict] = {}
        deltas: dict[int, dict] = {}
        announced: list[tuple[int, StatusChange]] = []
        for mid, event in items:
            row = rows.get(mid)
            if row is None:
                continue
            new, fields, counters, fee = _transition(row["status"], event, row["fee"])
            if not fields:
                continue
            if new is not None:
                row["status"] = new
                changed += 1
            if fee is not None:
                row["fee"] = fee
                counters = {**counters, "cost": fee}
            if new is not None or fee is not None:
                at = event.occurred_at or timezone.now()
                change = StatusChange(message_id=mid, status=new or "", at=at, fee=row["fee"])
                announced.append((row["campaign_id"], change))
            updates.setdefault(mid, {}).update(fields)
            d = deltas.setdefault(row["campaign_id"], {})
            for k, v in counters.items():
                d[k] = d.get(k, 0) + v
        _write(updates, deltas)
        statuses_changed_announce(changes=announced)
    return changed


def _write(updates: dict[int, dict], deltas: dict[int, dict]) -> None:
    """One statement per shape of change (delivered, read, failed, fee only, ...), not one per
    message: a burst of receipts is a few statements. Then each campaign's counters, once."""
    now = timezone.now()
    shapes: dict[tuple[str, ...], list[dict]] = {}
    for mid, fields in updates.items():
        shapes.setdefault(tuple(sorted(fields)), []).append(
            {"pk": mid, **fields, "updated_at": now}
        )
    for shape, objs in shapes.items():
        rows_bulk_set(Message, objs, [*shape, "updated_at"])
    for campaign_id, d in deltas.items():
        Campaign.objects.filter(pk=campaign_id).update(**{k: F(k) + v for k, v in d.items() if v})


def message_apply_event(*, message_id: int, event: StatusEvent) -> bool:
    """Apply one normalized status to one message, monotonically and exactly once."""
    return messages_apply_events(items=[(message_id, event)]) > 0


def messages_find(*, account_id: int, events: list[StatusEvent]) -> list[int | None]:
    """The message each event is about, within one provider account: by idempotency key, and by
    provider id only for the events whose key missed (most callbacks carry our key: then one
    query, and the provider-id index is not read at all)."""
    keys = {e.idempotency_key for e in events if e.idempotency_key}
    scope = messages_of_account(account_id)
    by_key = _messages_by_key(scope, keys)
    pids = {
        e.provider_message_id
        for e in events
        if e.provider_message_id and by_key.get(e.idempotency_key) is None
    }
    by_pid = (
        dict(scope.filter(provider_message_id__in=pids).values_list("provider_message_id", "id"))
        if pids
        else {}
    )
    return [by_key.get(e.idempotency_key) or by_pid.get(e.provider_message_id) for e in events]


def messages_of_account(account_id: int):
    """The messages sent through one provider account: step 0 through the campaign's channel,
    a fallback step through that step's channel (campaigns.engine.fallback), or through the
    campaign's channel when the provider sends it itself (a step in provider mode)."""
    step_channel = FallbackStep.objects.filter(
        campaign_id=OuterRef("campaign_id"),
        position=OuterRef("step"),
        channel__account_id=account_id,
    )
    # A step in provider mode (campaigns.engine.native) is sent by the campaign's own account.
    native_step = FallbackStep.objects.filter(
        campaign_id=OuterRef("campaign_id"),
        position=OuterRef("step"),
        mode=FallbackStep.Mode.PROVIDER,
    )
    return Message.objects.filter(
        Q(step=0, campaign__channel__account_id=account_id)
        | Q(Exists(step_channel), step__gt=0)
        | Q(Exists(native_step), step__gt=0, campaign__channel__account_id=account_id)
    )


def _messages_by_key(scope, keys: set[str]) -> dict[str, int]:
    """{key: message id} for the keys that are ours, through the (campaign, contact) index; the
    exact key is compared too (a campaign id reused after a database reset has another stamp)."""
    pairs = [p for p in map(idempotency_key_parse, keys) if p]
    if not pairs:
        return {}
    rows = scope.filter(
        campaign_id__in={c for c, _k in pairs}, contact_id__in={k for _c, k in pairs}
    ).values_list("idempotency_key", "id")
    return {key: mid for key, mid in rows if key in keys}


def message_find(
    *, account_id: int, provider_message_id: str = "", idempotency_key: str = ""
) -> int | None:
    """The message an event is about, within one provider account."""
    event = StatusEvent(
        status=EventStatus.UNKNOWN,
        provider_message_id=provider_message_id,
        idempotency_key=idempotency_key,
    )
    return messages_find(account_id=account_id, events=[event])[0]
