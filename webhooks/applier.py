"""The applier: stored webhook events become message statuses, campaign counters and replies.

Events are applied in batches (up to 1,000 in one transaction: one lock round, one write per
shape of change). One bad event must never hold the others back: until issue 15, a single event
the database refused (a NUL byte in an id, a fee of 1e20) rolled back its whole batch, and since
the oldest events come first, the same batch failed again on every run and no status was applied
for any account. Now:

- each event is parsed and checked again (webhooks.sanitize; a stored event may predate the
  intake's checks): one that is malformed is marked rejected, with the reason;
- replies come first, each event's in its own savepoint: an opt-out is applied before anything
  else in the batch can fail;
- the statuses of the whole batch are applied together inside a savepoint; if that fails, event
  by event, each in its own savepoint, and an event that still fails is marked `failed` with the
  error (visible in the WebhookEvent admin); the others are applied.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import parse_qsl

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from campaigns.bulk import rows_bulk_set
from campaigns.engine.delivery import messages_apply_events, messages_find
from campaigns.engine.legs import LEG_ORPHAN, legs_prepare
from campaigns.models import Message
from providers.base import ParsedWebhook, WebhookRequest
from providers.models import ProviderAccount
from webhooks.inbound import inbound_store, sender_learn
from webhooks.models import InboundMessage, SenderContact, WebhookEvent
from webhooks.parse import callback_parse
from webhooks.sanitize import text_clean

logger = logging.getLogger("loa.webhooks")

OUT = WebhookEvent.Outcome
# A failed event is tried again by the every-minute tick until it has been tried this often.
FAILED_RETRIES = 3


# The columns the applier reads of a stored event: rows, not model instances (building 1,000
# WebhookEvent instances a batch, with their init signals, was a tenth of the applier's CPU).
_EVENT_COLUMNS = ("pk", "account_id", "method", "query", "body", "headers", "attempts")


@dataclass(eq=False, slots=True)
class _Item:
    pk: int
    account_id: int
    method: str
    query: str
    body: str
    headers: dict
    attempts: int
    outcome: str = ""
    outcome_detail: str = ""
    parsed: ParsedWebhook | None = None
    notes: list[str] = field(default_factory=list)
    error: str = ""
    message_id: int | None = None
    unmatched: bool = False


def webhook_events_apply(
    *, limit: int = 1000, outcomes: tuple[str, ...] = (OUT.RECEIVED,), ids: list[int] | None = None
) -> dict[str, int]:
    """Apply stored events in one batch (module docstring). Returns counts per outcome, and
    "changes": the message statuses that moved."""
    done: Counter = Counter()
    with transaction.atomic():
        qs = WebhookEvent.objects.filter(outcome__in=outcomes).order_by("pk")
        if ids is not None:
            qs = qs.filter(pk__in=ids)
        if connection.features.has_select_for_update_skip_locked:
            qs = qs.select_for_update(skip_locked=True, of=("self",))
        items = [_Item(*row) for row in qs.values_list(*_EVENT_COLUMNS)[:limit]]
        if not items:
            return {}
        # Each account once, not joined onto every event row.
        accounts = ProviderAccount.objects.in_bulk({item.account_id for item in items})
        for item in items:
            _parsed(item, accounts[item.account_id])
        for item in items:
            _replies_store(item, accounts[item.account_id])
        changes = _statuses_apply([i for i in items if i.parsed and i.parsed.statuses])
        now = timezone.now()
        rows = []
        for item in items:
            _outcome(item)
            done[item.outcome] += 1
            rows.append(
                {
                    "pk": item.pk,
                    "outcome": item.outcome,
                    "outcome_detail": item.outcome_detail,
                    "message_id": item.message_id,
                    "processed_at": now,
                    "attempts": item.attempts + 1,
                }
            )
        # One UPDATE ... FROM for the whole batch (campaigns.bulk).
        rows_bulk_set(
            WebhookEvent, rows, ["outcome", "outcome_detail", "message", "processed_at", "attempts"]
        )
    done["changes"] = changes
    return dict(done)


def _parsed(item: _Item, account: ProviderAccount) -> None:
    try:
        item.parsed, item.notes = callback_parse(account, _request_of(item))
    except Exception as exc:  # stored events were parsed once; a change of parser may refuse them
        item.outcome, item.outcome_detail = OUT.REJECTED, _detail(str(exc))


def _request_of(item: _Item) -> WebhookRequest:
    query = dict(parse_qsl(item.query, keep_blank_values=True)) if item.query else {}
    return WebhookRequest(
        method=item.method, query=query, body=item.body.encode(), headers=item.headers
    )


def _replies_store(item: _Item, account: ProviderAccount) -> None:
    """The event's replies, in a savepoint of their own; never twice for one event (an event
    re-applied after its statuses failed keeps the replies it stored)."""
    if item.parsed is None or not item.parsed.inbound:
        return
    try:
        with transaction.atomic():
            if InboundMessage.objects.filter(event_id=item.pk).exists():
                return
            # An instance only for the rare event that carries replies (the FK wants one).
            event = WebhookEvent(pk=item.pk, account_id=item.account_id)
            for inbound in item.parsed.inbound:
                inbound_store(account=account, event=event, inbound=inbound)
    except Exception as exc:
        logger.warning("webhook event %s: replies not stored (%s)", item.pk, exc)
        item.error = f"Replies not stored: {type(exc).__name__}: {exc}"


def _statuses_apply(items: list[_Item]) -> int:
    """All the statuses at once; event by event if that fails (module docstring)."""
    if not items:
        return 0
    try:
        with transaction.atomic():
            return _statuses_write(items)
    except Exception as exc:
        logger.warning(
            "webhook batch of %s events failed (%s: %s); applying them one by one",
            len(items),
            type(exc).__name__,
            exc,
        )
    changes = 0
    for item in items:
        try:
            with transaction.atomic():
                changes += _statuses_write([item])
        except Exception as exc:
            logger.warning("webhook event %s could not be applied: %s", item.pk, exc)
            item.error = f"{type(exc).__name__}: {exc}"
    return changes


def _statuses_write(items: list[_Item]) -> int:
    """Find each status's message (per account, in bulk) and apply them all. The items learn
    their message (or that it is missing) only once the write succeeded."""
    by_account: dict[int, list] = {}
    for item in items:
        by_account.setdefault(item.account_id, []).extend((item, st) for st in item.parsed.statuses)
    pairs, found = [], []
    for account_id, account_pairs in by_account.items():
        # A provider's own SMS fallback (leg) is recorded as its chain step's row: built here the
        # first time it is reported, and the status pointed at it (campaigns.engine.legs).
        legs_prepare(account_id=account_id, events=[st for _i, st in account_pairs])
        # A leg naming no such step, beside its message's own status: left out (the callback
        # is not "unmatched" for it); alone in its callback it stays, unmatched.
        account_pairs = [
            (i, st)
            for i, st in account_pairs
            if not (st.leg == LEG_ORPHAN and len(i.parsed.statuses) > 1)
        ]
        pairs += account_pairs
        found += messages_find(account_id=account_id, events=[st for _i, st in account_pairs])
    changes = messages_apply_events(
        items=[(mid, st) for (_i, st), mid in zip(pairs, found, strict=True) if mid is not None]
    )
    _receipts_learn(pairs, found)
    for (item, _st), mid in zip(pairs, found, strict=True):
        if mid is None:
            item.unmatched = True
        else:
            item.message_id = mid
    return changes


def _receipts_learn(pairs: list, found: list[int | None]) -> None:
    """A Zalo delivery receipt naming its recipient (`recipient.id`, the user's id for the OA)
    ties that Zalo user to the contact of the message: a later reply from that user, which
    carries no phone, then reaches its contact (webhooks.inbound)."""
    learned = {}
    for (item, st), mid in zip(pairs, found, strict=True):
        raw = st.raw if isinstance(st.raw, dict) else {}
        recipient = raw.get("recipient") if isinstance(raw.get("recipient"), dict) else {}
        user_id = str(recipient.get("id") or "")
        if mid is not None and raw.get("event_name") == "user_received_message" and user_id:
            learned[(item.account_id, text_clean(user_id))] = mid
    if not learned:
        return
    contacts = dict(Message.objects.filter(pk__in=learned.values()).values_list("pk", "contact"))
    accounts = ProviderAccount.objects.in_bulk({a for a, _u in learned})
    for (account_id, user_id), mid in learned.items():
        if contacts.get(mid):
            sender_learn(
                account=accounts[account_id],
                sender=user_id,
                contact_id=contacts[mid],
                source=SenderContact.Source.RECEIPT,
            )


def _outcome(item: _Item) -> None:
    ev, p = item, item.parsed
    if p is None:
        return  # rejected while parsing, with its reason
    notes = "; ".join(item.notes)
    if item.error:
        ev.outcome, ev.outcome_detail = OUT.FAILED, _detail(item.error)
    elif item.unmatched:
        ev.outcome = OUT.UNMATCHED
        ev.outcome_detail = _("A status for a message not recorded (yet)")
    elif not p.statuses and not p.inbound:
        ev.outcome = OUT.IGNORED
        ev.outcome_detail = _detail(p.ignored_reason or _("No status or message in this event"))
    else:
        ev.outcome = OUT.APPLIED
        # Stored text, written in the worker's language (LANGUAGE_CODE: Vietnamese by default).
        done = (
            ngettext("{n} status", "{n} statuses", len(p.statuses)).format(n=len(p.statuses))
            if p.statuses
            else ngettext("{n} inbound message", "{n} inbound messages", len(p.inbound)).format(
                n=len(p.inbound)
            )
        )
        ev.outcome_detail = _detail(f"{done}; {notes}" if notes else done)


def _detail(text: str) -> str:
    return text_clean(text)[:500]


def webhook_event_reprocess(*, event_id: int) -> str:
    """Apply exactly this stored event again (admin "Re-apply"); returns its new outcome. A
    duplicate is never applied (its first copy was)."""
    WebhookEvent.objects.filter(pk=event_id).exclude(outcome=OUT.DUPLICATE).update(
        outcome=OUT.RECEIVED
    )
    webhook_events_apply(limit=1, ids=[event_id])
    return WebhookEvent.objects.filter(pk=event_id).values_list("outcome", flat=True).first() or ""


def webhook_events_reapply(*, limit: int = 2000) -> int:
    """Unmatched events are tried again; those older than the retention window are marked
    expired (visible in the admin), never silently dropped. Events left in `received` (a worker
    died mid-batch) are applied too, and failed ones are tried again a few times (the error may
    have been passing: a lock timeout, a restart)."""
    window = timedelta(hours=settings.LOA.get("UNMATCHED_RETENTION_HOURS", 72))
    WebhookEvent.objects.filter(
        outcome=OUT.UNMATCHED, received_at__lt=timezone.now() - window
    ).update(
        outcome=OUT.EXPIRED,
        outcome_detail="No matching message appeared within the retention window",
    )
    WebhookEvent.objects.filter(outcome=OUT.FAILED, attempts__lt=FAILED_RETRIES).update(
        outcome=OUT.RECEIVED
    )
    applied = 0
    while True:
        done = webhook_events_apply(limit=limit, outcomes=(OUT.RECEIVED, OUT.UNMATCHED))
        applied += done.get(OUT.APPLIED, 0)
        # stop when a batch was not full or nothing but unmatched events remain
        if sum(v for k, v in done.items() if k != "changes") < limit or not done.get(OUT.APPLIED):
            return applied
