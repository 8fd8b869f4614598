"""Admin pages at scale: the campaign page and the message list of a campaign of N messages.

    .venv/bin/python bench/admin_pages.py --messages 1000000 \\
        --database-url postgres://postgres@127.0.0.1:5432/loa_bench

Targets (issue 5): the campaign page under 200 ms server time for a campaign of 1,000,000
messages (its figures come from counters on the campaign row, never COUNT(*)); the message list
filtered by campaign under 300 ms.

What it does:
1. migrates the database (use a scratch database: the script adds its own rows to it);
2. removes what an earlier run of this script left, then creates, in set-based SQL
   (generate_series, PostgreSQL): N contacts, a campaign of N messages in realistic final states
   (read, delivered, sent, failed with real Zalo codes) sent over two hours, and a second, newer
   campaign of N/10 messages so the big one is not simply "the last rows of the table";
   then VACUUM ANALYZE;
3. times each page through Django's test client (server time: request in, response rendered,
   DEBUG off), median of several runs after a warm-up, and prints the figures against the targets.

Flags: --runs, --skip-create (measure what is there), --cleanup (remove the rows afterwards).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as `python bench/admin_pages.py`: the project importable

from bench._common import setup_django  # noqa: E402 (after the path above)

TAG = "bench-admin"  # Contact.source and campaign-name prefix of the rows this script owns
TARGETS_MS = {"campaign page": 200, "message list of the campaign": 300}


def _defaults(model, skip: set[str]) -> tuple[list[str], list]:
    """Column names and values for every concrete column not in `skip`: the field's default, so
    this script keeps working when other columns are added to the model."""
    from django.db import connection

    cols, values = [], []
    for f in model._meta.concrete_fields:
        if f.primary_key or f.column in skip:
            continue
        if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
            from django.utils import timezone

            default = timezone.now()
        else:
            default = f.get_default()
        cols.append(f.column)
        values.append(f.get_db_prep_save(default, connection))
    return cols, values


def cleanup() -> None:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            "DELETE FROM campaigns_message WHERE campaign_id IN "
            "(SELECT id FROM campaigns_campaign WHERE name LIKE %s)",
            [f"{TAG}:%"],
        )
        cur.execute(
            "DELETE FROM campaigns_campaignevent WHERE campaign_id IN "
            "(SELECT id FROM campaigns_campaign WHERE name LIKE %s)",
            [f"{TAG}:%"],
        )
        cur.execute(
            "DELETE FROM campaigns_campaign_lists WHERE campaign_id IN "
            "(SELECT id FROM campaigns_campaign WHERE name LIKE %s)",
            [f"{TAG}:%"],
        )
        cur.execute("DELETE FROM campaigns_campaign WHERE name LIKE %s", [f"{TAG}:%"])
        cur.execute(
            "DELETE FROM campaigns_contactlistmembership WHERE contact_id IN "
            "(SELECT id FROM campaigns_contact WHERE source = %s)",
            [TAG],
        )
        cur.execute("DELETE FROM campaigns_contact WHERE source = %s", [TAG])


def create(n: int) -> tuple[int, int]:
    """N contacts, a campaign of N messages and a newer one of N/10. Returns the campaign ids."""
    from django.db import connection

    if connection.vendor != "postgresql":
        raise SystemExit(
            "creating a million rows needs PostgreSQL: pass --database-url postgres://"
        )
    channel, template = _channel()
    list_id = _contacts(n)
    big, newer = _campaigns(n, channel, template, list_id)
    with connection.cursor() as cur:
        cur.execute("VACUUM ANALYZE campaigns_message")
        cur.execute("VACUUM ANALYZE campaigns_contact")
    return big, newer


def _channel():
    """The sandbox account, OA, channel and two-parameter template the campaigns use (made once,
    found again by name on the next run)."""
    from providers.models import Channel, OfficialAccount, ProviderAccount
    from templates_app.models import Template, TemplateParam

    account, _ = ProviderAccount.objects.get_or_create(name=f"{TAG} sandbox", kind="sandbox")
    oa, _ = OfficialAccount.objects.get_or_create(
        account=account,
        oa_id="4097311281936189049",
        defaults={"name": "Bench OA", "daily_quota": 5000, "remaining_quota": 5000},
    )
    channel, _ = Channel.objects.get_or_create(
        name=f"{TAG} channel",
        defaults={"account": account, "kind": "zalo_zns", "official_account": oa},
    )
    template, created = Template.objects.get_or_create(
        account=account,
        provider_template_id="205644",
        defaults={
            "name": "Bench order confirmation",
            "status": "approved",
            "price": 300,
            "body": "Xin chào {{customer_name}}, đơn {{order_code}} đã xác nhận.",
        },
    )
    if created:
        for i, name in enumerate(["customer_name", "order_code"]):
            TemplateParam.objects.create(template=template, name=name, position=i, max_length=30)
    return channel, template


def _contacts(n: int) -> int:
    """N contacts (source TAG) in the TAG list, in two set-based statements; the list's id."""
    from django.db import connection, transaction

    from campaigns.models import Contact, ContactList, ContactListMembership

    cl, _ = ContactList.objects.get_or_create(name=f"{TAG} list")
    t0 = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cur:
        overrides = {
            "phone": "'849' || lpad(i::text, 8, '0')",
            "name": "'Nguyễn Văn ' || i",
            "search_text": "'nguyen van ' || i",
            "attributes": "jsonb_build_object('order', 'DH' || i, 'city', 'Hà Nội')",
            "source": "%s",
            "created_at": "now()",
            "updated_at": "now()",
        }
        cols, values = _defaults(Contact, set(overrides))
        cur.execute(
            f"INSERT INTO campaigns_contact ({', '.join([*overrides, *cols])}) "
            f"SELECT {', '.join([*overrides.values(), *['%s'] * len(cols)])} "
            "FROM generate_series(1, %s) AS g(i) ON CONFLICT (phone) DO NOTHING",
            [TAG, *values, n],
        )
        cols, values = _defaults(ContactListMembership, {"contact_list_id", "contact_id"})
        cur.execute(
            f"INSERT INTO campaigns_contactlistmembership (contact_list_id, contact_id"
            f"{''.join(', ' + c for c in cols)}) "
            f"SELECT %s, id{', %s' * len(cols)} FROM campaigns_contact WHERE source = %s",
            [cl.pk, *values, TAG],
        )
    ContactList.objects.filter(pk=cl.pk).update(contact_count=n)
    print(f"  {n:,} contacts in {time.perf_counter() - t0:.1f} s")
    return cl.pk


def _campaigns(n: int, channel, template, list_id: int) -> tuple[int, int]:
    """The big finished campaign (N messages over two hours) and a newer one of N/10."""
    from django.utils import timezone

    from campaigns.models import Campaign

    now = timezone.now()
    started = now - timezone.timedelta(hours=3)
    big = Campaign.objects.create(
        name=f"{TAG}: {n:,} messages",
        channel=channel,
        template=template,
        status=Campaign.Status.COMPLETED,
        param_mapping={
            "customer_name": {"source": "field", "value": "name"},
            "order_code": {"source": "attribute", "value": "order"},
        },
        started_at=started,
        finished_at=started + timezone.timedelta(hours=2),
    )
    big.lists.add(list_id)
    newer = Campaign.objects.create(
        name=f"{TAG}: newer",
        channel=channel,
        template=template,
        status=Campaign.Status.COMPLETED,
        started_at=now - timezone.timedelta(minutes=30),
        finished_at=now,
    )
    _messages(big, n, started, span_seconds=7200)
    _messages(newer, max(1, n // 10), now - timezone.timedelta(minutes=30), span_seconds=1200)
    return big.pk, newer.pk


# Final states out of 100 (mod(i, 100)): a typical ZNS campaign after its receipts came in.
STATUS_SQL = """CASE
    WHEN mod(i, 100) < 6 THEN 'failed'
    WHEN mod(i, 100) < 12 THEN 'sent'
    WHEN mod(i, 100) < 50 THEN 'delivered'
    ELSE 'read' END"""
FAIL_CODES = ["-118", "-114", "-139", "-108"]


def _messages(campaign, n: int, start, *, span_seconds: int) -> None:
    from django.db import connection, transaction

    from campaigns.models import Campaign, Message

    t0 = time.perf_counter()
    codes = "ARRAY[" + ", ".join(f"'{c}'" for c in FAIL_CODES) + "]"
    at = f"(%s::timestamptz + (i * {span_seconds}.0 / %s) * interval '1 second')"
    overrides = {
        "campaign_id": "%s",
        "contact_id": "c.id",
        "phone": "c.phone",
        "template_data": "jsonb_build_object('customer_name', c.name, 'order_code', 'DH' || i)",
        "idempotency_key": "'bench' || %s || 'c' || c.id",
        "provider_message_id": "'zmsg' || %s || '-' || i",
        "status": "s.status",
        "error_class": "CASE WHEN s.status = 'failed' THEN 'permanent' ELSE '' END",
        "error_code": f"CASE WHEN s.status = 'failed' THEN ({codes})[1 + mod(i, 4)] ELSE '' END",
        "error_message": "''",
        "fee": "CASE WHEN s.status = 'failed' THEN NULL ELSE 300 END",
        "attempts": "1",
        "sent_at": f"CASE WHEN s.status = 'failed' AND mod(i, 2) = 0 THEN NULL ELSE {at} END",
        "delivered_at": f"CASE WHEN s.status IN ('delivered', 'read') THEN {at} END",
        "read_at": f"CASE WHEN s.status = 'read' THEN {at} END",
        "failed_at": f"CASE WHEN s.status = 'failed' THEN {at} END",
        "created_at": "%s::timestamptz",
        "updated_at": "now()",
    }
    # Parameters in the order their %s appear in `overrides`.
    params = [campaign.pk, campaign.pk, campaign.pk]
    params += [start, n] * 4  # sent_at, delivered_at, read_at, failed_at
    params += [start]
    cols, values = _defaults(Message, set(overrides))
    sql = (
        f"INSERT INTO campaigns_message ({', '.join([*overrides, *cols])}) "
        f"SELECT {', '.join([*overrides.values(), *['%s'] * len(cols)])} FROM ("
        "  SELECT id, phone, name, row_number() OVER (ORDER BY id) AS i"
        "  FROM campaigns_contact WHERE source = %s ORDER BY id LIMIT %s"
        f") c CROSS JOIN LATERAL (SELECT {STATUS_SQL} AS status) s"
    )
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(sql, [*params, *values, TAG, n])
        # The counters the engine keeps (reached counts: a read message was sent and delivered).
        cur.execute(
            """SELECT count(*),
                      count(*) FILTER (WHERE sent_at IS NOT NULL),
                      count(*) FILTER (WHERE status IN ('delivered', 'read')),
                      count(*) FILTER (WHERE status = 'read'),
                      count(*) FILTER (WHERE status = 'failed'),
                      coalesce(sum(fee), 0)
               FROM campaigns_message WHERE campaign_id = %s""",
            [campaign.pk],
        )
        total, sent, delivered, read, failed, cost = cur.fetchone()
    Campaign.objects.filter(pk=campaign.pk).update(
        total_count=total,
        sent_count=sent,
        delivered_count=delivered,
        read_count=read,
        failed_count=failed,
        cost=cost,
    )
    print(f"  campaign {campaign.pk}: {total:,} messages in {time.perf_counter() - t0:.1f} s")


def measure(big_id: int, runs: int) -> dict[str, float]:
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from campaigns.models import Campaign, Message
    from campaigns.selectors.dashboard import dashboard_cache_clear

    user, _ = User.objects.get_or_create(
        username="bench-admin", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    big = Campaign.objects.get(pk=big_id)
    with connection.cursor() as cur:
        cur.execute("SELECT reltuples::bigint FROM pg_class WHERE relname = 'campaigns_message'")
        table = cur.fetchone()[0]
    print(
        f"admin pages: campaign {big.pk} of {big.total_count:,} messages, "
        f"messages table ~{table:,} rows ({connection.vendor}); median of {runs} runs:"
    )
    pages = {
        "campaign page": f"/admin/campaigns/campaign/{big.pk}/change/",
        "campaign live panel (JSON)": f"/admin/campaigns/campaign/{big.pk}/progress/?full=1",
        "message list of the campaign": f"/admin/campaigns/message/?campaign__id__exact={big.pk}",
        "  … its failures": f"/admin/campaigns/message/?campaign__id__exact={big.pk}&status__exact=failed",
        "  … page 50": f"/admin/campaigns/message/?campaign__id__exact={big.pk}&p=49",
        "dashboard (cache cleared)": "/admin/",
    }
    # "Did this customer get our message?": a phone typed as people type it, all campaigns.
    sample = Message.objects.filter(campaign_id=big.pk).values_list("phone", flat=True).first()
    if sample:
        local = f"0{sample[2:5]} {sample[5:8]} {sample[8:]}"
        pages["message search by phone, all campaigns"] = "/admin/campaigns/message/?" + (
            urlencode({"q": local})
        )
    results = {}
    for label, url in pages.items():
        times = []
        for i in range(runs + 1):
            if label.startswith("dashboard"):
                dashboard_cache_clear()
            t0 = time.perf_counter()
            response = client.get(url)
            elapsed = (time.perf_counter() - t0) * 1000
            if response.status_code != 200:
                raise SystemExit(f"{url}: HTTP {response.status_code}")
            if i:  # the first run warms caches and connections
                times.append(elapsed)
        # One more run with the queries captured: how much of the time is the database's.
        with CaptureQueriesContext(connection) as ctx:
            client.get(url)
        sql_ms = sum(float(q["time"]) for q in ctx.captured_queries) * 1000
        med = statistics.median(times)
        results[label] = med
        target = TARGETS_MS.get(label)
        verdict = f"  target < {target} ms: {'OK' if med < target else 'OVER'}" if target else ""
        print(
            f"  {label:34s} median {med:7.1f} ms  (min {min(times):.1f}, max {max(times):.1f}; "
            f"SQL {sql_ms:.1f} ms in {len(ctx.captured_queries)} queries){verdict}"
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""))
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--skip-create", action="store_true")
    parser.add_argument("--cleanup", action="store_true", help="remove the rows afterwards")
    args = parser.parse_args()

    env = dict(os.environ)
    if args.database_url:
        env["DATABASE_URL"] = args.database_url
    env["DEBUG"] = "false"  # no query log, like production
    env.setdefault("ALLOWED_HOSTS", "localhost,127.0.0.1")
    db = env.get("DATABASE_URL", "sqlite (default)")
    print(
        f"database: {db.split('@')[-1]}  cpus: {os.cpu_count()}  python: {sys.version.split()[0]}  "
        f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True
    )
    setup_django(env)
    from campaigns.models import Campaign

    if args.skip_create:
        big = (
            Campaign.objects.filter(name__startswith=f"{TAG}:")
            .order_by("-total_count")
            .values_list("pk", flat=True)
            .first()
        )
        if big is None:
            raise SystemExit("nothing to measure: run without --skip-create first")
    else:
        t0 = time.perf_counter()
        cleanup()
        print(f"creating {args.messages:,} messages…")
        big, _newer = create(args.messages)
        print(f"  data ready in {time.perf_counter() - t0:.1f} s")
    results = measure(big, args.runs)
    if args.cleanup:
        cleanup()
    over = [k for k, limit in TARGETS_MS.items() if results[k] >= limit]
    print("RESULT", "OK" if not over else f"OVER TARGET: {', '.join(over)}")


if __name__ == "__main__":
    main()
