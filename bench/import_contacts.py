"""Contact import benchmark: generate a realistic file, import it end to end, print the figures.

    .venv/bin/python bench/import_contacts.py --rows 1000000 \\
        --database-url postgres://postgres@127.0.0.1:5432/loa_bench

What it does:
1. generates a CSV (UTF-8): phone in mixed formats (0987..., 84987..., +84 987 ..., 987...
   without its zero, 84987....0 from Excel, (+84) 98-765-4321, 0987.654.321, legacy 0168...),
   a Vietnamese name, 3 attributes; 5% invalid phones (E-notation, too short, letters, empty),
   5% duplicates of earlier rows (in another format);
2. migrates the database, then runs `manage.py import_contacts FILE --list ...` in a child process
   (end to end: Django start, file copy into storage, detection, parsing, saving) and prints the
   wall time, rows/s, and the child's peak RSS (the figure that must stay under 300 MB);
3. times the contact changelist and searches through Django's test client against whatever the
   database holds (server time: request in, response rendered), median of several runs.

Flags: --skip-import, --skip-admin, --keep-file, --file PATH (reuse a file), --consent KIND (the
import records advertising consent on KIND for every contact; repeatable), --fresh (empty the
contact tables first; use it only on a benchmark database).

--ceiling (PostgreSQL, issue 22): the database's own speed on the same file, measured beside Loa in
the same invocation: psycopg COPY of the raw file into a staging table, then ONE INSERT ... SELECT
DISTINCT ON (phone) ... ON CONFLICT (phone) DO UPDATE with a regular-expression phone cleaner,
into a table made LIKE campaigns_contact INCLUDING ALL (same columns, same indexes: the unique
phone btree, the trigram GIN on search_text, the partial tags GIN), empty before each run as
Loa's contacts are (--fresh is implied). With --runs N the two alternate N times; each pair
prints its ratio (Loa's rows/s over the ceiling's, both end to end on the same file) and the
median of the pairs is the figure. The ceiling does less than Loa (no list memberships, no
per-row report, no Django start-up, a cruder cleaner): it is the anchor, not a twin.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as `python bench/import_contacts.py`: the project importable

from bench import _common as common  # noqa: E402 (after the path above)
from bench._common import setup_django  # noqa: E402
from webhooks.management import demo_people  # noqa: E402

# The demo's surnames, then four more: a file of 1M rows wants a wider spread.
SURNAMES = [*demo_people.SURNAMES, "Hồ", "Ngô", "Dương", "Lý"]
MIDDLE = ["Văn", "Thị", "Hữu", "Đức", "Minh", "Ngọc", "Thanh", "Quốc", "Xuân", "Thu", "Gia", "Bảo"]
GIVEN = [
    "An",
    "Bình",
    "Châu",
    "Dũng",
    "Giang",
    "Hà",
    "Hải",
    "Hạnh",
    "Hùng",
    "Hương",
    "Khánh",
    "Lan",
    "Linh",
    "Long",
    "Mai",
    "Nam",
    "Nga",
    "Phúc",
    "Quân",
    "Quỳnh",
    "Sơn",
    "Tâm",
    "Thảo",
    "Trang",
    "Tuấn",
    "Việt",
    "Yến",
]
CITIES = [
    "Hà Nội",
    "TP. Hồ Chí Minh",
    "Đà Nẵng",
    "Hải Phòng",
    "Cần Thơ",
    "Huế",
    "Nha Trang",
    "Vũng Tàu",
]
# Every current mobile prefix: the demo's, and the four it leaves out.
PREFIXES = [*demo_people.PREFIXES, "81", "82", "89", "59"]
LEGACY = {
    "32": "162",
    "33": "163",
    "34": "164",
    "35": "165",
    "36": "166",
    "37": "167",
    "38": "168",
    "39": "169",
}


def _formats(national: str, rnd: random.Random) -> str:
    k = rnd.random()
    if k < 0.35:
        return "0" + national
    if k < 0.50:
        return "84" + national
    if k < 0.60:
        return f"+84 {national[:2]} {national[2:5]} {national[5:]}"
    if k < 0.70:
        return national  # Excel dropped the leading zero
    if k < 0.78:
        return "84" + national + ".0"
    if k < 0.86:
        return f"(+84) {national[:2]}-{national[2:5]}-{national[5:]}"
    if k < 0.94:
        return f"0{national[:3]}.{national[3:6]}.{national[6:]}"
    if national[:2] in LEGACY:
        return "0" + LEGACY[national[:2]] + national[2:]  # 11-digit number from before 2018
    return "0" + national


def _invalid(rnd: random.Random) -> str:
    return rnd.choice(["8.49877E+10", "12345", "abc", "", "0987", "+1 202 555 0147", "02439123456"])


def generate(
    path: Path, rows: int, *, seed: int = 42, invalid: float = 0.05, dup: float = 0.05
) -> None:
    rnd = random.Random(seed)
    recent: list[str] = []
    used: set[str] = set()
    with path.open("w", encoding="utf-8", newline="") as fh:
        fh.write("SĐT,Họ tên,Thành phố,Mã đơn,Số tiền\n")
        for i in range(rows):
            k = rnd.random()
            if k < invalid:
                phone = _invalid(rnd)
            elif k < invalid + dup and recent:
                phone = _formats(rnd.choice(recent), rnd)
            else:
                while True:
                    national = rnd.choice(PREFIXES) + f"{rnd.randrange(10**7):07d}"
                    if national not in used:
                        break
                used.add(national)
                if len(recent) < 5000:
                    recent.append(national)
                else:
                    recent[rnd.randrange(5000)] = national
                phone = _formats(national, rnd)
            name = f"{rnd.choice(SURNAMES)} {rnd.choice(MIDDLE)} {rnd.choice(GIVEN)}"
            fh.write(
                f'{phone},{name},{rnd.choice(CITIES)},DH{i:07d},"{rnd.randrange(100, 9000) * 1000}"\n'
            )


class BackendCPU(threading.Thread):
    """CPU seconds used by the import's PostgreSQL backend (a local server only): with the
    child's own CPU time, it shows what the run costs apart from other load on the machine."""

    def __init__(self, database_url: str, application_name: str = ""):
        super().__init__(daemon=True)
        self.url = database_url
        self.application_name = application_name
        self.seen: dict[int, float] = {}
        self.first: dict[int, float] = {}  # a backend that existed before counts from then
        self.stop = threading.Event()

    def run(self) -> None:
        try:
            import psycopg

            conn = psycopg.connect(
                self.url.replace("postgres://", "postgresql://", 1), autocommit=True
            )
        except Exception:
            return
        tick = os.sysconf("SC_CLK_TCK")
        while not self.stop.wait(0.2):
            rows = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
                " AND application_name = %s",
                [self.application_name],
            ).fetchall()
            for (pid,) in rows:
                try:
                    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                used = (int(fields[11]) + int(fields[12])) / tick
                self.first.setdefault(pid, used if not self.seen else 0.0)
                self.seen[pid] = used - self.first[pid]
        conn.close()


def run_import(path: Path, env: dict, consent: list[str] = ()) -> dict:
    list_name = f"bench {time.strftime('%Y%m%d-%H%M%S')}"
    cmd = [sys.executable, "manage.py", "import_contacts", str(path), "--list", list_name]
    for kind in consent:  # "these contacts consented to advertising on <kind>" (issue 21)
        cmd += ["--consent", kind]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    url = env.get("DATABASE_URL", "")
    watcher = BackendCPU(url) if url.startswith("postgres") and "127.0.0.1" in url else None
    if watcher:
        watcher.start()
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if watcher:
        watcher.stop.set()
        watcher.join()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak_kb = usage.ru_maxrss
    child_cpu = (usage.ru_utime - before.ru_utime) + (usage.ru_stime - before.ru_stime)
    print(proc.stdout.strip())
    if proc.returncode:
        print(proc.stderr[-3000:], file=sys.stderr)
        raise SystemExit("import failed")
    counts = dict(
        part.split("=")
        for line in proc.stdout.splitlines()
        if line.startswith("total=")
        for part in line.split()
    )
    for line in proc.stderr.splitlines():
        if "loa.imports" in line:
            print("  " + line.split("loa.imports", 1)[1].strip(" -[]"))
    return {
        "wall": wall,
        "peak_mb": peak_kb / 1024,
        "counts": counts,
        "child_cpu": child_cpu,
        "db_cpu": sum(watcher.seen.values()) if watcher else None,
    }


# The anchor's phone cleaner, as one would write it by hand: digits only (after an Excel ".0"),
# then 0xxxxxxxxx / 84xxxxxxxxx / xxxxxxxxx (leading zero lost) to 84xxxxxxxxx; anything else is
# dropped. Legacy 11-digit numbers are not rewritten (Loa rewrites them: a few rows differ).
_CEIL_DIGITS = "regexp_replace(regexp_replace(phone, '\\.0$', ''), '[^0-9]', '', 'g')"
_CEIL_PHONE = (
    "CASE WHEN d ~ '^84[1-9][0-9]{8}$' THEN d"
    " WHEN d ~ '^0[1-9][0-9]{8}$' THEN '84' || substr(d, 2)"
    " WHEN d ~ '^[1-9][0-9]{8}$' THEN '84' || d END"
)


def run_ceiling(path: Path, database_url: str) -> dict:
    """COPY + one upsert (see the module doc), in this process; wall, CPU and the row count."""
    import psycopg

    url = database_url.replace("postgres://", "postgresql://", 1)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_ceiling_contact")
        conn.execute("CREATE TABLE bench_ceiling_contact (LIKE campaigns_contact INCLUDING ALL)")
        conn.execute("CHECKPOINT")  # the DDL's and earlier runs' dirty pages not on this run
    watcher = BackendCPU(database_url, application_name="loa-ceiling")
    watcher.start()
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    with psycopg.connect(url, application_name="loa-ceiling") as conn:
        conn.execute(
            "CREATE TEMPORARY TABLE ceiling_stage (phone text, name text, city text,"
            " order_no text, amount text)"
        )
        with conn.cursor() as cur:
            copy_sql = "COPY ceiling_stage FROM STDIN WITH (FORMAT csv, HEADER true)"
            with cur.copy(copy_sql) as copy, path.open("rb") as fh:
                while data := fh.read(1 << 20):
                    copy.write(data)
            cur.execute(
                "INSERT INTO bench_ceiling_contact AS c (phone, name, attributes, search_text,"
                " source, created_at, updated_at)"
                " SELECT DISTINCT ON (p) p, name, jsonb_build_object('Thành phố', city,"
                " 'Mã đơn', order_no, 'Số tiền', amount), lower(name), 'ceiling', now(), now()"
                f" FROM (SELECT {_CEIL_PHONE} AS p, name, city, order_no, amount FROM"
                f" (SELECT {_CEIL_DIGITS} AS d, * FROM ceiling_stage) x) y"
                " WHERE p IS NOT NULL ORDER BY p"
                " ON CONFLICT (phone) DO UPDATE SET name = EXCLUDED.name,"
                " attributes = c.attributes || EXCLUDED.attributes,"
                " search_text = EXCLUDED.search_text, updated_at = EXCLUDED.updated_at"
            )
            upserted = cur.rowcount
            cur.execute("SELECT count(*) FROM ceiling_stage")
            read = cur.fetchone()[0]
        conn.commit()
    wall = time.perf_counter() - t0
    watcher.stop.set()
    watcher.join()
    return {
        "wall": wall,
        "rows": read,
        "upserted": upserted,
        "cpu": time.process_time() - cpu0,
        "db_cpu": sum(watcher.seen.values()),
    }


def bench_admin(env: dict, runs: int = 5) -> None:
    setup_django(env)
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client

    from campaigns.models import Contact

    user, _ = User.objects.get_or_create(
        username="bench-admin", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    sample = (
        Contact.objects.order_by("-id").values_list("phone", flat=True).first() or "84987654321"
    )
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM campaigns_contact")
        total = cur.fetchone()[0]
    print(f"admin at {total:,} contacts ({connection.vendor}):")
    urls = {
        "changelist": "/admin/campaigns/contact/",
        "changelist page 50": "/admin/campaigns/contact/?p=49",
        "search 'nguyen' (common)": "/admin/campaigns/contact/?q=nguyen",
        "search 'quynh' (diacritics)": "/admin/campaigns/contact/?q=qu%E1%BB%B3nh",
        "search 'hoang thu' (rare pair)": "/admin/campaigns/contact/?q=hoang+thu+yen",
        "search phone prefix": f"/admin/campaigns/contact/?q=0{sample[2:8]}",
        "search no match": "/admin/campaigns/contact/?q=zzqxv",
        "list filter opted-out": "/admin/campaigns/contact/?opted_out=all",
    }
    for label, url in urls.items():
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            response = client.get(url)
            times.append((time.perf_counter() - t0) * 1000)
            if response.status_code != 200:
                raise SystemExit(f"{url}: HTTP {response.status_code}")
        print(
            f"  {label:34s} median {statistics.median(times):7.1f} ms  (min {min(times):.1f}, max {max(times):.1f})"
        )


def empty_contacts(env: dict) -> None:
    """The contact tables emptied (a benchmark database only)."""
    setup_django(env)
    from django.db import connection

    with connection.cursor() as cur:
        # Contacts referenced by campaign messages stay (their FK is PROTECT).
        cur.execute("DELETE FROM campaigns_optout")
        cur.execute("DELETE FROM privacy_consentstate")
        cur.execute("DELETE FROM privacy_consentrecord")
        cur.execute("DELETE FROM campaigns_contactlistmembership")
        cur.execute("UPDATE campaigns_contact SET source_import_id = NULL")
        cur.execute(
            "DELETE FROM campaigns_contact WHERE id NOT IN (SELECT contact_id FROM campaigns_message)"
        )
        cur.execute("DELETE FROM campaigns_contactimport")
        cur.execute("UPDATE campaigns_contactlist SET contact_count = 0")
        if connection.vendor == "postgresql":
            cur.execute("VACUUM ANALYZE campaigns_contact")
            cur.execute("VACUUM ANALYZE campaigns_contactlistmembership")
            cur.execute("CHECKPOINT")  # the deletion's dirty pages written before the timing
    connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""))
    parser.add_argument("--file", type=Path, help="reuse this file instead of generating one")
    parser.add_argument("--keep-file", action="store_true")
    parser.add_argument("--skip-import", action="store_true")
    parser.add_argument("--skip-admin", action="store_true")
    parser.add_argument("--fresh", action="store_true", help="empty the contact tables first")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--ceiling",
        action="store_true",
        help="PostgreSQL: measure COPY + one upsert of the same file beside Loa (implies --fresh)",
    )
    parser.add_argument("--runs", type=int, default=1, help="imports (alternating with --ceiling)")
    parser.add_argument(
        "--consent",
        action="append",
        default=[],
        help="record advertising consent on this channel kind for every contact (repeatable)",
    )
    args = parser.parse_args()

    env = dict(os.environ)
    if args.database_url:
        env["DATABASE_URL"] = args.database_url
    env.setdefault("MEDIA_ROOT", str(Path(tempfile.gettempdir()) / "loa-bench-media"))
    env["DEBUG"] = "false"  # no query log, like production
    db = env.get("DATABASE_URL", "sqlite (default)")
    print(
        f"database: {db.split('@')[-1]}  cpus: {os.cpu_count()}  python: {sys.version.split()[0]}"
    )
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True
    )
    if args.ceiling and not env.get("DATABASE_URL", "").startswith("postgres"):
        raise SystemExit("--ceiling needs PostgreSQL (--database-url)")

    if not args.skip_import:
        path = args.file
        generated = False
        if path is None:
            path = Path(tempfile.gettempdir()) / f"loa-bench-{args.rows}.csv"
            t0 = time.perf_counter()
            generate(path, args.rows, seed=args.seed)
            generated = True
            print(
                f"generated {args.rows:,} rows ({path.stat().st_size / 1048576:.1f} MB) in {time.perf_counter() - t0:.1f} s: {path}"
            )
        ratios, loa_rates, ceil_rates = [], [], []
        try:
            for run in range(args.runs):
                if args.fresh or args.ceiling:
                    empty_contacts(env)
                result = run_import(path, env, args.consent)
                total = int(result["counts"].get("total", 0))
                load = os.getloadavg()[0]
                rate = total / result["wall"]
                loa_rates.append(rate)
                print(
                    f"IMPORT {total:,} rows in {result['wall']:.1f} s end to end = {rate:,.0f} rows/s; "
                    f"peak RSS {result['peak_mb']:.0f} MB"
                )
                cpu = f"CPU: import process {result['child_cpu']:.1f} s"
                if result["db_cpu"] is not None:
                    cpu += f", PostgreSQL backend {result['db_cpu']:.1f} s"
                print(
                    f"{cpu}; load average {load:.1f} on {os.cpu_count()} cpus (other work slows the wall time)"
                )
                if not args.ceiling:
                    continue
                ceil = run_ceiling(path, env["DATABASE_URL"])
                ceil_rate = ceil["rows"] / ceil["wall"]
                ceil_rates.append(ceil_rate)
                ratios.append(rate / ceil_rate)
                print(
                    f"CEILING (COPY + one INSERT ... ON CONFLICT) {ceil['rows']:,} rows in "
                    f"{ceil['wall']:.1f} s = {ceil_rate:,.0f} rows/s ({ceil['upserted']:,} upserted);"
                    f" CPU: client {ceil['cpu']:.1f} s, PostgreSQL backend {ceil['db_cpu']:.1f} s;"
                    f" load average {os.getloadavg()[0]:.1f}"
                )
                print(
                    f"run {run + 1}: Loa / ceiling = {rate / ceil_rate:.3f}"
                    f" (CPU, Loa process + backends / ceiling's: "
                    f"{(result['child_cpu'] + (result['db_cpu'] or 0)):.1f} s / "
                    f"{ceil['cpu'] + ceil['db_cpu']:.1f} s)"
                )
                common.figure(
                    "import_vs_ceiling",
                    round(rate / ceil_rate, 3),
                    "ratio",
                    ">=0.7",
                    rate / ceil_rate >= 0.7,
                    rows=total,
                    peak_mb=round(result["peak_mb"]),
                    load=round(os.getloadavg()[0], 1),
                )
        finally:
            if generated and not args.keep_file:
                path.unlink(missing_ok=True)
        if ratios:
            print(
                f"SUMMARY Loa / ceiling over {len(ratios)} pair(s): median {statistics.median(ratios):.3f}"
                f" (range {min(ratios):.3f}-{max(ratios):.3f}); Loa {statistics.median(loa_rates):,.0f}"
                f" rows/s (range {min(loa_rates):,.0f}-{max(loa_rates):,.0f}), ceiling"
                f" {statistics.median(ceil_rates):,.0f} rows/s (range {min(ceil_rates):,.0f}-"
                f"{max(ceil_rates):,.0f})"
            )
            median = statistics.median(ratios)
            common.figure(
                "import_vs_ceiling_median",
                round(median, 3),
                "ratio",
                ">=0.7",
                median >= 0.7,
                pairs=len(ratios),
                load=round(os.getloadavg()[0], 1),
            )
    if not args.skip_admin:
        bench_admin(env)


if __name__ == "__main__":
    main()
