"""One driver run of a campaign (the task campaigns.tasks.campaign_drive_task): claim a batch,
send it, record the results, repeat until nothing is due, the campaign stops running, or the
time budget is spent (then the run puts its successor on the queue). `campaign_drive` says why
it stopped (DriveResult).

A rate-limited campaign has one driver at a time, held by a lease (campaigns.engine.leases), which
paces every send itself (campaigns.engine.pacer).

Before each batch the driver re-reads the campaign (one query, campaign_send_blocker): a status
that no longer sends, a template no longer approved, a deactivated channel or account stop it
there. After each batch: a provider that cannot be reached (campaigns.engine.outage), a
configuration refused, a deferral, too many failures.

A campaign with a fallback chain (campaigns.engine.fallback) has a lane per step: each lane
claims only its step's messages and sends them through its own channel's provider, with the
step's template, opt-outs and quiet hours. Step 0 is claimed first; after a batch with failures
the run decides the fallbacks they trigger, so the next round can send them."""

from __future__ import annotations

import enum
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_noop

from campaigns.engine.claim import SENDING_STATUSES, campaign_send_blocker, messages_claim
from campaigns.engine.dispatch import campaign_requeue
from campaigns.engine.fallback import (
    campaign_chain,
    campaign_chain_blocker,
    campaign_fall_back,
    campaign_step_view,
)
from campaigns.engine.leases import lease_acquire, lease_release, lease_renew
from campaigns.engine.lifecycle import (
    campaign_check_failure_rate,
    campaign_maybe_complete,
    campaign_set_reason,
    campaign_transition,
)
from campaigns.engine.outage import Breaker
from campaigns.engine.pacer import RatePacer
from campaigns.engine.policy import campaign_is_promotion, promotion_allowed_at
from campaigns.engine.results import BatchOutcome
from campaigns.engine.send import messages_send_batch
from campaigns.models import Campaign, Message
from campaigns.notes import Note
from providers.base import BaseProvider


class DriveResult(enum.StrEnum):
    """Why a driver run stopped."""

    DONE = "done"  # nothing left: the campaign completed
    SETTLING = "settling"  # nothing left to send; unknown outcomes are being confirmed
    PAUSED = "paused"  # the campaign is not running (paused, cancelled, ...)
    BUDGET = "budget"  # time budget spent; the next run is queued
    WAITING = "waiting"  # nothing due now (retries later, rows another driver holds)
    QUIET_HOURS = "quiet_hours"  # a promotion at night; the every-minute tick restarts it
    DEFERRED = "deferred"  # quota or night window: every pending row waits for the provider
    CONFIG_ERROR = "config_error"  # the provider refused our configuration: paused
    FAILURE_RATE = "failure_rate"  # too many failures: paused automatically
    BUSY = "busy"  # another driver holds this rate-limited campaign
    BLOCKED = "blocked"  # template, channel or account no longer usable: paused
    UNREACHABLE = "unreachable"  # the provider cannot be reached: paused, nothing lost


@dataclass
class _Lane:
    """One step of the campaign as this run sends it: step 0 is the campaign's own channel."""

    step: int
    view: Campaign  # the campaign as this step sends it (campaigns.engine.fallback)
    provider: BaseProvider
    promotion: bool


@dataclass
class _Run:
    """What one driver run holds from start to end."""

    campaign: Campaign
    provider: BaseProvider
    lanes: list[_Lane]
    chained: bool
    pool: ThreadPoolExecutor
    pacer: RatePacer | None
    batch_size: int
    promotion: bool
    budget: float
    started: float
    lease: str
    holder: str | None  # the lease token, while this run holds it
    breaker: Breaker  # connection failures in a row (campaigns.engine.outage)


def campaign_drive(*, campaign_id: int, time_budget: float | None = None) -> DriveResult:
    """One driver run: claim, send, record, repeat until nothing is due or the budget is spent."""
    budget = time_budget if time_budget is not None else settings.LOA["DRIVER_TIME_BUDGET"]
    started = time.monotonic()
    campaign = Campaign.objects.select_related(
        "channel__account", "channel__official_account", "template"
    ).get(pk=campaign_id)
    share = _rate_share(campaign)
    account_rate = campaign.channel.account.rate_limit
    rates = [r for r in (campaign.rate_limit, account_rate * share if account_rate else None) if r]
    lease = f"campaign-{campaign_id}"
    holder = None
    if rates:
        holder = lease_acquire(lease, budget + 30)
        if holder is None:
            return DriveResult.BUSY
    batch_size = int(settings.LOA["SEND_BATCH_SIZE"])
    if rates:  # a paced batch must finish well inside the budget
        batch_size = max(1, min(batch_size, int(min(rates) * 5) or 1))
    provider = campaign.channel.account.get_provider()
    provider.rate_share = share
    promotion = campaign_is_promotion(campaign)
    lanes = [_Lane(0, campaign, provider, promotion)]
    for step in campaign_chain(campaign_id):
        view = campaign_step_view(campaign, step)
        # A free text has no tag of its own: it says what the campaign's template says, so a
        # promotion's SMS fallback keeps the quiet hours and the frequency cap too.
        step_promotion = campaign_is_promotion(view) or (view.template_id is None and promotion)
        step_provider = step.channel.account.get_provider()
        step_provider.rate_share = share
        lanes.append(_Lane(step.position, view, step_provider, step_promotion))
    run = _Run(
        campaign=campaign,
        provider=provider,
        lanes=lanes,
        chained=len(lanes) > 1,
        pool=ThreadPoolExecutor(max_workers=max(1, int(settings.LOA["SEND_CONCURRENCY"]))),
        pacer=_pacer(campaign_id, min(rates)) if rates else None,
        batch_size=batch_size,
        promotion=promotion,
        budget=budget,
        started=started,
        lease=lease,
        holder=holder,
        breaker=Breaker(
            consecutive=campaign.outage_failures,
            known_outage=campaign.outage_since is not None,
        ),
    )
    try:
        return _drive(run)
    finally:
        run.pool.shutdown(wait=True)
        for lane in run.lanes:
            lane.provider.close()
        if run.holder:
            lease_release(run.lease, run.holder)


def _rate_share(campaign: Campaign) -> float:
    """The part of its account's rate a campaign may use. An API message (a one-recipient
    campaign of origin "api") may use all of it; an ordinary campaign leaves LOA_API_RATE_SHARE
    of it free, so an API message on the same account never waits behind a campaign that fills
    the rate (its pacer runs at the lower rate, and its provider calls pass a bucket of their own
    at that rate before the account's: providers.base.BaseProvider.rate_share)."""
    if campaign.origin == Campaign.Origin.API:
        return 1.0
    share = float(settings.LOA.get("API_RATE_SHARE", 0.0) or 0.0)
    return min(1.0, max(0.0, 1.0 - share)) or 1.0


def _pacer(campaign_id: int, rate: float) -> RatePacer:
    """A pacer that continues the schedule of this campaign's sends in the last window."""
    recent = Message.objects.filter(
        campaign_id=campaign_id,
        sent_at__gte=timezone.now() - timedelta(seconds=RatePacer.WINDOW),
    ).values_list("sent_at", flat=True)
    return RatePacer(rate, recent=[t.timestamp() for t in recent])


def _drive(run: _Run) -> DriveResult:
    campaign = run.campaign
    while True:
        stop = _stop_before_batch(run)
        if stop:
            return stop
        quiet, sent = False, False
        for lane in run.lanes:
            if lane.promotion and not promotion_allowed_at()[0]:
                quiet = True  # the every-minute tick restarts it when the window opens
                continue
            batch = messages_claim(
                campaign_id=campaign.pk,
                limit=run.batch_size,
                kind=lane.view.channel.kind,
                promotion=lane.promotion,
                record_attempts=lane.provider.uses_http,
                step=lane.step,
                requires_consent=campaign.requires_advertising_consent,
            )
            if not batch:
                continue
            out = messages_send_batch(
                campaign=lane.view,
                provider=lane.provider,
                messages=batch,
                pacer=run.pacer,
                pool=run.pool,
                breaker=run.breaker,
            )
            if run.chained and out.failed and lane.step < len(run.lanes) - 1:
                # Failures in the send answer that fall back: built now, sent next round.
                campaign_fall_back(campaign_id=campaign.pk, step=lane.step)
            stop = _stop_when_unreachable(campaign.pk, run.breaker) or _stop_after_batch(
                campaign.pk, out, lane.step
            )
            if stop:
                return stop
            sent = True
            break  # the campaign is re-checked before every batch
        if not sent:
            if quiet:
                return DriveResult.QUIET_HOURS
            reached = campaign_maybe_complete(campaign_id=campaign.pk)
            if reached == Campaign.Status.COMPLETED:
                return DriveResult.DONE
            return DriveResult.SETTLING if reached else DriveResult.WAITING
        if run.holder:
            lease_renew(run.lease, run.holder, run.budget + 30)


def _stop_before_batch(run: _Run) -> DriveResult | None:
    campaign_id = run.campaign.pk
    status, blocked = campaign_send_blocker(campaign_id=campaign_id)
    if status not in SENDING_STATUSES:
        return DriveResult.PAUSED
    if blocked is None and run.chained:
        blocked = campaign_chain_blocker(campaign_id=campaign_id)
    if blocked is not None:
        campaign_transition(campaign_id=campaign_id, to=Campaign.Status.PAUSED, note=blocked)
        return DriveResult.BLOCKED
    if not run.chained and run.promotion and not promotion_allowed_at()[0]:
        return DriveResult.QUIET_HOURS  # the every-minute tick restarts it when the window opens
    if time.monotonic() - run.started > run.budget:
        if run.holder:  # released first, so that the next run can take it
            lease_release(run.lease, run.holder)
            run.holder = None
        campaign_requeue(campaign_id=campaign_id)
        return DriveResult.BUDGET
    return None


def _stop_when_unreachable(campaign_id: int, breaker: Breaker) -> DriveResult | None:
    """The provider could not be reached OUTAGE_PAUSE_AFTER times in a row: pause, and say so.
    Nothing was lost: those messages, and the ones not attempted, are pending again."""
    if not breaker.open:
        return None
    since = Campaign.objects.filter(pk=campaign_id).values_list("outage_since", flat=True).first()
    why = _UNREACHABLE_NOTES.get(breaker.last_error, _UNREACHABLE_NOTES["connect_error"])
    campaign_transition(
        campaign_id=campaign_id,
        to=Campaign.Status.PAUSED,
        note=Note(why, since=since or timezone.now()),
    )
    return DriveResult.UNREACHABLE


# One sentence per connection error (campaigns.engine.outage.UNREACHABLE), each true: the
# messages are pending, none failed, and resuming sends them.
_UNREACHABLE_NOTES = {
    "connect_timeout": gettext_noop(
        "Paused: Loa cannot reach the provider since {since}: its server does not answer "
        "connection attempts. No message was lost: the messages not sent yet are waiting, and "
        "go out when you resume the campaign."
    ),
    "connect_error": gettext_noop(
        "Paused: Loa cannot reach the provider since {since}: its server refuses the connection "
        "or its address cannot be found. No message was lost: the messages not sent yet are "
        "waiting, and go out when you resume the campaign."
    ),
}


def _stop_after_batch(campaign_id: int, out: BatchOutcome, step: int = 0) -> DriveResult | None:
    if out.config_error:
        campaign_transition(
            campaign_id=campaign_id,
            to=Campaign.Status.PAUSED,
            note=Note(
                gettext_noop("Paused: the provider refused the configuration ({error})."),
                error=out.config_error,
            ),
        )
        return DriveResult.CONFIG_ERROR
    if out.deferred_until:
        # Quota or night window: every pending message of this step waits, not just this
        # batch's (another step's channel has its own quotas and hours).
        Message.objects.filter(
            campaign_id=campaign_id, status=Message.Status.PENDING, step=step
        ).filter(
            Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lt=out.deferred_until)
        ).update(next_attempt_at=out.deferred_until)
        campaign_set_reason(
            campaign_id=campaign_id,
            note=Note(
                gettext_noop("Waiting until {when}: {why}"),
                when=out.deferred_until,
                why=out.deferred_reason,
            ),
        )
        return DriveResult.DEFERRED
    if campaign_check_failure_rate(campaign_id=campaign_id):
        return DriveResult.FAILURE_RATE
    return None
