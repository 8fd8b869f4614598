"""Webhook intake benchmark: status callbacks per second through the real server, latency, CPU
per callback, zero lost, and the same load on an anchor beside it.

    python bench/webhooks.py --database-url postgres://postgres@127.0.0.1:5432/loa_bench
    python bench/webhooks.py --quick
    python bench/webhooks.py --rounds 3     # anchor and Loa alternating, medians printed

Each round creates a campaign of M messages already accepted by eSMS, then runs the same load
twice, one server at a time, the anchor first:

- the anchor (bench/_webhook_anchor.py): a plain Django view storing each callback with one raw
  `INSERT ... ON CONFLICT DO NOTHING`, on the same web server with the same sizing;
- Loa: the web server in front of config.wsgi (the fast path) and one qcluster (which applies
  the stored events in batches).

The load generator (separate processes on the same machine, 16 keep-alive connections by
default) sends each message's eSMS GET callback, every key unique unless --duplicates says
otherwise, as fast as the server answers. Reported per server: the rate, p50/p99, and CPU per
callback; for Loa, after every event is applied, that the database holds exactly what was sent
(one stored event per request, one delivered status per message, counters equal to the rows);
then Loa's p99 over the anchor's.

CPU per callback is the CPU of the processes that do the work, over the window from the first
request until the last event is applied (Loa) or the last answer (anchor), divided by the
callbacks sent: the web server's process group, the qcluster's process group, and the
PostgreSQL backends connected to the benchmark's database (pg_stat_activity, sampled during the
window), each read from /proc/<pid>/stat. Not in the sum: the load generator (printed apart) and
PostgreSQL's shared background processes. Until 2026-12-04 the sum included the load generator
and every process named `postgres` on the machine (other databases' backends too), and missed
the applier's work after the last request: that is where "about 1.3 ms" came from.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as `python bench/webhooks.py`: the project importable

from bench import _common as common  # noqa: E402 (after the path above)
from bench._fixtures import make_contacts, new_campaign, setup_channel  # noqa: E402
from bench.fake_provider import esms as fake_esms  # noqa: E402


def _client(args):
    """One load process: `conns` keep-alive HTTP/1.1 connections driven by one selector loop,
    each sending its next request as soon as the previous answer is in. A lean client on
    purpose: http.client parses every response's headers with the email package and costs
    ~0.3 ms of CPU per request, which on a 2-core box is CPU taken from the server under test."""
    import selectors

    port, paths, conns = args
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors = 0
    todo = list(reversed(paths))
    sel = selectors.DefaultSelector()

    def connect():
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def send(state):
        path = todo.pop()
        state.update(path=path, buf=b"", t0=time.perf_counter(), tries=state.get("tries", 0))
        state["sock"].sendall(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: loa-bench\r\n\r\n".encode()
        )

    for _ in range(min(conns, len(todo))):
        state = {"sock": connect()}
        sel.register(state["sock"], selectors.EVENT_READ, state)
        send(state)
    while sel.get_map():
        for key, _mask in sel.select(timeout=30):
            state = key.data
            try:
                chunk = state["sock"].recv(65536)
            except OSError:
                chunk = b""
            if not chunk:  # the server closed the connection: reconnect, resend the same path
                errors += 1
                sel.unregister(state["sock"])
                state["sock"].close()
                state["sock"] = connect()
                sel.register(state["sock"], selectors.EVENT_READ, state)
                todo.append(state["path"])
                send(state)
                continue
            buf = state["buf"] + chunk
            head_end = buf.find(b"\r\n\r\n")
            if head_end < 0:
                state["buf"] = buf
                continue
            head = buf[:head_end].decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            if len(buf) < head_end + 4 + length:
                state["buf"] = buf
                continue
            latencies.append(time.perf_counter() - state["t0"])
            code = int(head.split(" ", 2)[1])
            statuses[code] = statuses.get(code, 0) + 1
            if todo:
                send(state)
            else:
                sel.unregister(state["sock"])
                state["sock"].close()
    return latencies, errors, statuses


def _proc_cpu(pid: int) -> float | None:
    """user+sys seconds of one live process (not its children), None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU seconds of the processes that serve the callbacks, over one window (module
    docstring): process groups read at the start and the end, and the PostgreSQL backends of
    this database, found in pg_stat_activity by a sampler thread every 0.2 s (a backend that
    ends between two samples keeps its last sample; one started in the window counts from 0).
    The benchmark's own backends are left out."""

    def __init__(self, groups: dict[str, int]) -> None:
        from django.db import connection

        self.groups = groups
        self.pg = connection.vendor == "postgresql"
        self.own: set[int] = set()
        self.role: dict[int, str] = {}  # backend pid -> the role whose connection it serves
        if self.pg:
            self.own.add(_backend_pid())
        self._stop = threading.Event()

    def start(self) -> None:
        self.g0 = {role: common.cpu_seconds(pgid=pid) for role, pid in self.groups.items()}
        self.base: dict[int, float] = {}
        self.last: dict[int, float] = {}
        if self.pg:
            self.base = {pid: _proc_cpu(pid) or 0.0 for pid in self._backends()}
            self.last = dict(self.base)
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()

    def _backends(self) -> list[int]:
        from django.db import connection

        with connection.cursor() as cur:
            cur.execute(
                "SELECT pid, client_port FROM pg_stat_activity WHERE datname = current_database() "
                "AND backend_type = 'client backend'"
            )
            rows = [(pid, port) for pid, port in cur.fetchall() if pid not in self.own]
        unknown = [port for pid, port in rows if pid not in self.role]
        if unknown:
            owners = _port_owners(self.groups)
            for pid, port in rows:
                self.role.setdefault(pid, owners.get(port, "other"))
        return [pid for pid, _port in rows]

    def _sample(self) -> None:
        from django.db import connection

        self.own.add(_backend_pid())
        try:
            while not self._stop.wait(0.2):
                self._read()
        finally:
            connection.close()

    def _read(self) -> None:
        for pid in self._backends():
            cpu = _proc_cpu(pid)
            if cpu is not None:
                self.last[pid] = cpu

    def stop(self) -> dict[str, float]:
        out = {
            role: common.cpu_seconds(pgid=pid) - self.g0[role] for role, pid in self.groups.items()
        }
        if self.pg:
            self._stop.set()
            self._thread.join()
            self._read()
            out["postgres"] = sum(v - self.base.get(pid, 0.0) for pid, v in self.last.items())
            for role in (*self.groups, "other"):
                out[f"postgres_for_{role}"] = sum(
                    v - self.base.get(pid, 0.0)
                    for pid, v in self.last.items()
                    if self.role.get(pid) == role
                )
        return out


def _port_owners(groups: dict[str, int]) -> dict[int, str]:
    """{local TCP port: role} for the sockets the processes of each group hold (/proc/<pid>/fd
    and /proc/net/tcp*): a backend's client_port says whose connection it serves."""
    inode_role: dict[str, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            pgrp = int(stat[stat.rindex(")") + 2 :].split()[2])
            role = next((r for r, g in groups.items() if g == pgrp), None)
            if role is None:
                continue
            for fd in os.listdir(f"/proc/{entry}/fd"):
                link = os.readlink(f"/proc/{entry}/fd/{fd}")
                if link.startswith("socket:["):
                    inode_role[link[8:-1]] = role
        except OSError:
            continue
    out = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if parts[9] in inode_role:
                out[int(parts[1].rsplit(":", 1)[1], 16)] = inode_role[parts[9]]
    return out


def _backend_pid() -> int:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        return cur.fetchone()[0]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Webhook intake benchmark")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""))
    parser.add_argument("--messages", type=int, default=30_000, help="callbacks per round")
    parser.add_argument(
        "--duplicates", type=float, default=0.0, help="share of callbacks sent twice"
    )
    parser.add_argument("--rounds", type=int, default=1, help="anchor + Loa pairs, alternating")
    parser.add_argument("--no-anchor", action="store_true", help="Loa only")
    parser.add_argument("--clients", type=int, default=2, help="load generator processes")
    parser.add_argument(
        "--threads", type=int, default=8, help="connections per load process (16 in all)"
    )
    # The webhooks role as docs/OPERATIONS.md sizes it for two cores.
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--web-threads", type=int, default=16)
    parser.add_argument(
        "--server",
        choices=("granian", "gunicorn"),
        default="granian",
        help="the web server in front of config.wsgi (docs/OPERATIONS.md: the webhooks role)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="py-spy (dev extra) on Loa's web server and cluster during the load: "
        "tmp/webhooks-{web,applier}.txt, collapsed stacks",
    )
    parser.add_argument("--quick", action="store_true", help="5,000 messages")
    args = parser.parse_args()
    if args.quick:
        args.messages = 5_000
    return args


def sent_campaign(messages: int):
    """A campaign of `messages` messages, as after a send: every one accepted by eSMS with an
    SMSID. Returns (channel, campaign)."""
    from django.db import connection

    from campaigns.engine.lifecycle import campaign_transition
    from campaigns.engine.materialize import campaign_materialize
    from campaigns.models import Campaign

    channel, template = setup_channel("http://127.0.0.1:9")  # never called: messages are pre-sent
    list_id = make_contacts(messages)
    campaign = new_campaign(channel, template, list_id)
    campaign_transition(campaign_id=campaign.pk, to=Campaign.Status.RUNNING, note="bench")
    campaign_materialize(campaign_id=campaign.pk)
    with connection.cursor() as cur:
        cur.execute(
            "UPDATE campaigns_message SET status = 'sent', provider_message_id = 'sms-' || id "
            "WHERE campaign_id = %s",
            [campaign.pk],
        )
    Campaign.objects.filter(pk=campaign.pk).update(sent_count=messages, status="completed")
    return channel, campaign


def callback_paths(campaign, token: str, duplicates: float) -> list[str]:
    """Each message's eSMS delivered callback (the fake provider's, providers.md §2.5) as a GET
    path on the webhook URL, plus a share of exact duplicates, shuffled."""
    from campaigns.models import Message

    rows = Message.objects.filter(campaign=campaign).values_list(
        "provider_message_id", "idempotency_key", "phone"
    )
    oa_id = campaign.channel.official_account.oa_id
    template_id = campaign.template.provider_template_id
    paths = []
    for smsid, key, phone in rows:
        record = {
            "SMSID": smsid,
            "RequestId": key,
            "phone": "0" + phone[2:],
            "zalo_msg_id": "z" + smsid,
            "oaid": oa_id,
            "tempid": template_id,
            "failed": False,
        }
        paths.append(f"/webhooks/{token}/?{urlencode(fake_esms.callback(record))}")
    n_dupes = int(len(paths) * duplicates)
    paths = paths + paths[:n_dupes]
    random.Random(1).shuffle(paths)
    return paths


def start_web(
    args: argparse.Namespace, env: dict, port: int, app: str = "config.wsgi:application"
) -> subprocess.Popen:
    """The web server (granian or gunicorn) in front of `app`, its log in tmp/."""
    bindir = Path(sys.executable).parent
    if args.server == "gunicorn":
        command = [str(bindir / "gunicorn"), "-c", "config/gunicorn.conf.py", app]
    else:
        command = [
            str(bindir / "granian"),
            "--interface",
            "wsgi",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(args.web_workers),
            "--blocking-threads",
            str(args.web_threads),
            "--no-ws",
            "--log-level",
            "warning",
            app,
        ]
    return subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=open(ROOT / "tmp" / "bench-web.log", "ab"),  # noqa: SIM115 - lives as long as the server
        stderr=subprocess.STDOUT,
    )


def server_env(args: argparse.Namespace, port: int) -> dict:
    """The environment of the web server and the cluster: the webhooks role's sizing."""
    return {
        **os.environ,
        "PORT": str(port),
        "WEB_CONCURRENCY": str(args.web_workers),
        "GUNICORN_THREADS": str(args.web_threads),
        "GUNICORN_ACCESS_LOG": "/dev/null",
        "LOG_LEVEL": "warning",
        "GUNICORN_MAX_REQUESTS": "0",
        "Q_WORKERS": "1",
        "Q_LOG_LEVEL": "ERROR",
        "ALLOWED_HOSTS": "127.0.0.1",
        "DEBUG": "false",  # no query log, like production (until 2026-12-04 it ran with DEBUG on)
    }


def run_load(args: argparse.Namespace, port: int, paths: list[str]):
    """Every path sent by the load processes. Returns (latencies sorted, connection errors,
    HTTP statuses counted, elapsed s, the load generator's CPU s)."""
    shares = [paths[i :: args.clients] for i in range(args.clients)]
    before = os.times()
    t0 = time.perf_counter()
    with mp.get_context("fork").Pool(args.clients) as pool:
        results = pool.map(_client, [(port, share, args.threads) for share in shares])
    elapsed = time.perf_counter() - t0
    after = os.times()
    load_cpu = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
    latencies = sorted(x for r in results for x in r[0])
    errors = sum(r[1] for r in results)
    statuses: dict[int, int] = {}
    for r in results:
        for k, v in r[2].items():
            statuses[k] = statuses.get(k, 0) + v
    if not latencies:
        raise SystemExit(f"no request succeeded: {errors} connection errors, statuses {statuses}")
    return latencies, errors, statuses, elapsed, load_cpu


def report_load(
    who: str, latencies, elapsed: float, cpu: dict, load_cpu: float, vendor: str
) -> dict:
    """The rate, the latencies, and where the CPU went per callback; returns them."""
    n = len(latencies)
    rate = n / elapsed
    p50 = latencies[n // 2] * 1000
    p99 = latencies[int(n * 0.99)] * 1000
    per = {k: round(v / n * 1000, 3) for k, v in cpu.items()}
    total = round(sum(v for k, v in cpu.items() if "_for_" not in k) / n * 1000, 3)
    load = "/".join(f"{x:.2f}" for x in os.getloadavg())
    common.figure(f"{who}_callbacks_per_s", round(rate, 1), "req/s", "-", None, size=n, db=vendor)
    common.figure(f"{who}_p50_ms", round(p50, 1), "ms", "-", None, db=vendor)
    common.figure(f"{who}_p99_ms", round(p99, 1), "ms", "-", None, db=vendor, load=load)
    # Issue 22's target is for PostgreSQL: on SQLite the database's work is inside the web
    # server's and the applier's processes, and its single writer serializes them.
    target = who == "webhook" and vendor == "postgresql"
    common.figure(
        f"{who}_cpu_ms_per_callback",
        total,
        "ms",
        "<=0.8" if target else "-",
        total <= 0.8 if target else None,
        **per,
        load_generator=round(load_cpu / n * 1000, 3),
        load=load,
    )
    return {"rate": rate, "p50": p50, "p99": p99, "cpu": total, **per}


def events_applied_wait() -> None:
    """Until the applier has applied every stored event (at most 5 minutes)."""
    from webhooks.models import WebhookEvent

    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and WebhookEvent.objects.filter(outcome="received").exists():
        time.sleep(0.2)


def report_lost(channel, campaign, *, sent: int, messages: int, errors: int, statuses) -> None:
    """Check the database holds exactly what was sent (after events_applied_wait)."""
    from campaigns.models import Campaign, Message
    from webhooks.models import WebhookEvent

    events = WebhookEvent.objects.filter(account=channel.account)  # a new account per round
    stored = events.count()
    applied = events.filter(outcome="applied").count()
    dup = events.filter(outcome="duplicate").count()
    delivered = Message.objects.filter(campaign=campaign, status="delivered").count()
    c = Campaign.objects.get(pk=campaign.pk)
    lost = (sent - stored) + (messages - delivered) + abs(c.delivered_count - delivered)
    common.figure(
        "webhook_lost",
        lost,
        "-",
        "==0",
        lost == 0,
        sent=sent,
        stored=stored,
        applied=applied,
        duplicates=dup,
        delivered=delivered,
        counter=c.delivered_count,
        http_errors=errors,
        statuses="/".join(f"{k}:{v}" for k, v in sorted(statuses.items())),
    )


def anchor_round(args, env: dict, paths: list[str], vendor: str) -> dict:
    """The anchor's server, the load, its figures; the server stopped."""
    from bench._webhook_anchor import anchor_rows, anchor_table_create

    anchor_table_create()
    port = common.free_port()
    web = start_web(args, {**env, "PORT": str(port)}, port, "bench._webhook_anchor:application")
    try:
        common.wait_for_port(port, tries=100, pause=0.2)
        time.sleep(1)
        meter = CpuMeter({"web": web.pid})
        meter.start()
        latencies, errors, statuses, elapsed, load_cpu = run_load(args, port, paths)
        cpu = meter.stop()
    finally:
        common.stop_process_group(web)
    out = report_load("anchor", latencies, elapsed, cpu, load_cpu, vendor)
    rows = anchor_rows()
    common.figure(
        "anchor_lost",
        len(set(paths)) - rows,
        "-",
        "==0",
        len(set(paths)) == rows,
        rows=rows,
        http_errors=errors,
        statuses="/".join(f"{k}:{v}" for k, v in sorted(statuses.items())),
    )
    return out


def profilers_start(web, cluster) -> list[subprocess.Popen]:
    """py-spy on the web server's workers (--gil: the Python CPU, not the threads waiting for
    the group commit) and on the cluster's processes, until stopped."""
    spy = str(Path(sys.executable).parent / "py-spy")
    out = []
    for name, proc, extra in (("web", web, ["--gil"]), ("applier", cluster, [])):
        command = [spy, "record", "-p", str(proc.pid), "--subprocesses", "-r", "200", "-f", "raw"]
        command += [*extra, "-o", str(ROOT / "tmp" / f"webhooks-{name}.txt")]
        out.append(subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    time.sleep(1)  # attached before the load starts
    return out


def loa_round(args, env: dict, paths: list[str], channel, campaign, vendor: str) -> dict:
    """Loa's server and applier, the load, the wait for every event applied, its figures."""
    port = common.free_port()
    env = {**env, "PORT": str(port)}
    web = start_web(args, env, port)
    cluster = common.start_qcluster(env)
    spies: list[subprocess.Popen] = []
    try:
        common.wait_for_port(port, tries=100, pause=0.2)
        time.sleep(1)
        meter = CpuMeter({"web": web.pid, "applier": cluster.pid})
        if args.profile:
            spies = profilers_start(web, cluster)
        meter.start()
        latencies, errors, statuses, elapsed, load_cpu = run_load(args, port, paths)
        events_applied_wait()
        cpu = meter.stop()
    finally:
        for spy in spies:
            spy.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
            spy.wait(timeout=60)
        for proc in (web, cluster):
            common.stop_process_group(proc)
    out = report_load("webhook", latencies, elapsed, cpu, load_cpu, vendor)
    report_lost(
        channel,
        campaign,
        sent=len(paths),
        messages=args.messages,
        errors=errors,
        statuses=statuses,
    )
    return out


def tables_vacuum() -> None:
    """VACUUM ANALYZE the tables the rounds write, before each round (outside the measured
    window). This machine's PostgreSQL runs with autovacuum off: without this, each run inherited
    the dead rows of every earlier one (870,000 in campaigns_message after a dozen runs) and its
    PostgreSQL CPU per callback grew from run to run."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cur:
        for table in ("webhooks_webhookevent", "campaigns_message", "campaigns_campaign"):
            cur.execute(f"VACUUM ANALYZE {table}")


def main() -> None:
    args = parse_args()
    env = {"LOG_LEVEL": "WARNING", "DEBUG": "false"}
    if args.database_url:
        env["DATABASE_URL"] = args.database_url
    common.setup_django(env)
    vendor = common.migrate_and_clear_queue()
    (ROOT / "tmp").mkdir(exist_ok=True)
    common.machine_speed()
    servers_env = server_env(args, 0)
    ratios, loa_cpu = [], []
    for _round in range(args.rounds):
        tables_vacuum()
        channel, campaign = sent_campaign(args.messages)
        paths = callback_paths(campaign, channel.account.webhook_token, args.duplicates)
        anchor = None if args.no_anchor else anchor_round(args, servers_env, paths, vendor)
        loa = loa_round(args, servers_env, paths, channel, campaign, vendor)
        loa_cpu.append(loa["cpu"])
        if anchor:
            ratios.append(loa["p99"] / anchor["p99"])
            common.figure(
                "webhook_p99_over_anchor",
                round(ratios[-1], 2),
                "x",
                "<=1.5",
                ratios[-1] <= 1.5,
                loa_p99_ms=round(loa["p99"], 1),
                anchor_p99_ms=round(anchor["p99"], 1),
            )
    if args.rounds > 1:
        med = statistics.median(loa_cpu)
        common.figure(
            "webhook_cpu_ms_per_callback_median",
            med,
            "ms",
            "<=0.8",
            med <= 0.8,
            range=f"{min(loa_cpu)}-{max(loa_cpu)}",
        )
        if ratios:
            med = statistics.median(ratios)
            common.figure(
                "webhook_p99_over_anchor_median",
                round(med, 2),
                "x",
                "<=1.5",
                med <= 1.5,
                range=f"{min(ratios):.2f}-{max(ratios):.2f}",
            )


if __name__ == "__main__":
    main()
