"""The 10M-tenant figures of issue 22, on the database bench/scale_build.py builds.

    .venv/bin/python bench/scale_build.py            # once: loa_scale10m, ~20 minutes
    .venv/bin/python bench/scale_pages.py            # the figures below, against it
    .venv/bin/python bench/scale_pages.py --only pages,segments

Each figure is printed with its target and the machine's load average (the box is shared):

- pages: server time (Django test client, DEBUG off, superuser; median of 5 after a warm-up) of
  the contact list, contact search by name and by phone, message search by phone and by campaign
  (and its failures), the campaign page, the campaign list and the dashboard (cache cleared):
  each < 300 ms;
- segments: the live count the segment admin shows, per segment: < 1 s;
- export: the results export of the 1,000,000-recipient campaign through the admin's view
  (streamed; consumed chunk by chunk): > 50,000 rows/s, peak memory growth < 200 MB;
- materialize: a campaign to all 10,000,000 contacts (its two lists) built by
  campaigns.engine.materialize, inside a transaction rolled back afterwards (the database keeps
  its 50M messages): < 120 s;
- purge: the retention purge (webhooks purge_old_data) of the oldest month (December 2025, the
  messages of one campaign): < 10 s; the month is rebuilt afterwards with the generator's SQL.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import quote_plus

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import figure, scale_database_argument  # noqa: E402

RUNS = 5
PAGE_MS, SEGMENT_MS, MATERIALIZE_S, EXPORT_MB, EXPORT_RPS, PURGE_S = 300, 1000, 120, 200, 50000, 10


def load() -> str:
    return f"{os.getloadavg()[0]:.2f}"


def setup(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ["DEBUG"] = "false"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    """(milliseconds, result) of one call."""
    t0 = time.perf_counter()
    result = fn(*args, **kwargs)
    return (time.perf_counter() - t0) * 1000, result


def median_ms(run) -> tuple[float, object]:
    """`run()` gives (ms, result): called RUNS + 1 times, the first only warming caches and the
    connection; (median of the others' ms, the last result)."""
    times, result = [], None
    for i in range(RUNS + 1):
        ms, result = run()
        if i:
            times.append(ms)
    return statistics.median(times), result


def pages() -> None:
    from django.contrib.auth.models import User
    from django.test import Client
    from django.urls import reverse

    from campaigns.models import Campaign, Contact, Message
    from campaigns.selectors.dashboard import dashboard_cache_clear

    client = Client(HTTP_HOST="localhost")
    client.force_login(User.objects.get(username="admin"))
    biggest = Campaign.objects.order_by("-total_count", "pk").first()
    last = Contact.objects.order_by("-pk").values_list("pk", flat=True).first()
    phone = Contact.objects.filter(pk=last * 43 // 100).values_list("phone", flat=True).get()
    local = quote_plus(f"0{phone[2:5]} {phone[5:8]} {phone[8:]}")  # as people type it
    msg = Message.objects.filter(campaign_id=biggest.pk).order_by("pk")[1000:1001].get()
    urls = {
        "contact_list": reverse("admin:campaigns_contact_changelist"),
        "contact_search_name": reverse("admin:campaigns_contact_changelist") + "?q=nguyen+van+an",
        "contact_search_phone": reverse("admin:campaigns_contact_changelist") + f"?q={local}",
        "message_search_phone": reverse("admin:campaigns_message_changelist") + f"?q={local}",
        "message_search_key": reverse("admin:campaigns_message_changelist")
        + f"?q={msg.idempotency_key}",
        "message_list_campaign": reverse("admin:campaigns_message_changelist")
        + f"?campaign__id__exact={biggest.pk}",
        "message_list_campaign_failed": reverse("admin:campaigns_message_changelist")
        + f"?campaign__id__exact={biggest.pk}&status__exact=failed",
        "message_list_campaign_page_50": reverse("admin:campaigns_message_changelist")
        + f"?campaign__id__exact={biggest.pk}&p=49",
        "campaign_page": reverse("admin:campaigns_campaign_change", args=[biggest.pk]),
        "campaign_list": reverse("admin:campaigns_campaign_changelist"),
        "dashboard": reverse("admin:index"),
    }
    for name, url in urls.items():

        def get(name=name, url=url):
            if name == "dashboard":
                dashboard_cache_clear()
            ms, response = timed(client.get, url)
            if response.status_code != 200:
                raise SystemExit(f"{url}: HTTP {response.status_code}")
            return ms, None

        med, _ = median_ms(get)
        figure(
            f"{name}_ms", round(med, 1), "ms", f"<{PAGE_MS}", med < PAGE_MS, load=load(), url=url
        )


def segments() -> None:
    from campaigns.contacts.segments import (
        IndexedMatches,
        count_estimate,
        count_within,
        segment_count,
        segment_matching_for_count,
        segment_queryset,
    )
    from campaigns.models import Segment

    for segment in Segment.objects.order_by("pk"):
        # What the admin counts (the segment index once built), and beside it, as the anchor,
        # the same count on the contacts table (what Loa did before the index; must agree).
        matches = segment_matching_for_count(segment)
        path = "index" if isinstance(matches, IndexedMatches) else "contacts"
        med, n = median_ms(lambda s=segment: timed(segment_count, s, timeout_ms=30_000))
        anchor, n_contacts = median_ms(
            lambda s=segment: timed(lambda: count_within(segment_queryset(s), timeout_ms=60_000))
        )
        if n != n_contacts:
            raise SystemExit(f"{segment.name}: {n} counted on the {path}, {n_contacts} on contacts")
        figure(
            f"segment_count_{segment.pk}_ms",
            round(med, 1),
            "ms",
            f"<{SEGMENT_MS}",
            med < SEGMENT_MS,
            load=load(),
            count=n,
            path=path,
            contacts_table_ms=round(anchor, 1),
            ratio=round(med / anchor, 3) if anchor else "-",
            segment=segment.name.replace(" ", "_"),
        )
        # What the segment list shows when the exact count does not fit its 300 ms: an estimate
        # from 1% of the table's pages (no target of its own; its error is printed).
        med, est = median_ms(lambda s=segment: timed(lambda: count_estimate(segment_queryset(s))))
        error = round(100 * (est - n) / n, 1) if est is not None and n else "-"
        figure(
            f"segment_estimate_{segment.pk}_ms",
            round(med, 1),
            "ms",
            f"<{SEGMENT_MS}",
            med < SEGMENT_MS,
            load=load(),
            estimate=est,
            error_pct=error,
        )


def export() -> None:
    from django.contrib.auth.models import User
    from django.test import Client
    from django.urls import reverse

    from campaigns.models import Campaign

    campaign = Campaign.objects.get(name="Xác nhận đơn hàng tháng 10")  # 1,000,000 recipients
    client = Client(HTTP_HOST="localhost")
    client.force_login(User.objects.get(username="admin"))
    url = reverse("admin:campaigns_campaign_export", args=[campaign.pk])
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    cpu0, t0 = time.process_time(), time.perf_counter()
    response = client.get(url)
    size = rows = 0
    for chunk in response.streaming_content:
        size += len(chunk)
        rows += chunk.count(b"\n")
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - rss0
    rows -= 1  # the header
    rps = rows / elapsed
    figure(
        "export_1m_rows_per_s",
        round(rps),
        "rows/s",
        f">{EXPORT_RPS}",
        rps > EXPORT_RPS,
        load=load(),
        rows=rows,
        seconds=round(elapsed, 1),
        python_cpu_s=round(cpu, 1),
        mb=round(size / 1e6, 1),
    )
    figure(
        "export_1m_peak_rss_growth_mb",
        round(growth, 1),
        "MB",
        f"<{EXPORT_MB}",
        growth < EXPORT_MB,
        load=load(),
    )


def materialize() -> None:
    from django.db import transaction

    from campaigns.engine.materialize import campaign_materialize
    from campaigns.models import Campaign, ContactList

    template = Campaign.objects.order_by("pk").first()

    class Rollback(Exception):
        pass

    n = 0
    t0 = time.perf_counter()
    try:
        with transaction.atomic():
            c = Campaign.objects.create(
                name="Bench: materialize 10M",
                channel_id=template.channel_id,
                template_id=template.template_id,
                param_mapping=template.param_mapping,
                status=Campaign.Status.SCHEDULED,
            )
            c.lists.set(ContactList.objects.all())
            n = campaign_materialize(campaign_id=c.pk)
            elapsed = time.perf_counter() - t0
            raise Rollback
    except Rollback:
        pass
    # The rolled-back rows are dead at the top of the primary key: until a VACUUM, every
    # MAX(id) (the dashboard, the campaign page) walks past them (seen: 0.6 s a query after four
    # runs on a machine whose autovacuum is off). Not timed.
    from django.db import connection

    t1 = time.perf_counter()
    with connection.cursor() as cur:
        cur.execute("VACUUM campaigns_message")
    print(f"  vacuumed after the rollback in {time.perf_counter() - t1:.0f} s", flush=True)
    figure(
        "materialize_10m_s",
        round(elapsed, 1),
        "s",
        f"<{MATERIALIZE_S}",
        elapsed < MATERIALIZE_S,
        load=load(),
        messages=n,
        rate=round(n / elapsed),
    )


def purge(url: str) -> None:
    import datetime as dt

    import psycopg
    from django.db import connection
    from django.utils import timezone

    from campaigns.models import Campaign, Message
    from webhooks.management.commands.purge_old_data import data_purge

    oldest = Campaign.objects.filter(status="completed").order_by("finished_at").first()
    n = Message.objects.filter(campaign_id=oldest.pk).count()
    if not n:
        raise SystemExit(f"campaign {oldest.pk} has no messages: rebuild it first")
    # "now" one year and a day after that campaign ended, the window a year: only its month goes.
    now = oldest.finished_at + dt.timedelta(days=366)
    nxt = Campaign.objects.filter(finished_at__gt=oldest.finished_at).order_by("finished_at")
    assert nxt.first().finished_at > now - dt.timedelta(days=365), "more than one month"
    t0 = time.perf_counter()
    done = data_purge(now=now, message_days=365, attempt_days=0, webhook_days=0, body_days=0)
    elapsed = time.perf_counter() - t0
    figure(
        "purge_month_s",
        round(elapsed, 1),
        "s",
        f"<{PURGE_S}",
        elapsed < PURGE_S,
        load=load(),
        messages=done["messages"],
        month=timezone.localtime(oldest.started_at).strftime("%Y-%m"),
    )
    # Put the month back, as the generator made it.
    from bench.scale_build import messages_sql
    from campaigns.engine.keys import idempotency_key

    stamp = idempotency_key(oldest, 0)[len(f"loa{oldest.pk}t") : -len("c0")]
    c = {"id": oldest.pk, "size": n, "offset": 0, "start": oldest.started_at, "st": "completed"}
    c["t"] = stamp
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM campaigns_contact")
        contacts = cur.fetchone()[0]
    t1 = time.perf_counter()
    sql, params = messages_sql(c, 0, n - 1, contacts)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.replace(" % ", " %% "), params)
        conn.execute("VACUUM ANALYZE campaigns_message")
    print(f"  month rebuilt ({n} messages) in {time.perf_counter() - t1:.0f} s", flush=True)


def main() -> None:
    global RUNS
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    scale_database_argument(ap)
    ap.add_argument("--only", default="pages,segments,export,materialize,purge")
    ap.add_argument("--runs", type=int, default=RUNS, help="timed runs per figure (median)")
    args = ap.parse_args()
    RUNS = args.runs
    setup(args.database_url)
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            "SELECT relname, reltuples::bigint FROM pg_class"
            " WHERE relname IN ('campaigns_contact', 'campaigns_message')"
        )
        sizes = dict(cur.fetchall())
    print(
        f"database {args.database_url.rsplit('/', 1)[-1]}: ~{sizes.get('campaigns_contact', 0):,}"
        f" contacts, ~{sizes.get('campaigns_message', 0):,} messages; cpus {os.cpu_count()},"
        f" load {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
        flush=True,
    )
    only = args.only.split(",")
    for name in ("pages", "segments", "export", "materialize", "purge"):
        if name in only:
            if name == "purge":
                purge(args.database_url)
            else:
                globals()[name]()


if __name__ == "__main__":
    main()
