"""Reads for the admin: campaign stats from counters (never COUNT(*) over messages), pre-flight,
export rows."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from django.db.models import Count
from django.utils import timezone

from campaigns.models import Campaign, Message, OptOut


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
            "cost",
        )
        .first()
    )
    total = c["total_count"] or 0
    handled = min(total, c["sent_count"] + c["failed_count"] + c["skipped_count"])
    # A message can fail after it was sent: "queued" is what is still waiting for the provider.
    queued = max(0, total - handled - max(0, c["unknown_count"]))

    def pct(n):
        return round(100 * n / total, 1) if total else 0

    return {
        "status": c["status"],
        "status_label": str(Campaign.Status(c["status"]).label),
        "total": total,
        "queued": queued,
        "sent": c["sent_count"],
        "delivered": c["delivered_count"],
        "read": c["read_count"],
        "failed": c["failed_count"],
        "unknown": max(0, c["unknown_count"]),
        "skipped": c["skipped_count"],
        "cost": str(c["cost"]),
        "progress": int(100 * handled / total) if total else 0,
        "pct": {
            "sent": pct(c["sent_count"]),
            "delivered": pct(c["delivered_count"]),
            "read": pct(c["read_count"]),
            "failed": pct(c["failed_count"]),
        },
        "running": c["status"] in (Campaign.Status.RUNNING, Campaign.Status.SCHEDULED),
    }


def campaign_allowed_actions(*, campaign: Campaign) -> list[str]:
    s = Campaign.Status
    return {
        s.DRAFT: ["send"],
        s.SCHEDULED: ["send", "cancel"],
        s.RUNNING: ["pause", "cancel"],
        s.PAUSED: ["resume", "cancel"],
        s.FAILED: ["resume", "cancel"],
    }.get(campaign.status, [])


def campaign_recent_failures(*, campaign: Campaign, limit: int = 10) -> list[dict]:
    from providers.errors import explain

    rows = (
        Message.objects.filter(campaign=campaign, status=Message.Status.FAILED)
        .values("error_code")
        .annotate(n=Count("id"))
        .order_by("-n")[:limit]
    )
    return [
        {"code": r["error_code"], "count": r["n"], "meaning": explain(r["error_code"])}
        for r in rows
    ]


def campaign_preflight(*, campaign: Campaign) -> dict:
    from campaigns.models import Contact
    from campaigns.services import audience_queryset, campaign_check_sendable

    in_lists = (
        Contact.objects.filter(memberships__contact_list__campaigns=campaign).distinct().count()
    )
    recipients = audience_queryset(campaign).count()
    price = campaign.template.price if campaign.template_id else 0
    oa = campaign.channel.official_account
    return {
        "errors": campaign_check_sendable(campaign),
        "in_lists": in_lists,
        "recipients": recipients,
        "opted_out": in_lists - recipients,
        "cost": price * recipients,
        "remaining_quota": oa.remaining_quota if oa else None,
        "over_quota": bool(
            oa and oa.remaining_quota is not None and recipients > oa.remaining_quota
        ),
        "opt_out_kinds": [campaign.channel.kind, OptOut.ALL],
    }


def _safe(value) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text and text[0] in "=+-@\t\r" else text


def campaign_export_rows(*, campaign: Campaign) -> Iterator[str]:
    """CSV of every recipient's outcome, streamed; cells are formula-injection safe."""
    buf = io.StringIO()
    w = csv.writer(buf)
    header = [
        "phone",
        "name",
        "status",
        "error_code",
        "error_message",
        "fee",
        "sent_at",
        "delivered_at",
        "read_at",
        "failed_at",
        "provider_message_id",
    ]
    w.writerow(header)
    yield "\ufeff" + buf.getvalue()
    qs = (
        Message.objects.filter(campaign=campaign)
        .order_by("id")
        .values_list(
            "phone",
            "contact__name",
            "status",
            "error_code",
            "error_message",
            "fee",
            "sent_at",
            "delivered_at",
            "read_at",
            "failed_at",
            "provider_message_id",
        )
    )
    for row in qs.iterator(chunk_size=2000):
        buf.seek(0)
        buf.truncate()
        w.writerow(
            [
                _safe(
                    timezone.localtime(v).strftime("%Y-%m-%d %H:%M:%S")
                    if hasattr(v, "tzinfo") and v
                    else v
                )
                for v in row
            ]
        )
        yield buf.getvalue()
