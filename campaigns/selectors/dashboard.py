"""Reads for the admin dashboard (the admin index).

Everything here must stay cheap on a messages table of many millions: message figures are read
from an id range found by binary search on the primary key (messages are created in id order, so
"created since" is an id range, no index on a time column needed), and the whole dashboard is
cached for a minute. (Its charts' geometry is the admin's: campaigns/admin/charts.py.)
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import Count, Max, Min, Q
from django.db.models.functions import Coalesce, Mod, TruncDate
from django.utils import timezone, translation

from campaigns.engine.outage import campaign_outage, campaigns_in_outage
from campaigns.models import Campaign, ContactImport, Message
from providers.models import Channel, OfficialAccount, ProviderAccount

CACHE_KEY = "loa:dashboard:v1"
CACHE_SECONDS = 60
DAYS = 7
# Messages sent later than they were created (night window, quota, retries) still count: the id
# range starts this long before the window.
CREATED_MARGIN = timedelta(days=2)
WEBHOOK_FRESH = timedelta(hours=1)
WEBHOOK_STALE = timedelta(hours=24)

S = Message.Status


# ---- message figures ---------------------------------------------------------------------------


def first_message_id_since(since: datetime) -> int | None:
    """The smallest message id created at or after `since` (None if none): a binary search over
    the primary key, ~30 index probes whatever the table's size."""
    bounds = Message.objects.aggregate(lo=Min("id"), hi=Max("id"))
    lo, hi = bounds["lo"], bounds["hi"]
    if lo is None:
        return None
    hi += 1  # the answer lies in [lo, hi]; hi means "none"
    while lo < hi:
        mid = (lo + hi) // 2
        row = Message.objects.filter(pk__gte=mid).order_by("pk").values_list("created_at").first()
        if row is None or row[0] >= since:
            hi = mid
        else:
            lo = mid + 1
    return lo


# Up to this many message ids in the window are counted exactly; beyond, an even sample of
# DASH_SAMPLE ids is read by primary key and each stands for `stride` messages (the figures are
# then marked as estimates). Ids are dense: messages are never deleted by hand.
DASH_EXACT = 60_000
DASH_SAMPLE = 6_000


def _day_rows(*, since: datetime) -> tuple[list[dict], bool]:
    """Per (campaign, local day): sent, delivered, read, failed, for messages that were sent or
    failed since `since`; and whether the figures are estimated from a sample."""
    first_id = first_message_id_since(since - CREATED_MARGIN)
    if first_id is None:
        return [], False
    last_id = Message.objects.aggregate(hi=Max("id"))["hi"] or first_id
    qs = Message.objects.filter(pk__gte=first_id)
    stride = 1
    if last_id - first_id + 1 > DASH_EXACT:
        stride = -(-(last_id - first_id + 1) // DASH_SAMPLE)
        if connection.vendor == "postgresql":
            qs = Message.objects.extra(
                where=[
                    f"{Message._meta.db_table}.id = ANY(ARRAY("
                    "SELECT generate_series(%s::bigint, %s::bigint, %s::bigint)))"
                ],
                params=[first_id, last_id, stride],
            )
        else:
            qs = qs.alias(m=Mod("id", stride)).filter(m=first_id % stride)
    tz = timezone.get_current_timezone()
    rows = list(
        qs.filter(Q(sent_at__gte=since) | Q(failed_at__gte=since))
        .annotate(day=TruncDate(Coalesce("sent_at", "failed_at"), tzinfo=tz))
        .values("campaign_id", "day")
        .annotate(
            sent=Count("id", filter=Q(sent_at__isnull=False)),
            delivered=Count("id", filter=Q(status__in=[S.DELIVERED, S.READ])),
            read=Count("id", filter=Q(status=S.READ)),
            failed=Count("id", filter=Q(status=S.FAILED)),
        )
        .order_by()
    )
    if stride > 1:
        for r in rows:
            for k in ("sent", "delivered", "read", "failed"):
                r[k] *= stride
    return rows, stride > 1


def _empty_totals() -> dict:
    return {"sent": 0, "delivered": 0, "read": 0, "failed": 0}


def _add(into: dict, row: dict) -> None:
    for k in ("sent", "delivered", "read", "failed"):
        into[k] += row[k]


def _rates(t: dict) -> dict:
    sent = t["sent"]
    return {
        **t,
        "delivery_rate": round(100 * t["delivered"] / sent, 1) if sent else None,
        "read_rate": round(100 * t["read"] / sent, 1) if sent else None,
    }


def dashboard_message_stats(*, now: datetime | None = None) -> dict:
    now = timezone.localtime(now or timezone.now())
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    week_start = today - timedelta(days=DAYS - 1)
    rows, estimated = _day_rows(since=week_start)
    campaign_ids = {r["campaign_id"] for r in rows}
    channel_of = dict(Campaign.objects.filter(pk__in=campaign_ids).values_list("pk", "channel_id"))
    channels = {
        c.pk: c
        for c in Channel.objects.filter(pk__in=set(channel_of.values())).select_related(
            "official_account"
        )
    }
    today_t, week_t = _empty_totals(), _empty_totals()
    per_day = {(week_start + timedelta(days=i)).date(): _empty_totals() for i in range(DAYS)}
    per_channel: dict[int, dict] = {}
    for r in rows:
        _add(week_t, r)
        if r["day"] == today.date():
            _add(today_t, r)
        if r["day"] in per_day:
            _add(per_day[r["day"]], r)
        ch = channel_of.get(r["campaign_id"])
        _add(per_channel.setdefault(ch, _empty_totals()), r)
    by_channel = []
    for ch_id, t in sorted(per_channel.items(), key=lambda kv: -kv[1]["sent"]):
        ch = channels.get(ch_id)
        by_channel.append(
            {
                "channel": ch.name if ch else "?",
                "kind": ch.get_kind_display() if ch else "",
                "oa": ch.official_account.name if ch and ch.official_account_id else "",
                **_rates(t),
            }
        )
    days = [{"day": d, **t} for d, t in per_day.items()]
    return {
        "today": _rates(today_t),
        "week": _rates(week_t),
        "days": days,
        "by_channel": by_channel,
        "estimated": estimated,
    }


# ---- the rest of the house ---------------------------------------------------------------------


def dashboard_campaigns(*, limit: int = 10) -> list[dict]:
    active = [
        Campaign.Status.RUNNING,
        Campaign.Status.SETTLING,
        Campaign.Status.PAUSED,
        Campaign.Status.SCHEDULED,
    ]
    rows = (
        # People's campaigns: an API message's one-recipient campaign runs for a second and has
        # its own page (the API messages overview).
        Campaign.objects.filter(status__in=active, origin=Campaign.Origin.CAMPAIGN)
        .select_related("channel")
        .order_by("status", "scheduled_at", "-started_at")[:limit]
    )
    return [
        {
            "pk": c.pk,
            "name": c.name,
            "status": c.status,
            "status_label": c.get_status_display(),
            "channel": c.channel.name,
            "progress": c.progress_percent,
            "total": c.total_count,
            "cost": c.cost,
            "scheduled_at": c.scheduled_at,
            "reason": c.reason_text(),
        }
        for c in rows
    ]


def dashboard_outages(*, limit: int = 10) -> list[dict]:
    """Campaigns that cannot reach their provider (campaigns.engine.outage), oldest outage first:
    since when, the last error in words, and whether sending is paused."""
    out = []
    for c in campaigns_in_outage().select_related("channel__account")[:limit]:
        outage = campaign_outage(c)
        out.append(
            {
                "pk": c.pk,
                "name": c.name,
                "account": c.channel.account.name,
                "since": outage.since,
                "error": outage.error,
                "paused": outage.paused,
            }
        )
    return out


def dashboard_official_accounts() -> list[dict]:
    out = []
    for oa in OfficialAccount.objects.select_related("account").order_by("name"):
        quota, left = oa.daily_quota, oa.remaining_quota
        out.append(
            {
                "name": oa.name,
                "oa_id": oa.oa_id,
                "account": oa.account.name,
                "quality": oa.quality,
                "quality_label": oa.get_quality_display(),
                "daily_quota": quota,
                "remaining": left,
                "pct_left": round(100 * left / quota) if quota and left is not None else None,
                "seen_at": oa.quota_updated_at,
            }
        )
    return out


def dashboard_failed_imports(*, days: int = 7, limit: int = 5) -> list[dict]:
    since = timezone.now() - timedelta(days=days)
    rows = ContactImport.objects.filter(
        status=ContactImport.Status.FAILED, created_at__gte=since
    ).order_by("-created_at")[:limit]
    return [
        {"pk": i.pk, "name": i.original_name, "error": i.error_message, "at": i.created_at}
        for i in rows
    ]


def dashboard_webhooks(*, now: datetime | None = None) -> list[dict]:
    """Per active provider account: when its last callback arrived. Delivery receipts that stop
    arriving are the first sign of a broken webhook (wrong URL, expired token, firewall)."""
    now = now or timezone.now()
    out = []
    # Through the reverse relations webhooks' models declare (campaigns does not import webhooks):
    # STOP replies nobody could be matched to, and callbacks that could not be applied, both
    # waiting for a person.
    accounts = (
        ProviderAccount.objects.filter(is_active=True)
        .annotate(
            optouts_unmatched=Count(
                "inbound_messages",
                filter=Q(inbound_messages__opt_out_state="not_matched"),
                distinct=True,
            ),
            events_failed=Count(
                "webhook_events", filter=Q(webhook_events__outcome="failed"), distinct=True
            ),
        )
        .order_by("name")
    )
    for acc in accounts:
        last = acc.last_callback_at
        if last is None:
            health = "never"
        elif now - last <= WEBHOOK_FRESH:
            health = "ok"
        elif now - last <= WEBHOOK_STALE:
            health = "quiet"
        else:
            health = "stale"
        out.append(
            {
                "pk": acc.pk,
                "name": acc.name,
                "kind": acc.get_kind_display(),
                "last": last,
                "health": health,
                "optouts_unmatched": acc.optouts_unmatched,
                "events_failed": acc.events_failed,
            }
        )
    return out


def _cache_key() -> str:
    # Per language: the data holds translated labels and reasons (campaigns.notes).
    return f"{CACHE_KEY}:{translation.get_language() or settings.LANGUAGE_CODE}"


def dashboard_cache_clear() -> None:
    cache.delete_many([f"{CACHE_KEY}:{code}" for code, _name in settings.LANGUAGES])


def dashboard_data(*, use_cache: bool = True) -> dict:
    """Everything the dashboard shows, cached for a minute (the index is every admin's home)."""
    if use_cache:
        hit = cache.get(_cache_key())
        if hit is not None:
            return hit
    stats = dashboard_message_stats()
    data = {
        "stats": stats,
        "campaigns": dashboard_campaigns(),
        "outages": dashboard_outages(),
        "official_accounts": dashboard_official_accounts(),
        "failed_imports": dashboard_failed_imports(),
        "webhooks": dashboard_webhooks(),
        "generated_at": timezone.now(),
    }
    if use_cache:
        cache.set(_cache_key(), data, CACHE_SECONDS)
    return data
