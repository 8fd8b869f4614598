"""The every-minute tick (campaigns.tasks.scheduler_tick): start due scheduled campaigns
(refusing stale ones past a grace window), restart idle drivers of running campaigns (deferred
rows whose time came, drivers lost to a restart), reap rows stuck in `sending`, and reconcile
unknown outcomes."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_noop

from campaigns.engine.dispatch import campaign_requeue
from campaigns.engine.fallback import campaigns_fall_back_due
from campaigns.engine.lifecycle import (
    campaign_maybe_complete,
    campaign_send_now,
    campaign_set_reason,
)
from campaigns.engine.reconcile import messages_reap_stuck, messages_reconcile
from campaigns.models import Campaign, Message
from campaigns.notes import Note
from providers.shared.errors import Refused

logger = logging.getLogger("loa.tasks")


def campaigns_tick() -> dict:
    """One tick; returns what it did (ids started, drivers kicked, rows reaped and reconciled)."""
    report = {
        "started": campaigns_start_due(),
        # Before the kick: the fallbacks built now are among the due rows it looks for.
        "fell_back": campaigns_fall_back_due(),
        "kicked": campaigns_kick_running(),
        "reaped": messages_reap_stuck(),
        "reconciled": messages_reconcile(),
    }
    if any(report.values()):
        logger.info("scheduler tick: %s", report)
    return report


def campaigns_start_due(*, now: datetime | None = None) -> list[int]:
    """Start scheduled campaigns whose time has come; leave stale ones waiting for a human."""
    now = now or timezone.now()
    grace = timedelta(seconds=settings.LOA.get("SCHEDULE_GRACE_SECONDS", 3600))
    started = []
    for c in Campaign.objects.filter(status=Campaign.Status.SCHEDULED, scheduled_at__lte=now):
        if c.scheduled_at < now - grace:
            if not c.status_reason:
                campaign_set_reason(
                    campaign_id=c.pk,
                    note=Note(
                        gettext_noop(
                            "The scheduled time passed more than the grace window ago; confirm to "
                            "send it now."
                        )
                    ),
                )
            continue
        try:
            campaign_send_now(campaign_id=c.pk)
            started.append(c.pk)
        except Refused as exc:
            campaign_set_reason(campaign_id=c.pk, note=str(exc.message))
    return started


def campaigns_kick_running(*, idle_seconds: float | None = None) -> int:
    """Restart drivers for running campaigns with due pending rows (after a restart or a deferral),
    and for settling ones (rows reconciliation sent back to pending); a running or settling
    campaign with nothing left to send moves on (campaign_maybe_complete).

    Only campaigns whose drivers have been quiet for a while (every batch touches the campaign
    row's updated_at): a live driver re-enqueues itself, and kicking a busy campaign every minute
    would pile driver tasks in front of everything else in the queue. Extra drivers would still be
    harmless for correctness: claims are exclusive."""
    now = timezone.now()
    if idle_seconds is None:
        idle_seconds = settings.LOA["DRIVER_TIME_BUDGET"] + 30
    idle = now - timedelta(seconds=idle_seconds)
    # Settling campaigns are looked at every tick: their last unknown outcome may have settled.
    rows = list(
        Campaign.objects.filter(
            Q(status=Campaign.Status.RUNNING, updated_at__lte=idle)
            | Q(status=Campaign.Status.SETTLING)
        ).values_list("pk", "updated_at", "status")
    )
    kicked = 0
    for cid, updated_at, status in rows:
        due = (
            Message.objects.filter(campaign_id=cid, status=Message.Status.PENDING)
            .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
            .exists()
        )
        # A settling campaign's due rows (fallbacks the sweep just built, resends) have no
        # driver by definition: it stopped when nothing was left to send.
        if due and (updated_at <= idle or status == Campaign.Status.SETTLING):
            campaign_requeue(campaign_id=cid)
            kicked += 1
        elif not due:
            campaign_maybe_complete(campaign_id=cid)
    return kicked
