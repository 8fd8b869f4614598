"""The sending policy for promotion messages (Decree 91/2020/ND-CP): the quiet hours, when no
promotion may be sent, and the frequency caps per contact across campaigns.

Transaction and customer-care messages are not promotions: neither rule applies to them."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count
from django.utils import timezone

from campaigns.models import Campaign, Message
from templates_app.models import Template


def campaign_is_promotion(campaign: Campaign) -> bool:
    return bool(campaign.template_id and campaign.template.tag == Template.Tag.PROMOTION)


def quiet_window() -> tuple[int, int]:
    """Allowed local hours for promotion messages, e.g. "07:00-22:00", as minutes of the day."""
    text = settings.LOA.get("QUIET_HOURS", "07:00-22:00")
    start, end = text.split("-")
    return int(start.split(":")[0]) * 60 + int(start.split(":")[1]), int(
        end.split(":")[0]
    ) * 60 + int(end.split(":")[1])


def promotion_allowed_at(now: datetime | None = None) -> tuple[bool, datetime]:
    """Is a promotion message allowed now, and if not, when does the window open?"""
    local = timezone.localtime(now or timezone.now())
    start, end = quiet_window()
    minute = local.hour * 60 + local.minute
    if start <= minute < end:
        return True, local
    opens = local.replace(hour=start // 60, minute=start % 60, second=0, microsecond=0)
    if minute >= end:
        opens += timedelta(days=1)
    return False, opens


def contacts_frequency_capped(
    *, contact_ids: list[int], campaign_id: int, now: datetime
) -> set[int]:
    """Contacts who already got the maximum promotion messages today / this week from other
    campaigns (FREQUENCY_CAP_DAY, FREQUENCY_CAP_WEEK; 0 means no cap)."""
    caps = [
        (settings.LOA.get("FREQUENCY_CAP_DAY", 0), timedelta(days=1)),
        (settings.LOA.get("FREQUENCY_CAP_WEEK", 0), timedelta(days=7)),
    ]
    capped: set[int] = set()
    for cap, window in caps:
        if not cap:
            continue
        rows = (
            Message.objects.filter(
                contact_id__in=contact_ids,
                sent_at__gte=now - window,
                campaign__template__tag=Template.Tag.PROMOTION,
            )
            .exclude(campaign_id=campaign_id)
            .values("contact_id")
            .annotate(n=Count("id"))
            .filter(n__gte=cap)
        )
        capped |= {r["contact_id"] for r in rows}
    return capped
