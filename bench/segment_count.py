"""The segment builder's live count at a million contacts (issue 17, item 2).

1. builds (or reuses, when they are there) --contacts contacts in their own phone range
   (8488xxxxxxx, source "bench-segments") with a city written in the ways files write it
   ("Hà Nội", "HÀ NỘI", "Ha Noi", "TP. Hà Nội", others), a spend, a birthday and tags (VIP on
   about 10%), in set-based SQL, then ANALYZE;
2. times the count of the two-rule segment the builder makes for "city contains ha noi AND has
   tag VIP" (the query the admin's preview endpoint runs), median of --runs runs, and of each
   rule alone; prints the plan of the two-rule count.

Target (issue 17): under 500 ms on PostgreSQL. On SQLite it runs (the Python fold is called per
row) but the figure is only indicative.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/loa_bench .venv/bin/python bench/segment_count.py
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import figure, machine_speed, setup_django  # noqa: E402

SOURCE = "bench-segments"
TARGET_MS = 500
CITIES = [
    "Hà Nội",
    "HÀ NỘI",
    "Ha Noi",
    "TP. Hà Nội",
    "Hồ Chí Minh",
    "TP.HCM",
    "Đà Nẵng",
    "Hải Phòng",
    "Cần Thơ",
    "Huế",
    "Nha Trang",
    "Vinh",
    "Biên Hòa",
    "Quy Nhơn",
    "Hạ Long",
    "Buôn Ma Thuột",
]


def build(n: int) -> None:
    from django.db import connection

    from campaigns.models import Contact

    have = Contact.objects.filter(source=SOURCE).count()
    if have >= n:
        print(f"reusing {have:,} contacts")
        return
    print(f"creating {n - have:,} contacts…")
    t0 = time.perf_counter()
    if connection.vendor == "postgresql":
        series = "generate_series(%s, %s) AS g"
        head = ""
        cities = "(ARRAY[" + ", ".join(f"'{c}'" for c in CITIES) + "])"
        city = f"{cities}[1 + mod(g::bigint * 7919, {len(CITIES)})]"
        attrs = (
            f"jsonb_build_object('thanh_pho', {city}, 'tong_chi_tieu', mod(g * 31, 5000) * 1000,"
            " 'ngay_sinh', lpad((1 + mod(g, 28))::text, 2, '0') || '/' ||"
            " lpad((1 + mod(g, 12))::text, 2, '0') || '/' || (1960 + mod(g, 45)))"
        )
        tags = (
            'CASE WHEN mod(g, 10) = 3 THEN \'["vip", "online"]\'::jsonb WHEN mod(g, 4) = 1'
            " THEN '[\"online\"]'::jsonb ELSE '[]'::jsonb END"
        )
        phone = "'8488' || lpad(g::text, 7, '0')"
    else:
        head = "WITH RECURSIVE s(g) AS (SELECT %s UNION ALL SELECT g + 1 FROM s WHERE g < %s) "
        series = "s"
        cases = " ".join(f"WHEN {i} THEN '{c}'" for i, c in enumerate(CITIES))
        city = f"CASE ((g * 7919) %% {len(CITIES)}) {cases} END"
        attrs = (
            f"json_object('thanh_pho', {city}, 'tong_chi_tieu', ((g * 31) %% 5000) * 1000,"
            " 'ngay_sinh', substr('0' || (1 + ((g) %% 28)), -2) || '/' || substr('0' || (1 + ((g) %% 12)),"
            " -2) || '/' || (1960 + ((g) %% 45)))"
        )
        tags = (
            'CASE WHEN ((g) %% 10) = 3 THEN \'["vip", "online"]\' WHEN ((g) %% 4) = 1'
            " THEN '[\"online\"]' ELSE '[]' END"
        )
        phone = "'8488' || substr('0000000' || g, -7, 7)"
    with connection.cursor() as cur:
        cur.execute(
            f"{head}INSERT INTO campaigns_contact (phone, name, attributes, tags, search_text,"
            " source, created_at, updated_at)"
            f" SELECT {phone}, 'Khách ' || g, {attrs}, {tags}, 'khach ' || g, %s,"
            f" CURRENT_TIMESTAMP, CURRENT_TIMESTAMP FROM {series} WHERE true"
            " ON CONFLICT (phone) DO NOTHING",
            [SOURCE, have + 1, n] if not head else [have + 1, n, SOURCE],
        )
        cur.execute("ANALYZE campaigns_contact")
    print(f"  created in {time.perf_counter() - t0:.1f} s")


def median_ms(fn, runs: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""))
    args = parser.parse_args()
    env = dict(os.environ)
    if args.database_url:
        env["DATABASE_URL"] = args.database_url
    env["DEBUG"] = "false"
    print(
        f"database: {env.get('DATABASE_URL', 'sqlite (default)').split('@')[-1]}"
        f"  cpus: {os.cpu_count()}  load average: " + " ".join(f"{x:.2f}" for x in os.getloadavg())
    )
    setup_django(env)
    from django.core.management import call_command
    from django.db import connection

    from campaigns.contacts.segments import contacts_matching

    call_command("migrate", verbosity=0, skip_checks=True)
    machine_speed()
    build(args.contacts)
    total = connection.cursor()
    total.execute("SELECT count(*) FROM campaigns_contact")
    size = total.fetchone()[0]
    city = {"attribute": "thanh_pho", "op": "contains", "value": "ha noi"}
    vip = {"op": "has_tag", "value": "VIP"}
    cases = {
        "segment_count_two_rules_ms": [city, vip],
        "segment_count_city_ms": [city],
        "segment_count_tag_ms": [vip],
    }
    for name, rules in cases.items():
        qs = contacts_matching(rules=rules, match="all")
        qs.count()  # warm the cache: the admin counts the same rows again and again
        ms, n = median_ms(qs.count, args.runs)
        two = name == "segment_count_two_rules_ms"
        figure(
            name,
            round(ms, 1),
            "ms",
            f"<{TARGET_MS}" if two else "-",
            (ms < TARGET_MS) if two else None,
            size=size,
            matches=n,
        )
        if two and connection.vendor == "postgresql":
            sql, params = qs.order_by().query.sql_with_params()
            with connection.cursor() as cur:
                cur.execute(
                    "EXPLAIN (ANALYZE, BUFFERS) SELECT count(*) FROM (" + sql + ") x", params
                )
                print("\n".join("  " + r[0] for r in cur.fetchall()))
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute("SHOW server_version")
            print("postgresql:", cur.fetchone()[0])


if __name__ == "__main__":
    main()
