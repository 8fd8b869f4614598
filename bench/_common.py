"""What the benchmarks share: the FIGURE line printer (bench/README.md), a machine-speed probe,
CPU accounting from /proc, Django setup for a benchmark process, and starting and stopping the
child processes they measure (a qcluster, a server on a free port).

Not a benchmark itself: run_all.py skips files whose name starts with "_"."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def scale_database_argument(parser) -> None:
    """--database-url for the scripts that read the 10M-tenant database (scale_build.py builds
    it): SCALE_DATABASE_URL, else loa_scale10m on the local server."""
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "SCALE_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/loa_scale10m"
        ),
    )


def figure(name, value, unit="-", target="-", ok=None, **extra):
    okv = "-" if ok is None else ("yes" if ok else "no")
    tail = "".join(f" {k}={v}" for k, v in extra.items())
    print(f"FIGURE {name}={value} {unit} target={target} ok={okv}{tail}", flush=True)


def machine_speed() -> None:
    """Print how fast this machine runs plain Python right now. On a shared VM the same code ran
    35% slower from one hour to the next; a figure read next to this one can be compared."""
    started = time.process_time()
    total = 0
    for i in range(10_000_000):
        total += i
    figure(
        "machine_python_loop_s",
        round(time.process_time() - started, 2),
        "s",
        "-",
        None,
        note="10M_additions_lower_is_faster",
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, *, tries: int, pause: float) -> None:
    """Until something listens on the loopback port (or `tries` attempts `pause` s apart)."""
    for _ in range(tries):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(pause)


def cpu_seconds(pgid: int | None = None, comm: str | None = None) -> float:
    """user+sys of every live process in a process group (or with this command name), plus what
    their dead children used."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if pgid is not None and int(fields[2]) != pgid:  # field 5 (pgrp) after pid and comm
            continue
        if comm is not None and stat[stat.index("(") + 1 : stat.rindex(")")] != comm:
            continue
        utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
        total += utime + stime + cutime + cstime
    return total / tick


def setup_django(env: Mapping[str, str]) -> None:
    """Django in this process, on the settings `env` gives (DATABASE_URL, DEBUG, ...)."""
    os.environ.update(env)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


def migrate_and_clear_queue() -> str:
    """Migrate the benchmark database, drop the tasks an earlier run left queued; its vendor."""
    # Django is set up by now (setup_django): its modules load only after that.
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    from django_q.models import OrmQ

    # Tasks an earlier run left queued in this bench database (its cluster was stopped with
    # work pending) would run first and skew the figures.
    OrmQ.objects.all().delete()
    return connection.vendor


def start_qcluster(env: Mapping[str, str]) -> subprocess.Popen:
    """`manage.py qcluster` in its own process group (so its CPU can be read and it can be
    stopped whole), output discarded."""
    return subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop_process_group(proc: subprocess.Popen) -> None:
    """SIGTERM to the process group of a child started with start_new_session; SIGKILL if it
    is still there 20 s later."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
