"""Messages whose outcome we do not know: the reaper (rows a killed worker left in `sending`) and
reconciliation (ask the provider; resend only when that cannot make a second message).

A row is never sent twice on a guess: `unknown` moves only on the provider's answer, or back to
pending when the provider dedupes our idempotency key, or positively has no record of it."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from campaigns.engine.delivery import message_apply_event
from campaigns.engine.dispatch import campaign_start_drivers
from campaigns.engine.lifecycle import campaign_transition
from campaigns.models import Campaign, Message
from campaigns.notes import Note
from providers.base import BaseProvider, ErrorClass, EventStatus, StatusEvent

logger = logging.getLogger("loa.engine")

S = Message.Status


def messages_reap_stuck(*, older_than: int | None = None) -> int:
    """Rows left in `sending` by a killed worker go to `unknown` (reconciliation), never back to
    pending: the provider may have received them."""
    seconds = older_than if older_than is not None else settings.LOA["STUCK_SENDING_SECONDS"]
    cutoff = timezone.now() - timedelta(seconds=seconds)
    total = 0
    stuck = (
        Message.objects.filter(status=S.SENDING, claimed_at__lt=cutoff)
        .values("campaign_id")
        .distinct()
        .values_list("campaign_id", flat=True)
    )
    for campaign_id in list(stuck):
        with transaction.atomic():
            n = Message.objects.filter(
                campaign_id=campaign_id, status=S.SENDING, claimed_at__lt=cutoff
            ).update(
                status=S.UNKNOWN,
                error_class=ErrorClass.AMBIGUOUS,
                error_code="stuck",
                error_message=_("A worker stopped while sending; checking with the provider."),
            )
            Campaign.objects.filter(pk=campaign_id).update(unknown_count=F("unknown_count") + n)
        total += n
    return total


def messages_reconcile(*, limit: int = 200) -> int:
    """Ask providers about messages whose outcome we do not know: every `unknown` one, and `sent`
    ones with no receipt after RECONCILE_AFTER_MINUTES (a callback may have been lost), each at
    most once per that interval. A provider that dedupes our idempotency key may simply be sent
    again; otherwise only the provider's answer moves the message. Returns messages moved."""
    now = timezone.now()
    rows = _due_for_a_poll(now, limit)
    if not rows:
        return 0
    Message.objects.filter(pk__in=[m.pk for m in rows]).update(last_polled_at=now)
    moved = 0
    providers: dict[int, BaseProvider] = {}
    resend_campaigns: set[int] = set()
    for msg in rows:
        account = msg.campaign.channel.account
        provider = providers.get(account.pk) or providers.setdefault(
            account.pk, account.get_provider()
        )
        event = _poll(provider, msg)
        if event is not None and event.status != EventStatus.UNKNOWN:
            moved += int(message_apply_event(message_id=msg.pk, event=event))
        elif msg.status == S.UNKNOWN and _safe_to_resend(provider, msg, event, now):
            moved += _back_to_pending(msg)
            resend_campaigns.add(msg.campaign_id)
    for p in providers.values():
        p.close()
    for campaign_id in resend_campaigns:
        # A finished campaign runs again just long enough to resend these rows.
        campaign_transition(
            campaign_id=campaign_id,
            to=Campaign.Status.RUNNING,
            expect={Campaign.Status.COMPLETED},
            note=Note(gettext_noop("Resending messages whose outcome was unknown")),
        )
        campaign_start_drivers(campaign_id=campaign_id)
    return moved


def _due_for_a_poll(now: datetime, limit: int) -> list[Message]:
    after = timedelta(minutes=settings.LOA.get("RECONCILE_AFTER_MINUTES", 30))
    stale_sent = Q(status=S.SENT, sent_at__lt=now - after) & (
        Q(last_polled_at__isnull=True) | Q(last_polled_at__lt=now - after)
    )
    unknown = Q(status=S.UNKNOWN) & (
        Q(last_polled_at__isnull=True) | Q(last_polled_at__lt=now - timedelta(minutes=1))
    )
    return list(
        Message.objects.filter(unknown | stale_sent)
        .select_related("campaign__channel__account", "campaign__channel__official_account")
        .order_by("last_polled_at", "pk")[:limit]
    )


def _poll(provider: BaseProvider, msg: Message) -> StatusEvent | None:
    channel = msg.campaign.channel
    try:
        return provider.fetch_status(
            provider_message_id=msg.provider_message_id,
            idempotency_key=msg.idempotency_key,
            oa_id=channel.official_account.oa_id if channel.official_account_id else "",
        )
    except Exception as exc:  # reconciliation must go on with the next message
        logger.warning("status poll failed for message %s: %s", msg.pk, exc)
        return None


def _back_to_pending(msg: Message) -> int:
    """unknown -> pending, to be sent again; 1 if this call moved it."""
    with transaction.atomic():
        n = Message.objects.filter(pk=msg.pk, status=S.UNKNOWN).update(
            status=S.PENDING, next_attempt_at=None
        )
        if n:
            Campaign.objects.filter(pk=msg.campaign_id).update(unknown_count=F("unknown_count") - 1)
    return n


def _safe_to_resend(
    provider: BaseProvider, msg: Message, event: StatusEvent | None, now: datetime
) -> bool:
    """Safe: the provider dedupes the key (eSMS 124) within its window, or it positively has no
    record of the message, some minutes after the attempt (it never arrived: a connect-level
    failure reported as a timeout, a request lost in a proxy)."""
    first_try = msg.claimed_at or msg.created_at
    if (
        provider.dedupes_idempotency_key
        and (now - first_try).total_seconds() < provider.dedupe_window_seconds
    ):
        return True
    not_found_after = timedelta(minutes=settings.LOA.get("RESEND_NOT_FOUND_AFTER_MINUTES", 10))
    return bool(
        event is not None and event.error_code == "not_found" and now - first_try > not_found_after
    )
