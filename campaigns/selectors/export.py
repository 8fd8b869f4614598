"""A campaign's results out to a spreadsheet: every recipient's outcome, in message order, as a
streamed CSV (the XLSX twin is export_xlsx.py, apart so openpyxl loads only when it is used)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from django.db.models import QuerySet
from django.utils import timezone

from campaigns.models import Campaign, Message
from providers.shared.phones import format_local
from providers.shared.text import csv_safe

EXPORT_FIELDS = (
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
# The column names of EXPORT_FIELDS, "contact__name" shown as "name", and after the phone as
# stored and sent (international: 84912345678) the phone as people write it in its country
# ("0912 345 678", "012 345 678"): phone_local, in both exports.
EXPORT_HEADER = [
    EXPORT_FIELDS[0],
    "phone_local",
    *(f.removeprefix("contact__") for f in EXPORT_FIELDS[1:]),
]


def campaign_export_queryset(*, campaign: Campaign) -> QuerySet:
    """Every recipient's outcome, in message order: the rows of both exports (CSV and XLSX)."""
    return (
        Message.objects.filter(campaign_id=campaign.pk).order_by("id").values_list(*EXPORT_FIELDS)
    )


def campaign_export_rows(*, campaign: Campaign) -> Iterator[str]:
    """CSV of every recipient's outcome, streamed; cells are formula-injection safe."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(EXPORT_HEADER)
    yield "\ufeff" + buf.getvalue()
    qs = campaign_export_queryset(campaign=campaign)
    for phone, *rest in qs.iterator(chunk_size=2000):
        buf.seek(0)
        buf.truncate()
        w.writerow(
            [
                csv_safe(phone),
                csv_safe(format_local(phone)),
                *(
                    csv_safe(
                        timezone.localtime(v).strftime("%Y-%m-%d %H:%M:%S")
                        if hasattr(v, "tzinfo") and v
                        else v
                    )
                    for v in rest
                ),
            ]
        )
        yield buf.getvalue()
