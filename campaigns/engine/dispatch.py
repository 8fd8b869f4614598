"""Putting driver runs on the queue: how many drivers a campaign gets, and the one task they run.

A driver run is the task campaigns.tasks.campaign_drive_task (campaigns.engine.driver does the
work). Extra runs are harmless for correctness (claims are exclusive), only for the queue."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django_q.tasks import async_task

from campaigns.models import Campaign

DRIVE_TASK = "campaigns.tasks.campaign_drive_task"


def _driver_count(campaign: Campaign) -> int:
    """Unlimited campaigns run several drivers; a rate-limited one runs exactly one (held by a
    lease), which paces every send itself, so the rate is exact and never exceeded."""
    if campaign.rate_limit or campaign.channel.account.rate_limit:
        return 1
    return max(1, int(settings.LOA["DRIVERS_PER_CAMPAIGN"]))


def campaign_start_drivers(*, campaign_id: int) -> None:
    """Enqueue the campaign's drivers once the current transaction commits."""
    campaign = Campaign.objects.select_related("channel__account").get(pk=campaign_id)
    for _i in range(_driver_count(campaign)):
        # on_commit: a driver must never start before the rows it will claim are visible.
        transaction.on_commit(
            lambda: async_task(DRIVE_TASK, campaign_id, group=f"campaign-{campaign_id}")
        )


def campaign_requeue(*, campaign_id: int) -> None:
    """One more driver run, now (a run that spent its time budget, or the tick's kick)."""
    async_task(DRIVE_TASK, campaign_id, group=f"campaign-{campaign_id}")
