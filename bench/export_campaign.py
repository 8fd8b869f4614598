"""Benchmark: a campaign's marketer export (campaigns.selectors.export), CSV and XLSX.

    .venv/bin/python bench/export_campaign.py --messages 100000
    .venv/bin/python bench/export_campaign.py --messages 100000 \
        --database-url postgres://postgres@127.0.0.1:5432/loa_bench

Builds (once, then reuses) a ZNS campaign of N messages over N bench contacts with an order code
attribute (delivered, read, failed with a Zalo code, sent without a receipt), then times both
exports as the admin serves them: the CSV streamed chunk by chunk, the XLSX written in openpyxl's
write-only mode to a temporary file. Peak memory is the growth of the process's maximum resident
set while each export runs: an export that streams stays flat whatever N.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import figure, machine_speed  # noqa: E402


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--messages", type=int, default=100_000, help="campaign size (default 100000)")
    p.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL")
        or f"sqlite:///{ROOT / 'tmp' / 'bench_export.sqlite3'}",
        help="database to use (default: a dedicated SQLite file under tmp/)",
    )
    p.add_argument("--quick", action="store_true", help="20000 messages (make bench)")
    args = p.parse_args()
    if args.quick:
        args.messages = 20_000
    return args


def setup_django(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    if database_url.startswith("sqlite:///"):
        Path(database_url[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def build(n: int):
    """The bench campaign of n messages: reused when one of that size exists."""
    from django.db import connection

    from bench._fixtures import make_contacts, new_campaign, setup_channel
    from campaigns.models import Campaign

    existing = Campaign.objects.filter(name__startswith="bench export", total_count=n).first()
    if existing:
        return existing
    list_id = make_contacts(n)
    channel, template = setup_channel("http://127.0.0.1:9")
    campaign = new_campaign(channel, template, list_id)
    Campaign.objects.filter(pk=campaign.pk).update(
        name=f"bench export {campaign.pk}", total_count=n, status=Campaign.Status.COMPLETED
    )
    pg = connection.vendor == "postgresql"
    # Every 20th failed with -108, every 15th sent without a receipt, a third read, the rest
    # delivered; the parameters frozen as the engine freezes them.
    status = (
        "CASE WHEN m.id %% 20 = 0 THEN 'failed' WHEN m.id %% 15 = 0 THEN 'sent'"
        " WHEN m.id %% 3 = 0 THEN 'read' ELSE 'delivered' END"
    )
    data = (
        "jsonb_build_object('customer_name', c.name, 'order_code', c.attributes->>'order')"
        if pg
        else "json_object('customer_name', c.name, 'order_code', json_extract(c.attributes, '$.order'))"
    )
    with connection.cursor() as cur:
        cur.execute(
            "INSERT INTO campaigns_message (campaign_id, contact_id, phone, template_data,"
            " idempotency_key, provider_message_id, status, error_class, error_code,"
            " error_message, fee, attempts, sent_at, delivered_at, read_at, failed_at,"
            " created_at, updated_at)"
            f" SELECT %s, c.id, c.phone, {data}, 'b' || %s || '-' || c.id, 'p' || c.id, 'pending',"
            " '', '', '', 300, 1, CURRENT_TIMESTAMP, NULL, NULL, NULL,"
            " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP"
            " FROM campaigns_contact c JOIN campaigns_contactlistmembership l"
            " ON l.contact_id = c.id WHERE l.contact_list_id = %s",
            [campaign.pk, campaign.pk, list_id],
        )
        cur.execute(
            f"UPDATE campaigns_message AS m SET status = {status} WHERE campaign_id = %s",
            [campaign.pk],
        )
        cur.execute(
            "UPDATE campaigns_message SET error_code = '-108', failed_at = sent_at, fee = NULL"
            " WHERE campaign_id = %s AND status = 'failed'",
            [campaign.pk],
        )
        cur.execute(
            "UPDATE campaigns_message SET delivered_at = sent_at"
            " WHERE campaign_id = %s AND status IN ('delivered', 'read')",
            [campaign.pk],
        )
        cur.execute(
            "UPDATE campaigns_message SET read_at = sent_at WHERE campaign_id = %s AND status = 'read'",
            [campaign.pk],
        )
    campaign.refresh_from_db()
    return campaign


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    args = parse_args()
    setup_django(args.database_url)
    from django.utils import translation

    from campaigns.selectors.campaign import campaign_receipts
    from campaigns.selectors.export import campaign_export_rows
    from campaigns.selectors.export_xlsx import campaign_export_xlsx

    machine_speed()
    campaign = build(args.messages)
    n = args.messages
    # The campaign page's missing-receipts slices: one aggregate over the campaign's sent rows.
    started = time.perf_counter()
    receipts = campaign_receipts(campaign=campaign)
    figure(
        "receipts_count_ms",
        round(1000 * (time.perf_counter() - started), 1),
        "ms",
        "-",
        None,
        messages=n,
        awaiting=receipts["awaiting_receipt"],
        missing=receipts["no_receipt"],
    )
    with translation.override("vi"):
        before = peak_mb()
        started = time.perf_counter()
        size = sum(len(chunk) for chunk in campaign_export_rows(campaign=campaign))
        csv_s = time.perf_counter() - started
        csv_mb = peak_mb() - before
        figure("export_csv_s", round(csv_s, 2), "s", "-", None, messages=n, chars=size)
        figure("export_csv_rows_per_s", round(n / csv_s), "rows/s", "-", None)
        figure("export_csv_peak_rss_growth_mb", round(csv_mb, 1), "MB", "-", None)

        before = peak_mb()
        started = time.perf_counter()
        with tempfile.TemporaryFile() as fh:
            rows = campaign_export_xlsx(campaign=campaign, fileobj=fh)
            fh.seek(0, 2)
            xlsx_bytes = fh.tell()
        xlsx_s = time.perf_counter() - started
        xlsx_mb = peak_mb() - before
        figure("export_xlsx_s", round(xlsx_s, 2), "s", "-", None, messages=rows, bytes=xlsx_bytes)
        figure("export_xlsx_rows_per_s", round(rows / xlsx_s), "rows/s", "-", None)
        figure("export_xlsx_peak_rss_growth_mb", round(xlsx_mb, 1), "MB", "-", None)


if __name__ == "__main__":
    main()
