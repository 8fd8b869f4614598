#!/usr/bin/env python3
"""Run every benchmark in bench/ and print one table of figures next to their targets.

    make bench                         # quick sizes, on a throwaway SQLite file
    .venv/bin/python bench/run_all.py --database-url postgres://postgres@127.0.0.1:5432/loa_bench
    .venv/bin/python bench/run_all.py --only send_campaign,webhooks --full
    .venv/bin/python bench/run_all.py --markdown     # table + machine, for docs/BENCHMARKS.md

Each benchmark is a script bench/<name>.py run as its own process (so one crash or leak cannot
skew the next). Known ones run first, in this order: import_contacts, validate_audience,
send_campaign, webhooks, admin_pages; any other bench/*.py runs after them (not run_all.py,
fake_provider, nor files starting with "_"). Missing ones are listed, not fatal.

Size: by default each runs at a size that fits a small 2-core machine: with `--quick` when the
script accepts it (it appears in its --help), else with the small-size flags of QUICK_ARGS
below (only those its --help lists). `--full` runs every script at its own defaults.

Database: children get DATABASE_URL from --database-url, else from the environment, else each
benchmark gets its own fresh SQLite file under tmp/bench/ (so one's rows cannot collide with the
next one's) -- never the development database.

THE CONVENTION every benchmark follows (also in bench/README.md). Print one line per figure,
to stdout, starting at the beginning of the line:

    FIGURE <name>=<value> <unit> target=<target> ok=<yes|no> [key=value ...]

- name: lower-case letters, digits, `_ . -`; unique within the script (e.g. import_rows_per_s)
- value: a number (int or float, no thousands separators)
- unit: one token without `=`, e.g. rows/s, msg/s, ms, MB, s, %; `-` if none
- target: the goal as a comparison, no spaces: `>=10000`, `<=300`, `<800`; `-` if none
- ok: yes or no (the script decides, it knows the comparison), `-` when there is no target
- extra key=value tokens are allowed after ok (size=20000 is shown in the table)

Example:  FIGURE import_rows_per_s=41234.5 rows/s target=>=10000 ok=yes size=200000

Other output is kept in tmp/bench/<name>.log. The exit status is 1 when a benchmark crashed or
timed out (with --strict, also when a figure misses its target); figures below target are
reported in the table either way. The last run is saved to tmp/bench/latest.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
KNOWN = ["import_contacts", "validate_audience", "send_campaign", "webhooks", "admin_pages"]
# scale_build / scale_pages: the 10M-tenant pair (issue 22) runs by hand against its own
# database (a 20-minute build, then figures measured in minutes), never in `make bench`; so do
# the two probes that read that database (fallback_invalid, segment_index_probe).
NOT_BENCHMARKS = {
    "run_all",
    "fake_provider",
    "scale_build",
    "scale_pages",
    "fallback_invalid",
    "segment_index_probe",
}
# Small sizes for scripts without --quick: each flag is passed only if the script's --help has it.
QUICK_ARGS: dict[str, list[str]] = {
    "import_contacts": ["--rows", "20000"],
    "validate_audience": ["--contacts", "20000"],
    "send_campaign": ["--contacts", "20000", "--messages", "5000"],
    "webhooks": ["--messages", "5000"],
    "admin_pages": ["--messages", "50000", "--rows", "50000"],
}

FIGURE_RE = re.compile(
    r"^FIGURE\s+(?P<name>[A-Za-z0-9_.\-]+)=(?P<value>\S+)"
    r"(?:\s+(?!target=|ok=)(?P<unit>[^\s=]+))?"
    r"(?:\s+target=(?P<target>\S+))?"
    r"(?:\s+ok=(?P<ok>yes|no|-))?"
    r"(?P<extra>(?:\s+[A-Za-z0-9_.\-]+=\S+)*)\s*$"
)


@dataclass
class Figure:
    benchmark: str
    name: str
    value: float | str
    unit: str = "-"
    target: str = "-"
    ok: str = "-"
    extra: dict[str, str] = field(default_factory=dict)


@dataclass
class Run:
    benchmark: str
    status: str  # ok | failed | timeout | missing
    seconds: float = 0.0
    args: list[str] = field(default_factory=list)
    returncode: int | None = None
    figures: list[Figure] = field(default_factory=list)
    log: str = ""
    tail: str = ""


def parse_figures(text: str, benchmark: str) -> list[Figure]:
    """Every FIGURE line of a benchmark's output, in order."""
    out = []
    for line in text.splitlines():
        m = FIGURE_RE.match(line.strip())
        if not m:
            continue
        raw = m.group("value")
        try:
            value: float | str = float(raw) if any(c in raw for c in ".eE") else int(raw)
        except ValueError:
            value = raw
        extra = dict(tok.split("=", 1) for tok in (m.group("extra") or "").split())
        out.append(
            Figure(
                benchmark=benchmark,
                name=m.group("name"),
                value=value,
                unit=m.group("unit") or "-",
                target=m.group("target") or "-",
                ok=m.group("ok") or "-",
                extra=extra,
            )
        )
    return out


def discover(only: list[str] | None = None) -> list[str]:
    present = sorted(
        p.stem
        for p in BENCH_DIR.glob("*.py")
        if p.stem not in NOT_BENCHMARKS and not p.stem.startswith("_")
    )
    names = KNOWN + [n for n in present if n not in KNOWN]
    if only:
        names = [n for n in names if n in only] + [n for n in only if n not in names]
    return names


def script_help(path: Path, env: dict) -> str:
    try:
        r = subprocess.run(
            [sys.executable, str(path), "--help"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        return r.stdout + r.stderr
    except (subprocess.TimeoutExpired, OSError):
        return ""


def size_args(name: str, help_text: str, full: bool) -> list[str]:
    if full:
        return []
    if re.search(r"(?<![\w-])--quick\b", help_text):
        return ["--quick"]
    args, quick = [], QUICK_ARGS.get(name, [])
    for i in range(0, len(quick), 2):
        flag = quick[i]
        if re.search(rf"(?<![\w-]){re.escape(flag)}\b", help_text):
            args += quick[i : i + 2]
    return args


def run_one(
    name: str, *, env: dict, full: bool, timeout: float, log_dir: Path, own_db: bool = False
) -> Run:
    path = BENCH_DIR / f"{name}.py"
    if not path.exists():
        return Run(benchmark=name, status="missing")
    if own_db:
        db = log_dir / f"{name}.sqlite3"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        env = {**env, "DATABASE_URL": f"sqlite:///{db}"}
    args = size_args(name, script_help(path, env), full)
    log = log_dir / f"{name}.log"
    started = time.monotonic()
    try:
        proc = subprocess.run(
            [sys.executable, str(path), *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        output, code = proc.stdout + proc.stderr, proc.returncode
        status = "ok" if code == 0 else "failed"
        stdout = proc.stdout
    except subprocess.TimeoutExpired as exc:

        def _text(v):
            return v.decode(errors="replace") if isinstance(v, bytes) else (v or "")

        stdout = _text(exc.stdout)
        output, code, status = stdout + _text(exc.stderr), None, "timeout"
    seconds = time.monotonic() - started
    log.write_text(output)
    return Run(
        benchmark=name,
        status=status,
        seconds=round(seconds, 1),
        args=args,
        returncode=code,
        figures=parse_figures(stdout, name),
        log=str(log.relative_to(ROOT)),
        tail="\n".join(output.strip().splitlines()[-5:]) if status != "ok" else "",
    )


def fmt_value(v) -> str:
    if isinstance(v, float):
        return f"{v:,.1f}" if abs(v) >= 100 else f"{v:,.3g}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def table_rows(runs: list[Run]) -> list[list[str]]:
    rows = []
    for r in runs:
        if r.status == "missing":
            rows.append([r.benchmark, "(not written yet)", "", "", "", "", ""])
            continue
        if not r.figures:
            note = {
                "ok": "(no FIGURE lines, see its log)",
                "failed": "CRASHED",
                "timeout": "TIMED OUT",
            }
            rows.append([r.benchmark, note[r.status], "", "", "", "", f"{r.seconds}s"])
            continue
        for i, f in enumerate(r.figures):
            status = "" if r.status == "ok" else f" [{r.status.upper()}]"
            rows.append(
                [
                    r.benchmark if i == 0 else "",
                    f.name + (status if i == 0 else ""),
                    fmt_value(f.value),
                    f.unit,
                    f.target,
                    f.ok,
                    f.extra.get("size", ""),
                ]
            )
    return rows


HEADER = ["benchmark", "figure", "value", "unit", "target", "ok", "size"]


def render_text(rows: list[list[str]]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(HEADER, *rows, strict=False)]
    aligns = ["<", "<", ">", "<", "<", "<", ">"]

    def line(cells):
        return "  ".join(f"{c:{a}{w}}" for c, a, w in zip(cells, aligns, widths, strict=True))

    out = [line(HEADER), line(["-" * w for w in widths])]
    out += [line(r) for r in rows]
    return "\n".join(out)


def render_markdown(rows: list[list[str]], machine: dict) -> str:
    out = [
        f"Run {machine['date']} on {machine['cpu']} ({machine['cores']} cores, "
        f"{machine['memory']}), {machine['os']}, Python {machine['python']}, "
        f"database {machine['database']}.",
        "",
        "| " + " | ".join(HEADER) + " |",
        "|" + "|".join("---:" if h in ("value", "size") else "---" for h in HEADER) + "|",
    ]
    out += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
    return "\n".join(out)


def machine_info(database_url: str) -> dict:
    cpu = platform.processor() or platform.machine()
    memory = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GB RAM"
                break
    except OSError:
        pass
    scheme = database_url.split(":", 1)[0] if database_url else "sqlite"
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory": memory,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "database": "PostgreSQL" if scheme.startswith("postgres") else "SQLite",
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--only", default="", help="comma-separated benchmark names")
    p.add_argument("--full", action="store_true", help="run at each script's default size")
    p.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""))
    p.add_argument(
        "--timeout", type=float, default=float(os.environ.get("BENCH_TIMEOUT", 1200)),
        help="seconds per benchmark (default 1200, or BENCH_TIMEOUT)",
    )  # fmt: skip
    p.add_argument("--markdown", action="store_true", help="also print a Markdown table")
    p.add_argument("--strict", action="store_true", help="exit 1 when a figure misses its target")
    p.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    opts = p.parse_args(argv)

    only = [x.strip() for x in opts.only.split(",") if x.strip()] or None
    names = discover(only)
    if opts.list:
        for n in names:
            state = "present" if (BENCH_DIR / f"{n}.py").exists() else "missing"
            print(f"{n:20} {state}")
        return 0

    log_dir = ROOT / "tmp" / "bench"
    log_dir.mkdir(parents=True, exist_ok=True)
    own_db = not opts.database_url
    database_url = opts.database_url or f"sqlite:///{log_dir / '<benchmark>.sqlite3'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(
        DATABASE_URL=database_url,
        DJANGO_SETTINGS_MODULE=env.get("DJANGO_SETTINGS_MODULE", "config.settings"),
        PYTHONUNBUFFERED="1",
    )
    machine = machine_info(database_url)
    print(
        f"Benchmarks on {machine['cpu']} ({machine['cores']} cores), {machine['database']}, "
        f"{'full' if opts.full else 'quick'} sizes; logs in {log_dir.relative_to(ROOT)}/",
        flush=True,
    )
    runs = []
    for name in names:
        print(f"  running {name} ...", end=" ", flush=True)
        run = run_one(
            name, env=env, full=opts.full, timeout=opts.timeout, log_dir=log_dir, own_db=own_db
        )
        runs.append(run)
        extra = f" {' '.join(run.args)}" if run.args else ""
        print(f"{run.status} ({run.seconds}s{extra})" if run.status != "missing" else "missing")
        if run.tail:
            print("    " + run.tail.replace("\n", "\n    "))

    rows = table_rows(runs)
    print()
    print(render_text(rows))
    misses = [f for r in runs for f in r.figures if f.ok == "no"]
    broken = [r for r in runs if r.status in ("failed", "timeout")]
    print(
        f"\n{sum(len(r.figures) for r in runs)} figures, {len(misses)} below target, "
        f"{len(broken)} benchmark(s) crashed or timed out, "
        f"{sum(r.status == 'missing' for r in runs)} not written yet."
    )
    if opts.markdown:
        print()
        print(render_markdown(rows, machine))
    (log_dir / "latest.json").write_text(
        json.dumps(
            {"machine": machine, "quick": not opts.full, "runs": [asdict(r) for r in runs]},
            indent=2,
            ensure_ascii=False,
            default=str,
        )
    )
    if broken or (opts.strict and misses):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
