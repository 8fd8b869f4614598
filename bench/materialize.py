"""Materialization beside its anchor (issue 22): Loa's campaign_materialize against a raw
INSERT ... SELECT of the same recipients into a table with the same columns and indexes, in the
same invocation, alternating, the ratio printed per pair and as a median.

    .venv/bin/python bench/materialize.py --contacts 1000000 --runs 3 \\
        --database-url postgres://postgres@127.0.0.1:5432/loa_bench

1. builds N contacts in one list (set-based SQL, bench/_fixtures.py) and the bench channel
   (Zalo ZNS: it reaches Vietnam only, so the reach rule runs as in production) and template;
2. per run: a new campaign over the list, `campaign_materialize` timed (the whole service:
   audience with opt-outs and consent, the INSERT ... SELECT, the reach marks, the template
   rules, the counts); then the anchor: `CREATE TABLE bench_raw_message (LIKE campaigns_message
   INCLUDING ALL)` (same columns, same indexes, no triggers) and one INSERT ... SELECT of the
   list's contacts with the same template data and key, timed. Between runs the previous
   campaign's messages are deleted and the table vacuumed, so both write into an equally empty
   table; each figure is printed with the load average.

PostgreSQL only (the anchor is PostgreSQL's own statement). --quick: 100,000 contacts.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as `python bench/materialize.py`: the project importable

from bench import _common as common  # noqa: E402 (after the path above)
from bench._fixtures import make_contacts, new_campaign, setup_channel  # noqa: E402

RAW = (
    "INSERT INTO bench_raw_message (campaign_id, contact_id, phone, idempotency_key,"
    " template_data, status, provider_message_id, error_class, error_code, error_message,"
    " attempts, created_at, updated_at)"
    " SELECT %(campaign)s, c.id, c.phone, %(prefix)s || c.id::text,"
    " jsonb_build_object('customer_name', trim(c.name),"
    " 'order_code', trim(coalesce(c.attributes ->> 'order', ''))),"
    " 'pending', '', '', '', '', 0, now(), now()"
    " FROM campaigns_contact c JOIN campaigns_contactlistmembership m ON m.contact_id = c.id"
    " WHERE m.contact_list_id = %(list)s"
)


def clean(cur) -> None:
    """Both tables empty of bench rows and vacuumed, the dirty pages written: each run starts
    from the same state."""
    cur.execute("DROP TABLE IF EXISTS bench_raw_message")
    cur.execute(
        "DELETE FROM campaigns_message WHERE campaign_id IN"
        " (SELECT id FROM campaigns_campaign WHERE name LIKE 'bench %%')"
    )
    cur.execute("VACUUM ANALYZE campaigns_message")
    cur.execute("CREATE TABLE bench_raw_message (LIKE campaigns_message INCLUDING ALL)")
    cur.execute("CHECKPOINT")


def run_loa(channel, template, list_id: int, two_pass: bool = False) -> tuple[float, float, int]:
    """campaign_materialize of a new campaign; with two_pass, as it was before issue 22: the
    recipients to skip found and updated after the build (materialize._marks switched off)."""
    from campaigns.engine import materialize

    campaign = new_campaign(channel, template, list_id)
    marks = materialize._marks
    if two_pass:
        materialize._marks = lambda campaign: None
    try:
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        n = materialize.campaign_materialize(campaign_id=campaign.pk)
        return time.perf_counter() - t0, time.process_time() - cpu0, n
    finally:
        materialize._marks = marks


def run_raw(list_id: int) -> tuple[float, int]:
    from django.db import connection, transaction

    t0 = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SET LOCAL work_mem = '256MB'")  # what Loa's build gives itself
        cur.execute(RAW, {"campaign": 0, "prefix": "loa0t0c", "list": list_id})
        n = cur.rowcount
    return time.perf_counter() - t0, n


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="100,000 contacts, 2 runs")
    parser.add_argument(
        "--two-pass",
        action="store_true",
        help="also time the build as it was before issue 22 (skips found after it), same runs",
    )
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""))
    args = parser.parse_args()
    if args.quick:
        args.contacts, args.runs = 100_000, 2
    env = {"DEBUG": "false", "LOG_LEVEL": "WARNING"}
    if args.database_url:
        env["DATABASE_URL"] = args.database_url
    common.setup_django(env)
    vendor = common.migrate_and_clear_queue()
    if vendor != "postgresql":
        print("materialize: PostgreSQL only (the anchor is its INSERT ... SELECT); skipped")
        return
    from django.db import connection

    common.machine_speed()
    t0 = time.perf_counter()
    list_id = make_contacts(args.contacts)
    channel, template = setup_channel("http://127.0.0.1:9")  # never sent to
    with connection.cursor() as cur:
        cur.execute("ANALYZE campaigns_contact")
        cur.execute("ANALYZE campaigns_contactlistmembership")
    print(f"{args.contacts:,} contacts in one list in {time.perf_counter() - t0:.1f} s")

    ratios, loa_s, raw_s, before = [], [], [], []
    for run in range(args.runs):
        # alternate which goes first: a cache warmed by one must not favour the same one
        order = ("loa", "raw") if run % 2 == 0 else ("raw", "loa")
        if args.two_pass:
            order = (*order, "two_pass") if run % 2 == 0 else ("two_pass", *order)
        took = {}
        for which in order:
            with connection.cursor() as cur:
                clean(cur)  # each into an equally empty messages table
            if which in ("loa", "two_pass"):
                wall, cpu, n = run_loa(channel, template, list_id, two_pass=which == "two_pass")
                took[which] = wall
                label = "Loa campaign_materialize" if which == "loa" else "two-pass (before)"
                print(
                    f"run {run + 1}: {label} {n:,} messages in {wall:.2f} s"
                    f" (Python CPU {cpu:.2f} s); load {os.getloadavg()[0]:.1f}"
                )
            else:
                wall, n = run_raw(list_id)
                took["raw"] = wall
                print(
                    f"run {run + 1}: raw INSERT ... SELECT {n:,} rows in {wall:.2f} s;"
                    f" load {os.getloadavg()[0]:.1f}"
                )
        ratio = took["loa"] / took["raw"]
        ratios.append(ratio)
        loa_s.append(took["loa"])
        raw_s.append(took["raw"])
        print(f"run {run + 1}: Loa / raw = {ratio:.3f}")
        if "two_pass" in took:
            before.append(took["two_pass"] / took["raw"])
            print(f"run {run + 1}: two-pass (before) / raw = {before[-1]:.3f}")
    median = statistics.median(ratios)
    print(
        f"SUMMARY over {len(ratios)} pair(s): Loa / raw median {median:.3f} (range"
        f" {min(ratios):.3f}-{max(ratios):.3f}); Loa median {statistics.median(loa_s):.2f} s"
        f" ({min(loa_s):.2f}-{max(loa_s):.2f}), raw median {statistics.median(raw_s):.2f} s"
        f" ({min(raw_s):.2f}-{max(raw_s):.2f})"
    )
    if before:
        print(
            f"SUMMARY before (two-pass) / raw median {statistics.median(before):.3f}"
            f" (range {min(before):.3f}-{max(before):.3f})"
        )
    common.figure(
        "materialize_vs_raw_insert_select",
        round(median, 3),
        "ratio",
        "<=1.2",
        median <= 1.2,
        size=args.contacts,
        runs=len(ratios),
        load=round(os.getloadavg()[0], 1),
    )
    with connection.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS bench_raw_message")


if __name__ == "__main__":
    main()
