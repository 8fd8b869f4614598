"""The sending policy for promotion messages (Decree 91/2020/ND-CP): the quiet hours, when no
promotion may be sent, and the frequency caps per contact across campaigns.

Transaction and customer-care messages are not promotions: neither rule applies to them."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count
from django.utils import timezone

from campaigns.models import Campaign, Message
from providers import zalo
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


def sending_window(*, promotion: bool, zalo_night: bool) -> tuple[int, int] | None:
    """The local daily window (minutes of the day, start < end) in which a campaign's messages go
    out, or None when they may go at any hour: a promotion inside the quiet hours' window
    (Decree 91/2020), a Zalo template Zalo refuses at night (-133) between 06:00 and 22:00; both
    rules together give the narrower window."""
    windows = []
    if promotion:
        windows.append(quiet_window())
    if zalo_night:
        windows.append((zalo.NIGHT_ENDS * 60, zalo.NIGHT_STARTS * 60))
    windows = [(s, e) for s, e in windows if s < e]  # a window over midnight is not a rule here
    if not windows:
        return None
    return max(s for s, _e in windows), min(e for _s, e in windows)


# Where the next day's quota lets sends go again: providers.zalo.deferred_until's 00:05.
QUOTA_RESUME = timedelta(minutes=5)
_HORIZON_DAYS = 400  # beyond this, "finishes at about" would mean nothing


def finish_estimate(
    *,
    start: datetime,
    count: int,
    rate: float,
    window: tuple[int, int] | None = None,
    quota_left: int | None = None,
    quota_daily: int | None = None,
) -> datetime | None:
    """When a send of `count` messages begun at `start` at `rate` messages/s is about to finish:
    messages only go out inside the local daily `window` (sending_window: a promotion waits
    overnight), and at most `quota_left` today then `quota_daily` a day after each local midnight
    (a Zalo OA's daily quota; None = no quota). None when it never finishes (no rate, a quota of
    0) or not within a year. A pure function: the wizard's review step shows it."""
    if count <= 0:
        return timezone.localtime(start)
    if not rate or rate <= 0:
        return None
    t = timezone.localtime(start)
    remaining = float(count)
    quota = None if quota_left is None else float(max(0, quota_left))
    horizon = t + timedelta(days=_HORIZON_DAYS)
    while t < horizon:
        midnight = (t + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        if quota is not None and quota < 1:
            if not quota_daily or quota_daily <= 0:
                return None
            t, quota = midnight + QUOTA_RESUME, float(quota_daily)
            continue
        end = midnight
        if window is not None:
            day = t.replace(hour=0, minute=0, second=0, microsecond=0)
            opens, closes = day + timedelta(minutes=window[0]), day + timedelta(minutes=window[1])
            if t < opens:
                t = opens
            elif t >= closes:
                t = opens + timedelta(days=1)
                continue
            end = closes
        room = (end - t).total_seconds() * rate
        n = min(remaining, room, quota if quota is not None else remaining)
        if n >= remaining:
            return t + timedelta(seconds=remaining / rate)
        remaining -= n
        t += timedelta(seconds=n / rate)
        if quota is not None:
            quota -= n
        if quota is None or quota >= 1:
            t = end  # the window closed or the day ended: the loop finds the next opening
    return None


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
