"""Reads for a campaign's pages: stats from the campaign's counters (never COUNT(*) over all its
messages; only its `sent` rows are counted, for the receipts not come yet), the actions its status allows, the pre-flight, why contacts were left out, the live
panel's charts (a sampled timeline, the recent failure reasons) and its recipients' replies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, FloatField, Max, Min, Q
from django.db.models.expressions import RawSQL
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from campaigns.engine.audience import audience_consent_plan, campaign_audience
from campaigns.engine.lifecycle import RETRYABLE_FAILURES, campaign_check_sendable
from campaigns.engine.reach import campaign_unreachable
from campaigns.models import Campaign, Message, OptOut
from campaigns.selectors.contact import inbound_message_model
from providers.base import UNPROVEN
from providers.errors import explain

# Statuses in which a campaign still sends or settles: its page refreshes itself, the dashboard
# lists it among the active ones.
ACTIVE = (Campaign.Status.RUNNING, Campaign.Status.SETTLING, Campaign.Status.SCHEDULED)


def campaign_stats(*, campaign: Campaign) -> dict:
    c = (
        Campaign.objects.filter(pk=campaign.pk)
        .values(
            "status",
            "total_count",
            "sent_count",
            "delivered_count",
            "read_count",
            "failed_count",
            "unknown_count",
            "skipped_count",
            "cancelled_count",
            "fallback_count",
            "cost",
        )
        .first()
    )
    # A fallback chain's messages (campaigns.engine.fallback) are counted by the counters too:
    # the funnel's base is every message, the recipients line stays the recipients.
    recipients = c["total_count"] or 0
    total = recipients + (c["fallback_count"] or 0)
    cancelled = c["cancelled_count"]
    # Cancelled messages are handled too: a cancelled campaign waits for nothing.
    handled = min(total, c["sent_count"] + c["failed_count"] + c["skipped_count"] + cancelled)
    # A message can fail after it was sent: "queued" is what is still waiting for the provider.
    queued = max(0, total - handled - max(0, c["unknown_count"]))

    def pct(n):
        return round(100 * n / total, 1) if total else 0

    stats = {
        "status": c["status"],
        "status_label": str(Campaign.Status(c["status"]).label),
        "total": recipients,
        "messages": total,
        "fallback_messages": c["fallback_count"] or 0,
        "queued": queued,
        "sent": c["sent_count"],
        "delivered": c["delivered_count"],
        "read": c["read_count"],
        "failed": c["failed_count"],
        "unknown": max(0, c["unknown_count"]),
        "skipped": c["skipped_count"],
        "cancelled": cancelled,
        "cost": str(c["cost"]),
        "progress": int(100 * handled / total) if total else 0,
        "pct": {
            "sent": pct(c["sent_count"]),
            "delivered": pct(c["delivered_count"]),
            "read": pct(c["read_count"]),
            "failed": pct(c["failed_count"]),
            "cancelled": pct(cancelled),
        },
        "running": c["status"] in ACTIVE,
    }
    # Messages the provider took that have no delivery status yet, split by the reconciliation
    # window (campaign_receipts): 4-7% never get one, and the funnel says so.
    if c["sent_count"]:
        receipts = campaign_receipts(campaign=campaign)
        stats.update(receipts)
        stats["pct"]["awaiting_receipt"] = pct(receipts["awaiting_receipt"])
        stats["pct"]["no_receipt"] = pct(receipts["no_receipt"])
    else:
        stats.update(awaiting_receipt=0, no_receipt=0)
        stats["pct"].update(awaiting_receipt=0, no_receipt=0)
    stats["receipt_window_minutes"] = receipt_window_minutes()
    return stats


def receipt_window_minutes() -> int:
    """The reconciliation window: after this long with no receipt, a sent message is polled
    (campaigns.engine.reconcile) and counted as having "no receipt" (settings.LOA
    RECONCILE_AFTER_MINUTES, from LOA_RECONCILE_AFTER_MINUTES)."""
    return int(settings.LOA.get("RECONCILE_AFTER_MINUTES", 30))


def campaign_receipts(*, campaign: Campaign, now: datetime | None = None) -> dict:
    """The campaign's messages accepted by the provider (status `sent`) with no delivery status
    yet: `awaiting_receipt` were sent within the reconciliation window (a receipt may still
    come), `no_receipt` before it (none came; reconciliation asks the provider about them).
    One aggregate over the campaign's `sent` rows, from the partial index of them."""
    now = now or timezone.now()
    cutoff = now - timedelta(minutes=receipt_window_minutes())
    row = Message.objects.filter(campaign_id=campaign.pk, status=Message.Status.SENT).aggregate(
        # Counting campaign_id (never null), not id: msg_sent_by_campaign_idx (campaign, sent_at)
        # then answers from the index alone (9 s read from the table for 450,000 sent rows at
        # 50M messages).
        awaiting=Count("campaign_id", filter=Q(sent_at__gte=cutoff) | Q(sent_at__isnull=True)),
        missing=Count("campaign_id", filter=Q(sent_at__lt=cutoff)),
    )
    return {"awaiting_receipt": row["awaiting"] or 0, "no_receipt": row["missing"] or 0}


# Where a person may send failures again, or messages whose outcome could not be proven: a
# campaign that sends or sent (a paused one sends them when resumed).
RESENDABLE = (
    Campaign.Status.RUNNING,
    Campaign.Status.SETTLING,
    Campaign.Status.PAUSED,
    Campaign.Status.COMPLETED,
)


def campaign_allowed_actions(*, campaign: Campaign) -> list[str]:
    s = Campaign.Status
    actions = {
        s.DRAFT: ["send"],
        s.SCHEDULED: ["send", "cancel"],
        s.RUNNING: ["pause", "cancel"],
        s.SETTLING: ["pause", "cancel"],
        s.PAUSED: ["resume", "cancel"],
        s.FAILED: ["resume", "cancel"],
    }.get(campaign.status, [])
    if campaign.status in RESENDABLE:
        if campaign_retryable_failures(campaign=campaign).exists():
            actions.append("retry_failed")
        if campaign_unproven_messages(campaign=campaign).exists():
            actions.append("resend_unproven")
    return actions


def campaign_retryable_failures(*, campaign: Campaign):
    """The failed messages campaign_retry_failed would send again (its own rule,
    RETRYABLE_FAILURES): the provider did not take them, so a retry cannot make a second one."""
    return Message.objects.filter(campaign_id=campaign.pk).filter(RETRYABLE_FAILURES)


def campaign_unproven_messages(*, campaign: Campaign):
    """Messages whose outcome reconciliation could not prove (status unknown, error code
    status_unproven): they may have arrived; a person decides whether to send them again."""
    return Message.objects.filter(
        campaign_id=campaign.pk, status=Message.Status.UNKNOWN, error_code=UNPROVEN
    )


def campaign_preflight(*, campaign: Campaign) -> dict:
    # everyone the lists and segments target, opted out or not
    in_lists = campaign_audience(campaign, include_opted_out=True).count()
    with transaction.atomic():
        audience_consent_plan(campaign)
        recipients = campaign_audience(campaign).count()
    # Left out by the advertising-consent rule (counted only when the campaign has it).
    not_opted = (
        campaign_audience(campaign, include_unconsented=True).count()
        if campaign.requires_advertising_consent
        else recipients
    )
    price = campaign.template.price if campaign.template_id else 0
    oa = campaign.channel.official_account
    # Recipients the channel cannot reach (campaigns.engine.reach) are never sent or charged.
    unreachable = campaign_unreachable(campaign)
    will_receive = max(0, recipients - unreachable.total)
    return {
        "errors": campaign_check_sendable(campaign),
        "in_lists": in_lists,
        "recipients": recipients,
        "opted_out": in_lists - not_opted,
        "no_consent": not_opted - recipients,
        "requires_consent": campaign.requires_advertising_consent,
        "unreachable": unreachable.total,
        "unreachable_rows": unreachable.rows(),
        "reach": unreachable.reach.countries_text(),
        "will_receive": will_receive,
        "cost": price * will_receive,
        "remaining_quota": oa.remaining_quota if oa else None,
        "over_quota": bool(
            oa and oa.remaining_quota is not None and recipients > oa.remaining_quota
        ),
        "opt_out_kinds": [campaign.channel.kind, OptOut.ALL],
    }


# Why contacts were left out when the campaign was built (Campaign.excluded keys).
EXCLUDED_LABELS = {
    "opted_out": _("opted out of this channel"),
    "no_consent": _("no advertising consent for this channel"),
    "invalid": _("refused by the template's rules"),
    "invalid_params": _("refused by the template's rules"),
    "frequency": _("already got the most promotion messages allowed"),
    "frequency_cap": _("already got the most promotion messages allowed"),
}


def campaign_excluded_reasons(*, campaign: Campaign) -> list[tuple[str, int]]:
    """(why, how many) for the contacts the campaign's build left out, in words."""
    excluded = campaign.excluded or {}
    return [
        (str(EXCLUDED_LABELS.get(k, k)), n)
        for k, n in excluded.items()
        if isinstance(n, int) and n > 0
    ]


# ---- the campaign page: charts that stay cheap at a million messages ---------------------------

TIMELINE_SAMPLE = 2_000
# Bucket widths in seconds, smallest first: the first giving at most TIMELINE_MAX_BUCKETS wins.
TIMELINE_STEPS = [10, 30, 60, 300, 900, 3600, 6 * 3600, 86400]
TIMELINE_MAX_BUCKETS = 60


def campaign_id_range(*, campaign: Campaign) -> tuple[int, int] | None:
    """Smallest and largest message id of a campaign, from the claim index alone.

    msg_claim_idx is (campaign, status, id): min/max of id per status is one index probe each,
    where a plain MIN(id) over the campaign would read every row (PostgreSQL has no skip scan
    before version 18). One statement, one plan: a LATERAL probe per status.
    """
    if connection.vendor != "postgresql":
        row = Message.objects.filter(campaign_id=campaign.pk).aggregate(lo=Min("id"), hi=Max("id"))
        return None if row["lo"] is None else (row["lo"], row["hi"])
    statuses = list(Message.Status.values)
    values = ", ".join(["(%s)"] * len(statuses))
    with connection.cursor() as cur:
        cur.execute(
            f"""SELECT min(x.lo), max(x.hi) FROM (VALUES {values}) AS s(st)
                CROSS JOIN LATERAL (
                    SELECT min(m.id) AS lo, max(m.id) AS hi FROM {Message._meta.db_table} m
                    WHERE m.campaign_id = %s AND m.status = s.st
                ) x""",
            [*statuses, campaign.pk],
        )
        lo, hi = cur.fetchone()
    return None if lo is None else (lo, hi)


def _epoch(field: str):
    """Seconds since 1970 as a float, computed by the database: parsing tens of thousands of
    timezone-aware datetimes in Python costs more than the query itself."""
    column = Message._meta.get_field(field).column
    if connection.vendor == "postgresql":
        return RawSQL(f"EXTRACT(EPOCH FROM {column})", [], output_field=FloatField())
    return RawSQL(f"CAST(strftime('%%s', {column}) AS REAL)", [], output_field=FloatField())


def campaign_send_timeline(*, campaign: Campaign) -> dict:
    """Messages handed to the provider over time, bucketed by minute, hour or day (local time).

    Reads at most about TIMELINE_SAMPLE rows, by primary key, spread evenly over the campaign's
    id range: a campaign that small is counted exactly; a larger one is sampled, each sampled
    send standing for total/sampled messages. Drivers claim in id order, so an even spread over
    ids is an even spread over the campaign. A few milliseconds at any size.
    """
    empty = {"buckets": [], "step": 0, "sampled": False, "max": 0}
    if not campaign.sent_count and not campaign.failed_count:
        return empty
    bounds = campaign_id_range(campaign=campaign)
    if bounds is None:
        return empty
    lo, hi = bounds
    stride = max(1, -(-(hi - lo + 1) // TIMELINE_SAMPLE))  # ceil: never more than the sample
    qs = Message.objects.filter(campaign_id=campaign.pk)
    if connection.vendor == "postgresql":
        # The ids are generated by the server: thousands of placeholders cost more than the probes.
        qs = qs.extra(
            where=[f"{Message._meta.db_table}.id = ANY(ARRAY(SELECT generate_series(%s, %s, %s)))"],
            params=[lo, hi, stride],
        )
    else:
        qs = qs.filter(pk__in=list(range(lo, hi + 1, stride)))
    rows = list(qs.annotate(t=_epoch("sent_at")).values_list("t", flat=True))
    if not rows:
        return empty
    times = [t for t in rows if t is not None]
    if not times:
        return empty
    sampled = stride > 1
    weight = (campaign.total_count or len(rows)) / len(rows) if sampled else 1.0
    first, last = min(times), max(times)
    span = max(1.0, last - first)
    step = next((s for s in TIMELINE_STEPS if span / s < TIMELINE_MAX_BUCKETS), TIMELINE_STEPS[-1])
    # Align the first bucket on a round local boundary (minute, hour, midnight).
    floor = timezone.localtime(datetime.fromtimestamp(first, tz=UTC))
    floor = floor.replace(
        second=floor.second - floor.second % step if step < 60 else 0, microsecond=0
    )
    if step >= 3600:
        floor = floor.replace(minute=0)
    if step >= 86400:
        floor = floor.replace(hour=0)
    elif step > 3600:
        floor = floor.replace(hour=floor.hour - floor.hour % (step // 3600))
    elif step > 60:
        floor = floor.replace(minute=floor.minute - floor.minute % (step // 60))
    origin = floor.timestamp()
    n = int((last - origin) // step) + 1
    counts = [0] * n
    for t in times:
        counts[int((t - origin) // step)] += 1
    buckets = [
        {"start": floor + timedelta(seconds=i * step), "count": round(c * weight)}
        for i, c in enumerate(counts)
    ]
    return {
        "buckets": buckets,
        "step": step,
        "sampled": sampled,
        "max": max(b["count"] for b in buckets),
    }


RECENT_FAILURES = 5_000


def campaign_failure_reasons(*, campaign: Campaign, limit: int = 8) -> dict:
    """Why messages failed, from the most recent failures only (an index range on msg_claim_idx,
    so the page stays fast when a million-message campaign has tens of thousands of failures)."""
    # A derived table, not "id IN (subquery)": PostgreSQL plans the IN form as a hash semi-join
    # over the whole messages table (a sequential scan); this form reads the index range only.
    with connection.cursor() as cur:
        cur.execute(
            f"""SELECT error_code, COUNT(*) AS n FROM (
                    SELECT error_code FROM {Message._meta.db_table}
                    WHERE campaign_id = %s AND status = %s
                    ORDER BY id DESC LIMIT %s
                ) recent GROUP BY error_code ORDER BY n DESC, error_code""",
            [campaign.pk, Message.Status.FAILED.value, RECENT_FAILURES],
        )
        rows = [{"error_code": code or "", "n": n} for code, n in cur.fetchall()]
    seen = sum(r["n"] for r in rows)
    reasons = [
        {
            "code": r["error_code"],
            "count": r["n"],
            "pct": round(100 * r["n"] / seen, 1) if seen else 0,
            "meaning": explain(r["error_code"]) if r["error_code"] else "",
        }
        for r in rows[:limit]
    ]
    other = sum(r["n"] for r in rows[limit:])
    if other:
        reasons.append(
            {"code": "", "count": other, "pct": round(100 * other / seen, 1), "meaning": ""}
        )
    return {"reasons": reasons, "seen": seen, "partial": seen >= RECENT_FAILURES}


def campaign_replies(*, campaign: Campaign, limit: int = 20) -> list:
    """Replies from the campaign's recipients on its channel since it started, newest first."""
    model = inbound_message_model()
    if model is None or campaign.started_at is None:
        return []
    recipients = Message.objects.filter(campaign=campaign).values("contact_id")
    return list(
        model.objects.filter(
            contact_id__in=recipients,
            channel_id=campaign.channel_id,
            received_at__gte=campaign.started_at,
        )
        .select_related("contact")
        .order_by("-pk")[:limit]
    )
