"""Messages whose outcome we do not know: the reaper (rows a killed worker left in `sending`) and
reconciliation (ask the provider; resend only when that cannot make a second message).

A row is never sent twice on a guess: `unknown` moves only on the provider's answer; back to
pending when the provider dedupes our idempotency key within its documented window, or when it
proved, in a documented answer, that it has no record of it (StatusEvent.proven_absent from a
provider that can_prove_absence); or when a person decides (messages_resend_unknown). Any other
answer (a 404 from a path we assumed, a failed lookup) leaves it `unknown` with the reason on the
row (error code `status_unproven`), for the campaign page and the message list to show."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from campaigns.engine.delivery import message_apply_event
from campaigns.engine.dispatch import campaign_start_drivers
from campaigns.engine.legs import legs_record
from campaigns.engine.lifecycle import campaign_transition
from campaigns.models import Campaign, FallbackStep, Message
from campaigns.notes import Note
from providers.base import (
    UNPROVEN,
    BaseProvider,
    ErrorClass,
    EventStatus,
    ProviderError,
    StatusEvent,
)
from providers.services import account_reconciliation_note

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
    most once per that interval. An `unknown` one is sent again only when that cannot make a
    second message (_safe_to_resend); otherwise it keeps the reason the answer gave. Returns
    messages moved."""
    now = timezone.now()
    rows = _due_for_a_poll(now, limit)
    if not rows:
        return 0
    Message.objects.filter(pk__in=[m.pk for m in rows]).update(last_polled_at=now)
    moved = 0
    providers: dict[int, BaseProvider] = {}
    resend: list[Message] = []
    channels = _step_channels(rows)
    for msg in rows:
        msg.channel = channels.get((msg.campaign_id, msg.step)) or msg.campaign.channel
        account = msg.channel.account
        provider = providers.get(account.pk) or providers.setdefault(
            account.pk, account.get_provider()
        )
        event = _poll(provider, msg)
        if event is not None:
            # An assumed lookup path that answered 404 (StatusEvent.unavailable): the account
            # page says reconciliation is unavailable; the message stays unknown below.
            account_reconciliation_note(account_id=account.pk, note=event.lookup_note)
        if event is not None and event.status != EventStatus.UNKNOWN:
            moved += int(message_apply_event(message_id=msg.pk, event=event))
        if event is not None and event.legs:  # the provider's own SMS fallback of this message
            moved += legs_record(account_id=account.pk, events=event.legs)
        elif msg.status == S.UNKNOWN and _safe_to_resend(provider, msg, event, now):
            resend.append(msg)
        elif msg.status == S.UNKNOWN:
            _keep_unknown(msg, event)
    for p in providers.values():
        p.close()
    return moved + _resend(resend, gettext_noop("Resending messages whose outcome was unknown"))


def messages_resend_unknown(*, message_ids: list[int]) -> int:
    """A person decided: send these `unknown` messages again (they may then arrive twice; the
    admin asks for confirmation and says so). Messages of a cancelled campaign stay as they are.
    Returns how many went back to pending."""
    rows = list(
        Message.objects.filter(pk__in=message_ids, status=S.UNKNOWN)
        .exclude(campaign__status=Campaign.Status.CANCELLED)
        .only("pk", "campaign_id")
    )
    return _resend(rows, gettext_noop("Resending messages a person chose to send again"))


def _resend(rows: list[Message], note: str) -> int:
    """unknown -> pending for these rows, and their campaigns run again to send them."""
    moved = 0
    campaigns: set[int] = set()
    for msg in rows:
        if _back_to_pending(msg):
            moved += 1
            campaigns.add(msg.campaign_id)
    for campaign_id in campaigns:
        # A finished campaign runs again just long enough to resend these rows.
        campaign_transition(
            campaign_id=campaign_id,
            to=Campaign.Status.RUNNING,
            expect={Campaign.Status.COMPLETED},
            note=Note(note),
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
    # A step the provider sent by itself (provider mode) has no request of its own to ask
    # about: its status comes with step 0's answers, polls and callbacks (campaigns.engine.legs).
    native = FallbackStep.objects.filter(
        campaign_id=OuterRef("campaign_id"),
        position=OuterRef("step"),
        mode=FallbackStep.Mode.PROVIDER,
    )
    return list(
        Message.objects.filter(unknown | stale_sent)
        .exclude(Q(step__gt=0) & Exists(native))
        .select_related("campaign__channel__account", "campaign__channel__official_account")
        .order_by("last_polled_at", "pk")[:limit]
    )


def _step_channels(rows: list[Message]) -> dict:
    """{(campaign id, step): channel} of the fallback steps among `rows` (one query): a step's
    message is asked about at its own channel's provider."""
    pairs = {(m.campaign_id, m.step) for m in rows if m.step}
    if not pairs:
        return {}
    steps = FallbackStep.objects.filter(campaign_id__in={c for c, _s in pairs}).select_related(
        "channel__account", "channel__official_account"
    )
    return {(s.campaign_id, s.position): s.channel for s in steps}


def _poll(provider: BaseProvider, msg: Message) -> StatusEvent | None:
    """The provider's answer about one message; a lookup that fails is an unproven answer with
    the error as its reason (reconciliation goes on with the next message)."""
    channel = getattr(msg, "channel", None) or msg.campaign.channel
    try:
        return provider.fetch_status(
            provider_message_id=msg.provider_message_id,
            idempotency_key=msg.idempotency_key,
            oa_id=channel.official_account.oa_id if channel.official_account_id else "",
            channel_kind=channel.kind,
        )
    except ProviderError as exc:
        logger.warning("status poll failed for message %s: %s", msg.pk, exc)
        reason = _("The status lookup failed ({code}: {text}).")
        return StatusEvent.unproven(reason.format(code=exc.code, text=exc.message))
    except Exception as exc:  # reconciliation must go on with the next message
        logger.exception("status poll failed for message %s", msg.pk)
        return StatusEvent.unproven(
            _("The status lookup failed ({error}).").format(error=type(exc).__name__)
        )


def _keep_unknown(msg: Message, event: StatusEvent | None) -> None:
    """The message stays `unknown`; its row says why (the answer's reason), once."""
    reason = (
        event.error_message
        if event is not None and event.error_message
        else _("The provider has no way to look this message up.")
    )[:500]
    if msg.error_code == UNPROVEN and msg.error_message == reason:
        return
    Message.objects.filter(pk=msg.pk, status=S.UNKNOWN).update(
        error_code=UNPROVEN, error_message=reason
    )


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
    """Safe: the provider dedupes the key (eSMS RequestId, 124) within its documented window; or
    it proved in a documented answer that it has no record of the message (a provider that
    can_prove_absence, StatusEvent.proven_absent), some minutes after the attempt (it never
    arrived: a request lost before the provider, a connect-level failure reported as a timeout).
    Never on an answer from a path or shape we assumed: those cannot set proven_absent."""
    first_try = msg.claimed_at or msg.created_at
    if (
        provider.dedupes_idempotency_key
        and (now - first_try).total_seconds() < provider.dedupe_window_seconds
    ):
        return True
    not_found_after = timedelta(minutes=settings.LOA.get("RESEND_NOT_FOUND_AFTER_MINUTES", 10))
    return bool(
        provider.can_prove_absence
        and event is not None
        and event.proven_absent
        and now - first_try > not_found_after
    )
