"""What would make an exact segment count at 10M contacts fit under a second: a probe, not a
feature. Run it on the database bench/scale_build.py builds:

    .venv/bin/python bench/scale_build.py          # once: loa_scale10m
    .venv/bin/python bench/segment_index_probe.py

Issue 22 asks for a segment count under 1 s at 10,000,000 contacts; today's queries take
1.8-2.7 s (bench/scale_pages.py --only segments) because every attribute rule reads the whole
2.5 GB contacts table. This builds, beside it, in a scratch table dropped at the end, the
structure docs/ARCHITECTURE.md proposes ("a narrow segment index table"): one row per contact
with a typed column per declared attribute (the folded city, gender and tier, the spend as a
number) and the tags, and counts the benchmark's four segments on it, each beside the same count
on the contacts table as Loa runs it today (median of 3, same run; the list join of the second
segment as it would be without a lists column). It prints the table's size and build time too.
Nothing of Loa uses the scratch table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import figure, scale_database_argument  # noqa: E402

SCRATCH = "bench_segment_index_probe"
FOLD = "lower(public.unaccent('public.unaccent'::regdictionary, {}))"
BUILD = f"""
CREATE UNLOGGED TABLE {SCRATCH} AS
SELECT c.id AS contact_id,
       {FOLD.format("c.attributes->>'city'")} AS city,
       {FOLD.format("c.attributes->>'gender'")} AS gender,
       {FOLD.format("c.attributes->>'tier'")} AS tier,
       loa_number(c.attributes->>'spend') AS spend,
       NULLIF(c.tags, '[]'::jsonb) AS tags
FROM campaigns_contact c
"""
# The benchmark's four segments (bench/scale_build.py), on the narrow table.
PROBES = {
    "city_ha_noi": f"SELECT count(*) FROM {SCRATCH} WHERE city = 'ha noi'",
    "vip_within_list": (
        f"SELECT count(*) FROM {SCRATCH} f WHERE tags @> '[\"vip\"]' AND EXISTS (SELECT 1"
        " FROM campaigns_contactlistmembership m WHERE m.contact_list_id = %(list)s"
        " AND m.contact_id = f.contact_id)"
    ),
    "gender_and_tier": f"SELECT count(*) FROM {SCRATCH} WHERE gender = 'nu' AND tier = 'gold'",
    "spend_over_40m": f"SELECT count(*) FROM {SCRATCH} WHERE spend > 40000000",
    "vip_anywhere": f"SELECT count(*) FROM {SCRATCH} WHERE tags @> '[\"vip\"]'",
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    scale_database_argument(ap)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    os.environ["DATABASE_URL"] = args.database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.db import connection

    from campaigns.contacts.segments import count_within, segment_queryset
    from campaigns.models import Segment

    def load() -> str:
        return f"{os.getloadavg()[0]:.2f}"

    segments = list(Segment.objects.order_by("pk"))
    list_id = segments[1].contact_lists.values_list("pk", flat=True).first()
    with connection.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {SCRATCH}")
        started = time.perf_counter()
        cur.execute(BUILD)
        cur.execute(f"VACUUM ANALYZE {SCRATCH}")
        build_s = time.perf_counter() - started
        cur.execute(f"SELECT pg_relation_size('{SCRATCH}')")
        size_mb = cur.fetchone()[0] / 2**20
    figure("segment_index_build_s", round(build_s, 1), "s", "-", None, size_mb=round(size_mb))
    try:
        names = ["city_ha_noi", "vip_within_list", "gender_and_tier", "spend_over_40m"]
        for name, segment in zip(names, segments, strict=False):
            today, probe, n_today, n_probe = [], [], None, None
            for _ in range(args.runs):
                started = time.perf_counter()
                n_today = count_within(segment_queryset(segment), timeout_ms=60_000)
                today.append((time.perf_counter() - started) * 1000)
                started = time.perf_counter()
                with connection.cursor() as cur:
                    cur.execute(PROBES[name], {"list": list_id})
                    n_probe = cur.fetchone()[0]
                probe.append((time.perf_counter() - started) * 1000)
            if n_today != n_probe:
                raise SystemExit(f"{name}: {n_probe} on the narrow table, {n_today} today")
            figure(
                f"segment_count_{name}_narrow_ms",
                round(statistics.median(probe)),
                "ms",
                "<1000",
                statistics.median(probe) < 1000,
                today_ms=round(statistics.median(today)),
                count=n_probe,
                load=load(),
            )
        times = []
        for _ in range(args.runs):
            started = time.perf_counter()
            with connection.cursor() as cur:
                cur.execute(PROBES["vip_anywhere"])
            times.append((time.perf_counter() - started) * 1000)
        figure(
            "segment_count_vip_anywhere_narrow_ms",
            round(statistics.median(times)),
            "ms",
            "<1000",
            statistics.median(times) < 1000,
            note="without_the_list_join",
            load=load(),
        )
    finally:
        with connection.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {SCRATCH}")


if __name__ == "__main__":
    main()
