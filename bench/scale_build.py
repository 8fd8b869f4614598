"""Build the 10M-tenant database of issue 22: 10,000,000 contacts and 50,000,000 messages.

    .venv/bin/python bench/scale_build.py                       # loa_scale10m, full size
    .venv/bin/python bench/scale_build.py --quick               # loa_scale_quick, 100k / 500k

Target (issue 22): under 20 minutes on the 2-core box, so anyone can reproduce the figures of
bench/scale_pages.py. What it does:

1. drops and recreates the database (its name must start with "loa_scale": never a real one) and
   runs the project's migrations on it, so the schema is exactly the code's;
2. creates through the ORM what a tenant has a few of: a superuser (admin / admin), a ZNS
   channel and template, two contact lists, segments, and 14 campaigns over 12 months
   (December 2025 to a running one in December 2026; one of 1,000,000 recipients for the export);
3. drops the secondary indexes of the big tables (their definitions are read from the catalog
   and replayed later, so an index a migration adds is rebuilt too), then fills them with
   set-based SQL (INSERT ... SELECT FROM generate_series) on two connections at once: contacts
   with Vietnamese names, attributes (city, gender, birthday, tier, spend) and tags, ~5% Cambodian
   phones; list memberships; opt-outs; messages in realistic final states (read, delivered, sent,
   failed with Zalo codes and messages, skipped, cancelled), fees, provider ids and timestamps;
4. rebuilds the indexes two at a time, sets each campaign's counters and cost from its messages,
   and ANALYZEs.

The tables stay LOGGED: an UNLOGGED load followed by SET LOGGED rewrites the whole table a second
time on PostgreSQL 15, which costs more than the WAL the load writes with its indexes dropped.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import figure, scale_database_argument  # noqa: E402

FAMILY = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi"]
FAMILY += ["Đỗ", "Hồ", "Ngô", "Dương", "Lý"]
MIDDLE = ["Văn", "Thị", "Hữu", "Minh", "Ngọc", "Thanh", "Đức", "Quốc", "Thu", "Hoài", "Gia"]
GIVEN = ["An", "Bình", "Châu", "Dũng", "Giang", "Hà", "Hải", "Hạnh", "Hiếu", "Hoa", "Hùng"]
GIVEN += ["Hương", "Khánh", "Lan", "Linh", "Long", "Mai", "Minh", "Nam", "Ngọc", "Nhung", "Phong"]
GIVEN += ["Phúc", "Quân", "Quang", "Sơn", "Tâm", "Thảo", "Trang", "Tuấn", "Vy", "Yến", "Thư"]
CITIES = ["Hà Nội", "TP Hồ Chí Minh", "Đà Nẵng", "Hải Phòng", "Cần Thơ", "Huế", "Nha Trang"]
CITIES += ["Biên Hòa", "Phnom Penh", "Vũng Tàu"]
# (code, class, message): what Zalo answers for the failures a ZNS campaign meets most.
FAILURES = [
    ("-118", "permanent", "Zalo account not existed"),
    ("-119", "permanent", "Account cannot receive ZNS"),
    ("-139", "permanent", "User refused to receive ZNS"),
    ("-108", "permanent", "Phone number invalid"),
    ("-124", "transient", "Out of quota"),
    ("read_timeout", "transient", "No answer within 30 s"),
]
# (name, month start, recipients, status): 50,000,000 messages over 12 months and a running one.
CAMPAIGNS = [
    ("Khuyến mãi Giáng sinh 2025", "2025-12-15", 3, "completed"),
    ("Chúc mừng năm mới Bính Ngọ", "2026-01-20", 5, "completed"),
    ("Ưu đãi sau Tết", "2026-02-12", 4, "completed"),
    ("Ngày Quốc tế Phụ nữ 8/3", "2026-03-05", 3, "completed"),
    ("Giỗ Tổ - 30/4", "2026-04-22", 4, "completed"),
    ("Siêu sale giữa năm", "2026-05-18", 5, "completed"),
    ("Thông báo đổi điểm thưởng", "2026-06-10", 4, "completed"),
    ("Back to school", "2026-07-25", 3, "completed"),
    ("Lễ Quốc khánh 2/9", "2026-08-28", 5, "completed"),
    ("Trung thu", "2026-09-15", 4, "completed"),
    ("Ngày Phụ nữ Việt Nam 20/10", "2026-10-16", 3, "completed"),
    ("Xác nhận đơn hàng tháng 10", "2026-10-25", 1, "completed"),
    ("Black Friday", "2026-11-25", 5, "completed"),
    ("Chào tháng 12", "2026-12-03", 1, "running"),
]
TOTAL_MILLIONS = sum(c[2] for c in CAMPAIGNS)  # 50


def log(msg: str, t0: float) -> None:
    print(f"[{time.perf_counter() - t0:7.1f}s load={os.getloadavg()[0]:.2f}] {msg}", flush=True)


def recreate(url: str) -> None:
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not name.startswith("loa_scale"):
        raise SystemExit(f"refusing to drop {name!r}: the database name must start with loa_scale")
    import psycopg

    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def migrate(url: str) -> None:
    env = {**os.environ, "DATABASE_URL": url}
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0", "--no-input"], cwd=ROOT, env=env, check=True
    )


def orm_rows(scale: float) -> dict:
    """The few rows a tenant has: user, channel, template, lists, segments, campaigns."""
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from campaigns.engine.keys import idempotency_key
    from campaigns.models import Campaign, ContactList, Segment
    from providers.models import Channel, OfficialAccount, ProviderAccount
    from templates_app.models import Template, TemplateParam

    get_user_model().objects.create_superuser("admin", "admin@example.com", "admin")
    account = ProviderAccount.objects.create(name="Zalo sandbox", kind="sandbox")
    oa = OfficialAccount.objects.create(
        account=account, oa_id="4097311281936189049", name="Loa Shop", daily_quota=5_000_000
    )
    channel = Channel.objects.create(
        name="Zalo ZNS Loa Shop", account=account, kind="zalo_zns", official_account=oa
    )
    template = Template.objects.create(
        account=account,
        provider_template_id="205644",
        name="Xác nhận đơn hàng",
        status="approved",
        price=300,
        body="Xin chào {{customer_name}}, đơn {{order_code}} đã xác nhận.",
    )
    for i, name in enumerate(["customer_name", "order_code"]):
        TemplateParam.objects.create(template=template, name=name, position=i, max_length=30)
    old = ContactList.objects.create(name="Khách hàng 2025")
    new = ContactList.objects.create(name="Đăng ký 2026")
    segments = [
        Segment.objects.create(
            name="Hà Nội", rules=[{"attribute": "city", "op": "eq", "value": "Hà Nội"}]
        ),
        Segment.objects.create(name="VIP", rules=[{"op": "has_tag", "value": "vip"}]),
        Segment.objects.create(
            name="Nữ, hạng vàng",
            rules=[
                {"attribute": "gender", "op": "eq", "value": "nu"},
                {"attribute": "tier", "op": "eq", "value": "gold"},
            ],
        ),
        Segment.objects.create(
            name="Chi tiêu trên 40 triệu",
            rules=[{"attribute": "spend", "op": "gt", "value": "40000000"}],
        ),
        # Date rules (the contacts' "ngay_sinh", ISO as an import of a declared date stores it).
        Segment.objects.create(
            name="Sinh nhật trong 7 ngày",
            rules=[{"attribute": "ngay_sinh", "op": "birthday_days", "value": 7}],
        ),
        Segment.objects.create(
            name="Sinh trước 1970",
            rules=[{"attribute": "ngay_sinh", "op": "before", "value": "01/01/1970"}],
        ),
    ]
    segments[1].contact_lists.add(old)
    mapping = {
        "customer_name": {"source": "field", "value": "name"},
        "order_code": {"source": "constant", "value": "DH2026"},
    }
    campaigns = []
    offset = 0
    for name, day, millions, status in CAMPAIGNS:
        size = int(millions * 1_000_000 * scale)
        c = Campaign.objects.create(
            name=name,
            channel=channel,
            template=template,
            param_mapping=mapping,
            status=status,
            total_count=size,
        )
        c.lists.add(old, new)
        start = timezone.datetime.fromisoformat(f"{day}T09:00:00+07:00")
        Campaign.objects.filter(pk=c.pk).update(
            created_at=start - timezone.timedelta(days=2),
            scheduled_at=start,
            started_at=start,
            finished_at=None if status == "running" else start + timezone.timedelta(days=1),
            updated_at=start + timezone.timedelta(days=1),
        )
        c.refresh_from_db()
        # the key engine.keys would give: its stamp is the campaign's creation time
        stamp = idempotency_key(c, 0)[len(f"loa{c.pk}t") : -len("c0")]
        campaigns.append(
            {"id": c.pk, "size": size, "offset": offset, "start": start, "st": status, "t": stamp}
        )
        offset += 3_000_017
    return {"list_old": old.pk, "list_new": new.pk, "campaigns": campaigns}


def phone_sql(col: str) -> str:
    """The phone of contact id `col`: ~5% Cambodian (855), the rest Vietnamese (849...)."""
    return (
        f"CASE WHEN {col} % 20 = 7 THEN '8551' || lpad({col}::text, 8, '0') "
        f"ELSE '849' || lpad({col}::text, 8, '0') END"
    )


def drop_indexes(cur, tables: list[str]) -> list[str]:
    """Drop every index of `tables` but the primary keys; return the statements that rebuild
    them (unique constraints come back through their index: ADD CONSTRAINT ... USING INDEX)."""
    cur.execute(
        "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid), c.conname,"
        " c.contype, t.relname FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid"
        " LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid AND c.conrelid = t.oid"
        " WHERE t.relname = ANY(%s) AND NOT i.indisprimary",
        [tables],
    )
    rebuild = []
    for index, definition, conname, contype, table in cur.fetchall():
        if conname and contype == "u":
            cur.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{conname}"')
            rebuild.append(
                f"{definition.replace('CREATE INDEX', 'CREATE UNIQUE INDEX', 1)};"
                f';\n ALTER TABLE {table} ADD CONSTRAINT "{conname}" UNIQUE USING INDEX "{index}"'
            )
        else:
            cur.execute(f'DROP INDEX "{index}"')
            rebuild.append(definition)
    return rebuild


class Pool:
    """Two connections running statements from a shared queue: the box has two cores."""

    def __init__(self, url: str, t0: float, workers: int = 2):
        self.url, self.t0, self.workers = url, t0, workers

    def run(self, statements: list[tuple[str, str, list | None]]) -> dict[str, list]:
        """Run them all; the rows of those that return some, by label."""
        import psycopg

        todo = list(statements)
        lock = threading.Lock()
        errors = []
        results = {}

        def work():
            with psycopg.connect(self.url, autocommit=True) as conn:
                conn.execute("SET synchronous_commit = off")
                conn.execute("SET maintenance_work_mem = '1500MB'")
                conn.execute("SET max_parallel_maintenance_workers = 0")
                conn.execute("SET work_mem = '256MB'")
                # No triggers while loading (the segment index's would index every batch of a
                # million rows as it lands): the index is built once, at the end, as an upgraded
                # database builds it (manage.py segment_index --build).
                conn.execute("SET session_replication_role = replica")
                while True:
                    with lock:
                        if not todo or errors:
                            return
                        label, sql, params = todo.pop(0)
                    started = time.perf_counter()
                    try:
                        if params is None:
                            for part in sql.split(";\n"):
                                cur = conn.execute(part)
                        else:  # modulo signs are not placeholders
                            cur = conn.execute(sql.replace(" % ", " %% "), params)
                        if cur.description:
                            results[label] = cur.fetchall()
                    except Exception as e:  # reported after the other thread ends
                        errors.append((label, e))
                        return
                    log(f"{label}: {time.perf_counter() - started:.1f}s", self.t0)

        threads = [threading.Thread(target=work) for _ in range(self.workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise SystemExit(f"{errors[0][0]} failed: {errors[0][1]}")
        return results


def contacts_sql(lo: int, hi: int) -> tuple[str, list]:
    from campaigns.contacts.search import contact_search_text

    fam = [contact_search_text(x) for x in FAMILY]
    mid = [contact_search_text(x) for x in MIDDLE]
    giv = [contact_search_text(x) for x in GIVEN]
    nf, nm, ng = len(FAMILY), len(MIDDLE), len(GIVEN)
    f, m, g = f"1 + (i * 7) % {nf}", f"1 + (i / 3) % {nm}", f"1 + (i * 13 / 7) % {ng}"
    sql = f"""
        INSERT INTO campaigns_contact (id, phone, name, search_text, attributes, tags, source,
            source_row, created_at, updated_at)
        SELECT i, {phone_sql("i")},
          CASE WHEN i % 19 = 0 THEN '' ELSE (%s::text[])[{f}] || ' ' || (%s::text[])[{m}]
               || ' ' || (%s::text[])[{g}] END,
          CASE WHEN i % 19 = 0 THEN '' ELSE (%s::text[])[{f}] || ' ' || (%s::text[])[{m}]
               || ' ' || (%s::text[])[{g}] END,
          jsonb_build_object('city', (%s::text[])[1 + (i * 31 / 11) % {len(CITIES)}],
            'gender', CASE WHEN i % 3 = 0 THEN 'nam' ELSE 'nu' END,
            'ngay_sinh', to_char(date '1960-01-01' + ((i * 37) % 16000)::int, 'YYYY-MM-DD'),
            'tier', (ARRAY['gold', 'silver', 'bronze', 'bronze'])[1 + (i / 5) % 4],
            'spend', (i * 7919) % 50000000),
          CASE WHEN i % 10 = 3 THEN '["vip"]'::jsonb WHEN i % 20 = 5 THEN '["khach cu"]'::jsonb
               ELSE '[]'::jsonb END,
          CASE WHEN i <= %s THEN 'import:khach-hang-2025.xlsx' ELSE 'import:dang-ky-2026.csv' END,
          i % 100000,
          timestamptz '2025-01-01 08:00+07' + (i % 600) * interval '1 day'
              + (i % 86400) * interval '1 second',
          timestamptz '2025-11-01 08:00+07' + (i % 30) * interval '1 day'
        FROM generate_series(%s::bigint, %s::bigint) i
    """
    params = [FAMILY, MIDDLE, GIVEN, fam, mid, giv, CITIES, None, lo, hi]
    return sql, params


def messages_sql(c: dict, lo: int, hi: int, n_contacts: int) -> tuple[str, list]:
    """Messages g in [lo, hi] of campaign c: contact ((offset + g) % N) + 1, sent 500/s from its
    start. r (0-999, a cheap hash of g) picks the outcome: 35% read, 40% delivered, 9% sent
    without receipt, 11% failed, 3% skipped, 2% cancelled; a running campaign's last 30% are
    still pending."""
    cid = f"(({c['offset']} + g) % {n_contacts}) + 1"
    pending = f"g >= {int(c['size'] * 0.7)}" if c["st"] == "running" else "false"
    codes = "ARRAY[" + ",".join(f"'{x[0]}'" for x in FAILURES) + "]"
    classes = "ARRAY[" + ",".join(f"'{x[1]}'" for x in FAILURES) + "]"
    texts = "ARRAY[" + ",".join(f"'{x[2]}'" for x in FAILURES) + "]"
    nfail = len(FAILURES)
    sql = f"""
        INSERT INTO campaigns_message (campaign_id, contact_id, phone, template_data,
            idempotency_key, step, provider_message_id, status, error_class, error_code,
            error_message, fee, attempts, claimed_at, sent_at, delivered_at, read_at, failed_at,
            created_at, updated_at)
        SELECT {c["id"]}, cid, {phone_sql("cid")},
          jsonb_build_object('customer_name', (%s::text[])[1 + (cid * 7) % {len(FAMILY)}]
              || ' ' || (%s::text[])[1 + (cid * 13 / 7) % {len(GIVEN)}],
              'order_code', 'DH2026'),
          'loa{c["id"]}t{c["t"]}c' || cid, 0,
          CASE WHEN st IN ('read', 'delivered', 'sent') THEN 'zns' || {c["id"]} || '-' || g
               ELSE '' END,
          st,
          CASE WHEN st = 'failed' THEN ({classes})[fx + 1] ELSE '' END,
          CASE WHEN st = 'failed' THEN ({codes})[fx + 1]
               WHEN st = 'skipped' THEN 'opted_out' ELSE '' END,
          CASE WHEN st = 'failed' THEN ({texts})[fx + 1]
               WHEN st = 'skipped' THEN 'Opted out after the campaign was built' ELSE '' END,
          CASE WHEN st IN ('read', 'delivered', 'sent') THEN 300.00 END,
          CASE WHEN st IN ('pending', 'skipped', 'cancelled') THEN 0
               WHEN st = 'failed' AND fx >= 4 THEN 3 ELSE 1 END,
          CASE WHEN st NOT IN ('pending', 'skipped', 'cancelled') THEN at END,
          CASE WHEN st IN ('read', 'delivered', 'sent') THEN at END,
          CASE WHEN st IN ('read', 'delivered') THEN at + interval '4 seconds' END,
          CASE WHEN st = 'read' THEN at + (r % 240) * interval '1 minute' END,
          CASE WHEN st = 'failed' THEN at END,
          %s::timestamptz - interval '1 hour',
          CASE WHEN st = 'read' THEN at + (r % 240) * interval '1 minute'
               WHEN st = 'pending' THEN %s::timestamptz ELSE at + interval '4 seconds' END
        FROM (
          SELECT g, cid, r, (r * 7) % {nfail} AS fx,
                 %s::timestamptz + g * interval '2 milliseconds' AS at,
                 CASE WHEN {pending} THEN 'pending' WHEN r < 350 THEN 'read'
                      WHEN r < 750 THEN 'delivered' WHEN r < 840 THEN 'sent'
                      WHEN r < 950 THEN 'failed' WHEN r < 980 THEN 'skipped'
                      ELSE 'cancelled' END AS st
          FROM (SELECT g, {cid} AS cid, (g * 7919 + {c["id"]} * 104729) % 1000 AS r
                FROM generate_series(%s::bigint, %s::bigint) g) x
        ) y
    """
    start = c["start"].isoformat()
    return sql, [FAMILY, GIVEN, start, start, start, lo, hi]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    scale_database_argument(ap)
    ap.add_argument("--quick", action="store_true", help="1%% of the size, in loa_scale_quick")
    ap.add_argument("--contacts", type=int, default=10_000_000)
    args = ap.parse_args()
    scale = 0.01 if args.quick else args.contacts / 10_000_000
    url = args.database_url
    if args.quick and url.endswith("/loa_scale10m"):
        url = url[: -len("loa_scale10m")] + "loa_scale_quick"
    n_contacts = int(10_000_000 * scale)
    t0 = time.perf_counter()
    load0 = os.getloadavg()
    log(f"building {url}: {n_contacts} contacts, {TOTAL_MILLIONS * n_contacts // 10} messages", t0)
    recreate(url)
    migrate(url)
    log("migrated", t0)

    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.db import connection

    from campaigns.models import Campaign

    rows = orm_rows(scale)
    with connection.cursor() as cur:
        rebuild = drop_indexes(
            cur, ["campaigns_contact", "campaigns_message", "campaigns_contactlistmembership"]
        )
    log(f"ORM rows made, {len(rebuild)} indexes dropped", t0)

    pool = Pool(url, t0)
    step = 1_000_000 if n_contacts >= 1_000_000 else n_contacts
    work = []
    for lo in range(1, n_contacts + 1, step):
        sql, params = contacts_sql(lo, min(n_contacts, lo + step - 1))
        params[7] = int(n_contacts * 0.6)
        work.append((f"contacts {lo}-{min(n_contacts, lo + step - 1)}", sql, params))
    for c in rows["campaigns"]:
        for lo in range(0, c["size"], 2 * step):
            hi = min(c["size"], lo + 2 * step) - 1
            sql, params = messages_sql(c, lo, hi, n_contacts)
            work.append((f"messages of campaign {c['id']} {lo}-{hi}", sql, params))
    split = int(n_contacts * 0.6)
    work.append(
        (
            "memberships",
            "INSERT INTO campaigns_contactlistmembership (contact_list_id, contact_id, added_at)"
            " SELECT CASE WHEN i <= %s THEN %s ELSE %s END, i, now()"
            " FROM generate_series(1, %s) i",
            [split, rows["list_old"], rows["list_new"], n_contacts],
        )
    )
    pool.run(work)
    log("rows loaded", t0)
    with connection.cursor() as cur:
        cur.execute(
            "INSERT INTO campaigns_optout (contact_id, channel_kind, reason, source, created_at)"
            " SELECT i, CASE WHEN i %% 400 = 17 THEN 'all' ELSE 'zalo_zns' END,"
            " 'Khách yêu cầu', 'reply', now() FROM generate_series(17, %s, 200) i",
            [n_contacts],
        )
        cur.execute(
            "SELECT setval(pg_get_serial_sequence('campaigns_contact', 'id'), %s)", [n_contacts]
        )
    # The biggest first, so the two connections finish together; the counters' scan among them.
    rebuild.sort(key=lambda sql: ("campaigns_message " not in sql, "gin" not in sql))
    counters = (
        "SELECT campaign_id, status, count(*), coalesce(sum(fee), 0)"
        " FROM campaigns_message GROUP BY 1, 2"
    )
    done = pool.run(
        [(f"index {i + 1}/{len(rebuild)}", sql, None) for i, sql in enumerate(rebuild)]
        + [("counters", counters, None)]
    )
    log("indexes rebuilt", t0)
    per = {}
    for cid, status, n, fee in done["counters"]:
        d = per.setdefault(cid, {"cost": 0})
        d[status] = n
        d["cost"] += fee
    for cid, d in per.items():
        handed = sum(d.get(s, 0) for s in ("sent", "delivered", "read"))
        Campaign.objects.filter(pk=cid).update(
            sent_count=handed,
            delivered_count=d.get("delivered", 0) + d.get("read", 0),
            read_count=d.get("read", 0),
            failed_count=d.get("failed", 0),
            skipped_count=d.get("skipped", 0),
            cancelled_count=d.get("cancelled", 0),
            cost=d["cost"],
        )
    log("counters set", t0)
    from campaigns.contacts.segment_index import segment_index_build, segment_index_reset

    # The rows were loaded without the index's triggers: built from scratch, in slices, as after
    # migration 0026 on a database that already held contacts.
    segment_index_reset()
    report = segment_index_build(seconds=3600)
    log(f"segment index built: {report.rows} rows, {report.seconds} s, done: {report.done}", t0)
    Pool(url, t0).run(
        [
            ("analyze messages", "VACUUM ANALYZE campaigns_message", None),
            ("analyze contacts", "VACUUM ANALYZE campaigns_contact", None),
            ("analyze segment index", "VACUUM ANALYZE campaigns_segmentindex", None),
            ("analyze rest", "ANALYZE", None),
        ]
    )
    elapsed = time.perf_counter() - t0
    with connection.cursor() as cur:
        cur.execute("SELECT pg_database_size(current_database())")
        size_gb = cur.fetchone()[0] / 1e9
    log("done", t0)
    figure(
        "scale_build_minutes",
        round(elapsed / 60, 1),
        "min",
        "<20",
        elapsed < 20 * 60,
        contacts=n_contacts,
        messages=TOTAL_MILLIONS * n_contacts // 10,
        db_gb=round(size_gb, 1),
        load_start=f"{load0[0]:.2f}",
        load_end=f"{os.getloadavg()[0]:.2f}",
    )


if __name__ == "__main__":
    main()
