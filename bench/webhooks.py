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
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


sys.path.insert(1, str(ROOT / "bench"))
from send_campaign import cpu_seconds, figure, free_port, machine_speed  # noqa: E402  (one FIGURE printer for the benchmarks)


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
        "web": cpu_seconds(pgid=web_pid),
        "applier": cpu_seconds(pgid=cluster_pid),
        "postgres": cpu_seconds(comm="postgres"),
        "load_generator": os.times().children_user + os.times().children_system,
    }


def main() -> None:
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
    if args.database_url:
        os.environ["DATABASE_URL"] = args.database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ["LOG_LEVEL"] = "WARNING"
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    from django_q.models import OrmQ

    # Tasks an earlier run left queued in this bench database (its cluster was stopped with
    # work pending) would run first and skew the figures.
    OrmQ.objects.all().delete()
    vendor = connection.vendor
    from send_campaign import make_contacts, new_campaign, setup_channel

    from campaigns import services
    from campaigns.models import Campaign, Message
    from webhooks.models import WebhookEvent

    channel, template = setup_channel("http://127.0.0.1:9")  # never called: messages are pre-sent
    list_id = make_contacts(args.messages)
    campaign = new_campaign(channel, template, list_id)
    services.campaign_transition(campaign_id=campaign.pk, to=Campaign.Status.RUNNING, note="bench")
    services.campaign_materialize(campaign_id=campaign.pk)
    # As after a send: every message accepted by eSMS with an SMSID.
    with connection.cursor() as cur:
        cur.execute(
            "UPDATE campaigns_message SET status = 'sent', provider_message_id = 'sms-' || id "
            "WHERE campaign_id = %s",
            [campaign.pk],
        )
    Campaign.objects.filter(pk=campaign.pk).update(sent_count=args.messages, status="completed")
    token = channel.account.webhook_token
    rows = list(
        Message.objects.filter(campaign=campaign).values_list(
            "provider_message_id", "idempotency_key", "phone"
        )
    )
    paths = []
    for smsid, key, phone in rows:
        q = {
            "SMSID": smsid,
            "SendFailed": "0",
            "SendStatus": "5",
            "SendSuccess": "1",
            "TotalPrice": "300.0000",
            "TotalReceiver": "1",
            "TotalSent": "1",
            "RequestId": key,
            "TypeId": "25",
            "telcoid": "2",
            "phonenumber": "0" + phone[2:],
            "partnerids": "z" + smsid,
            "error_info": '{"error":0,"message":"Success","data":{"delivery_time":null,"status":1}}',
        }
        paths.append(f"/webhooks/{token}/?{urlencode(q)}")
    n_dupes = int(len(paths) * args.duplicates)
    paths = paths + paths[:n_dupes]
    import random

    random.Random(1).shuffle(paths)

    machine_speed()
    port = free_port()
    (ROOT / "tmp").mkdir(exist_ok=True)
    env = {
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
    web = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=open(ROOT / "tmp" / "bench-web.log", "wb"),  # noqa: SIM115 - lives as long as the server
        stderr=subprocess.STDOUT,
    )
    cluster = subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.2)
        time.sleep(1)
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
        if not latencies:
            raise SystemExit(
                f"no request succeeded: {errors} connection errors, statuses {statuses}"
            )
        rate = len(latencies) / elapsed
        p50 = latencies[len(latencies) // 2] * 1000
        p99 = latencies[int(len(latencies) * 0.99)] * 1000
        figure(
            "webhook_callbacks_per_s",
            round(rate, 1),
            "req/s",
            ">=1000",
            rate >= 1000,
            size=len(paths),
            db=vendor,
        )
        figure("webhook_p50_ms", round(p50, 1), "ms", "-", None, db=vendor)
        # Where the two cores went during the load, per request (the applier keeps running
        # after the load for what is still queued; that part is not in these numbers).
        figure(
            "webhook_cpu_ms_per_request",
            round(sum(cpu.values()) / len(latencies) * 1000, 3),
            "ms",
            "-",
            None,
            **{k: round(v / len(latencies) * 1000, 3) for k, v in cpu.items()},
        )
        figure("webhook_p99_ms", round(p99, 1), "ms", "<100", p99 < 100, db=vendor)
        # wait for the applier, then count
        deadline = time.monotonic() + 300
        while (
            time.monotonic() < deadline and WebhookEvent.objects.filter(outcome="received").exists()
        ):
            time.sleep(1)
        stored = WebhookEvent.objects.filter(account=channel.account).count()
        applied = WebhookEvent.objects.filter(account=channel.account, outcome="applied").count()
        dup = WebhookEvent.objects.filter(account=channel.account, outcome="duplicate").count()
        delivered = Message.objects.filter(campaign=campaign, status="delivered").count()
        c = Campaign.objects.get(pk=campaign.pk)
        lost = (
            (len(paths) - stored) + (args.messages - delivered) + abs(c.delivered_count - delivered)
        )
        figure(
            "webhook_lost",
            lost,
            "-",
            "==0",
            lost == 0,
            sent=len(paths),
            stored=stored,
            applied=applied,
            duplicates=dup,
            delivered=delivered,
            counter=c.delivered_count,
            http_errors=errors,
            statuses="/".join(f"{k}:{v}" for k, v in sorted(statuses.items())),
        )
    finally:
        for proc in (web, cluster):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)


if __name__ == "__main__":
    main()
