"""An OA's ZNS daily quota as Loa knows it between two syncs with the provider.

Zalo counts a ZNS against the OA's daily quota when it accepts the send (providers.md 4.6:
"Per-OA dailyQuota/remainingQuota returned on each send"). The provider's own figure is read by
the OA sync (providers.services.account_sync_official_accounts); between syncs the engine lowers
the remaining quota by what the provider accepted, so the campaign page's "over quota" warning
and the dashboard read today's figure, not this morning's (issue 17: 5,000 / 5,000 after 2,000
sends). At the daily reset the remaining quota is the daily quota again, until the next sync
says otherwise.

The reset is at midnight local time (Asia/Ho_Chi_Minh), the hour providers.zalo.deferred_until
already waits for after a quota refusal (-144/-147/-160/-1441). Assumed: Zalo's documentation
says "daily" without an hour (docs/PROVIDERS.md, "OA quota"); the hourly sync corrects any
difference.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.db.models import F, Q, Value
from django.db.models.functions import Greatest
from django.utils import timezone

from providers.base import BaseProvider
from providers.models import OfficialAccount, ProviderAccount
from providers.services import account_sync_official_accounts, error_sentence

logger = logging.getLogger("loa.providers")


def last_reset(now: datetime | None = None) -> datetime:
    """The most recent daily reset (local midnight) at or before `now`."""
    return timezone.localtime(now or timezone.now()).replace(
        hour=0, minute=0, second=0, microsecond=0
    )


def oa_quota_reset_due(*, now: datetime | None = None, oa_ids: list[int] | None = None) -> int:
    """Give back the daily quota to each OA whose figure was last seen before today's reset.
    Returns how many OAs were reset."""
    now = now or timezone.now()
    stale = OfficialAccount.objects.filter(daily_quota__isnull=False).filter(
        Q(quota_updated_at__isnull=True) | Q(quota_updated_at__lt=last_reset(now))
    )
    if oa_ids is not None:
        stale = stale.filter(pk__in=oa_ids)
    return stale.update(remaining_quota=F("daily_quota"), quota_updated_at=now)


def oa_quota_spend(*, oa_id: int, count: int, now: datetime | None = None) -> None:
    """Lower the OA's remaining quota by `count` ZNS the provider just accepted (never below 0;
    an OA whose quota Loa has never seen stays unknown)."""
    if count <= 0:
        return
    oa_quota_reset_due(now=now, oa_ids=[oa_id])
    OfficialAccount.objects.filter(pk=oa_id, remaining_quota__isnull=False).update(
        remaining_quota=Greatest(F("remaining_quota") - count, Value(0))
    )


def oa_sync_all() -> list[str]:
    """The scheduled OA sync: every active account whose provider lists Official Accounts is
    asked for its OAs' quality and quota, one account at a time, a failure logged and the
    others still synced; then the OAs no sync reached get their daily reset."""
    lines = []
    for account in ProviderAccount.objects.filter(is_active=True).order_by("pk"):
        lister = getattr(account.provider_class, "list_official_accounts", None)
        if lister is None or lister is BaseProvider.list_official_accounts:
            continue  # multi-channel platforms have channels, not OAs
        try:
            lines.append(f"{account}: {account_sync_official_accounts(account=account)}")
        except Exception as exc:  # one account's outage must not stop the others' sync
            logger.warning("OA sync failed for account %s: %s", account.pk, exc)
            lines.append(f"{account}: {error_sentence(exc, account=account)}")
    reset = oa_quota_reset_due()
    if reset:
        lines.append(f"{reset} OA quota(s) reset for the new day")
    return lines
