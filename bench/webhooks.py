"""Webhook intake benchmark: status callbacks per second through the real server, latency, and
zero lost.

    python bench/webhooks.py --database-url postgres://postgres@127.0.0.1:5432/loa_bench
    python bench/webhooks.py --quick

It creates a campaign of M messages already accepted by eSMS, starts gunicorn (config/
gunicorn.conf.py) and one qcluster (which applies the stored events in batches), then a load
generator on the same machine (separate processes, keep-alive connections) sends each message's
eSMS GET callback, plus a share of exact duplicates, as fast as the server answers. It reports
the sustained rate and p50/p99 latency, waits for every event to be applied, and checks that the
database holds exactly what was sent: one stored event per request, one delivered status per
message, counters equal to the rows.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import socket
import subprocess
import sys
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


def _cpu_by_role(web_pid: int, cluster_pid: int) -> dict[str, float]:
    """CPU seconds so far of the web server, the worker cluster, PostgreSQL and the load
    generator (this process's reaped children: the client pool once it has ended)."""
    return {
        "web": common.cpu_seconds(pgid=web_pid),
        "applier": common.cpu_seconds(pgid=cluster_pid),
        "postgres": common.cpu_seconds(comm="postgres"),
        "load_generator": os.times().children_user + os.times().children_system,
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Webhook intake benchmark")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""))
    parser.add_argument("--messages", type=int, default=30_000)
    parser.add_argument(
        "--duplicates", type=float, default=0.1, help="share of callbacks sent twice"
    )
    parser.add_argument("--clients", type=int, default=2, help="load generator processes")
    parser.add_argument("--threads", type=int, default=16, help="connections per load process")
    # The webhooks role as docs/OPERATIONS.md sizes it for two cores.
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--web-threads", type=int, default=16)
    parser.add_argument(
        "--server",
        choices=("granian", "gunicorn"),
        default="granian",
        help="the web server in front of config.wsgi (docs/OPERATIONS.md: the webhooks role)",
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


def start_web(args: argparse.Namespace, env: dict, port: int) -> subprocess.Popen:
    """The web server (granian or gunicorn) in front of config.wsgi, its log in tmp/."""
    bindir = Path(sys.executable).parent
    if args.server == "gunicorn":
        command = [
            str(bindir / "gunicorn"),
            "-c",
            "config/gunicorn.conf.py",
            "config.wsgi:application",
        ]
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
            "config.wsgi:application",
        ]
    return subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=open(ROOT / "tmp" / "bench-web.log", "wb"),  # noqa: SIM115 - lives as long as the server
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
    }


def run_load(args: argparse.Namespace, port: int, paths: list[str], web, cluster):
    """Every path sent by the load processes. Returns (latencies sorted, connection errors,
    HTTP statuses counted, elapsed s, CPU s per role during the load)."""
    shares = [paths[i :: args.clients] for i in range(args.clients)]
    cpu0 = _cpu_by_role(web.pid, cluster.pid)
    t0 = time.perf_counter()
    with mp.get_context("fork").Pool(args.clients) as pool:
        results = pool.map(_client, [(port, share, args.threads) for share in shares])
    elapsed = time.perf_counter() - t0
    cpu = {k: v - cpu0[k] for k, v in _cpu_by_role(web.pid, cluster.pid).items()}
    latencies = sorted(x for r in results for x in r[0])
    errors = sum(r[1] for r in results)
    statuses: dict[int, int] = {}
    for r in results:
        for k, v in r[2].items():
            statuses[k] = statuses.get(k, 0) + v
    return latencies, errors, statuses, elapsed, cpu


def report_load(latencies, elapsed: float, cpu: dict, size: int, vendor: str) -> None:
    """The rate, the latencies, and where the CPU went per request."""
    rate = len(latencies) / elapsed
    p50 = latencies[len(latencies) // 2] * 1000
    p99 = latencies[int(len(latencies) * 0.99)] * 1000
    common.figure(
        "webhook_callbacks_per_s",
        round(rate, 1),
        "req/s",
        ">=1000",
        rate >= 1000,
        size=size,
        db=vendor,
    )
    common.figure("webhook_p50_ms", round(p50, 1), "ms", "-", None, db=vendor)
    # Where the two cores went during the load, per request (the applier keeps running
    # after the load for what is still queued; that part is not in these numbers).
    common.figure(
        "webhook_cpu_ms_per_request",
        round(sum(cpu.values()) / len(latencies) * 1000, 3),
        "ms",
        "-",
        None,
        **{k: round(v / len(latencies) * 1000, 3) for k, v in cpu.items()},
    )
    common.figure("webhook_p99_ms", round(p99, 1), "ms", "<100", p99 < 100, db=vendor)


def report_lost(channel, campaign, *, sent: int, messages: int, errors: int, statuses) -> None:
    """Wait for the applier, then check the database holds exactly what was sent."""
    from campaigns.models import Campaign, Message
    from webhooks.models import WebhookEvent

    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and WebhookEvent.objects.filter(outcome="received").exists():
        time.sleep(1)
    stored = WebhookEvent.objects.filter(account=channel.account).count()
    applied = WebhookEvent.objects.filter(account=channel.account, outcome="applied").count()
    dup = WebhookEvent.objects.filter(account=channel.account, outcome="duplicate").count()
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


def main() -> None:
    args = parse_args()
    env = {"LOG_LEVEL": "WARNING"}
    if args.database_url:
        env["DATABASE_URL"] = args.database_url
    common.setup_django(env)
    vendor = common.migrate_and_clear_queue()
    channel, campaign = sent_campaign(args.messages)
    paths = callback_paths(campaign, channel.account.webhook_token, args.duplicates)

    common.machine_speed()
    port = common.free_port()
    (ROOT / "tmp").mkdir(exist_ok=True)
    servers_env = server_env(args, port)
    web = start_web(args, servers_env, port)
    cluster = common.start_qcluster(servers_env)
    try:
        common.wait_for_port(port, tries=100, pause=0.2)
        time.sleep(1)
        latencies, errors, statuses, elapsed, cpu = run_load(args, port, paths, web, cluster)
        if not latencies:
            raise SystemExit(
                f"no request succeeded: {errors} connection errors, statuses {statuses}"
            )
        report_load(latencies, elapsed, cpu, len(paths), vendor)
        report_lost(
            channel,
            campaign,
            sent=len(paths),
            messages=args.messages,
            errors=errors,
            statuses=statuses,
        )
    finally:
        for proc in (web, cluster):
            common.stop_process_group(proc)


if __name__ == "__main__":
    main()
