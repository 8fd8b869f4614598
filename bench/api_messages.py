"""Transactional API benchmark: POST /api/v1/messages accepted per second and its latency, and
the time from the 202 to the provider's HTTP call while a big campaign fills the account's rate.

    python bench/api_messages.py --database-url postgres://postgres@127.0.0.1:5432/loa_bench
    python bench/api_messages.py --quick

1. Intake: gunicorn (config/gunicorn.conf.py, the web role) in front of config.wsgi; a load
   generator on the same machine (separate processes, keep-alive connections, one selector loop
   each) POSTs R distinct messages (distinct phones, a ZNS template) as fast as the server
   answers. Reports req/s, p50/p99, and that every answer was a 202 and each made its message.
   No worker cluster runs during this part: it measures intake (the web role and PostgreSQL);
   the drivers those messages queued are dropped afterwards.
2. Priority: a campaign of C messages on an eSMS account limited to --rate messages/s starts
   sending through a real qcluster against the local fake provider (bench/fake_provider); once
   it sends at the rate, N API messages are POSTed one every --api-every seconds, and for each the
   time from its 202 to the fake provider receiving its call is measured (the fake notes the time
   of every call by idempotency key). Reports p50/p95/max; the campaign's own achieved rate too.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as `python bench/api_messages.py`: the project importable

from bench import _common as common  # noqa: E402 (after the path above)
from bench._fixtures import make_contacts, new_campaign, setup_channel  # noqa: E402


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Transactional API benchmark")
    p.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""))
    p.add_argument("--requests", type=int, default=20_000, help="POSTs in the intake run")
    p.add_argument("--clients", type=int, default=2, help="load generator processes")
    p.add_argument("--conns", type=int, default=16, help="connections per load process")
    p.add_argument("--web-workers", type=int, default=3)
    p.add_argument("--web-threads", type=int, default=4)
    p.add_argument("--campaign", type=int, default=100_000, help="messages of the big campaign")
    p.add_argument("--rate", type=float, default=100.0, help="the account's rate (msg/s)")
    p.add_argument("--api-messages", type=int, default=60)
    p.add_argument("--api-every", type=float, default=0.5, help="seconds between API messages")
    p.add_argument("--q-workers", type=int, default=3, help="qcluster workers (priority run)")
    p.add_argument("--skip-intake", action="store_true")
    p.add_argument("--skip-priority", action="store_true")
    p.add_argument("--quick", action="store_true", help="3,000 POSTs; a 20,000-message campaign")
    args = p.parse_args()
    if args.quick:
        args.requests, args.campaign, args.api_messages = 3_000, 20_000, 30
    return args


# ---- the load generator -------------------------------------------------------------------------


def _client(job):
    """One load process: `conns` keep-alive connections, each sending its next POST as soon as
    the previous answer is in (a lean client: http.client's header parsing would take CPU from
    the server under test)."""
    import selectors

    port, bodies, conns, token = job
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    todo = list(reversed(bodies))
    sel = selectors.DefaultSelector()

    def send(state):
        body = todo.pop()
        state.update(buf=b"", t0=time.perf_counter())
        head = (
            f"POST /api/v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        state["sock"].sendall(head.encode() + body)

    for _ in range(min(conns, len(todo))):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        state = {"sock": sock}
        sel.register(sock, selectors.EVENT_READ, state)
        send(state)
    while sel.get_map():
        for key, _mask in sel.select(timeout=60):
            state = key.data
            chunk = state["sock"].recv(65536)
            if not chunk:
                raise SystemExit("the server closed a connection")
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
    return latencies, statuses


def api_key() -> str:
    from campaigns.api.keys import key_create
    from campaigns.api.models import ApiApplication, ApiKey

    app = ApiApplication.objects.create(name=f"bench-{time.time_ns()}")
    _key, raw = key_create(application=app, name="bench", scopes=list(ApiKey.Scope.values))
    return raw


def server_env(args, port: int) -> dict:
    return {
        **os.environ,
        "PORT": str(port),
        "WEB_CONCURRENCY": str(args.web_workers),
        "GUNICORN_THREADS": str(args.web_threads),
        "GUNICORN_ACCESS_LOG": "/dev/null",
        "GUNICORN_MAX_REQUESTS": "0",
        "LOG_LEVEL": "warning",
        "Q_WORKERS": str(args.q_workers),
        "Q_LOG_LEVEL": "ERROR",
        "ALLOWED_HOSTS": "127.0.0.1",
        "LOA_API_KEY_RATE": "0",  # the benchmark measures the server, not the per-key limit
        "LOA_ALLOW_HTTP_PROVIDER_URLS": "true",
    }


def start_web(env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "-c",
            "config/gunicorn.conf.py",
            "config.wsgi:application",
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=open(ROOT / "tmp" / "bench-api-web.log", "wb"),  # noqa: SIM115 - lives with the server
        stderr=subprocess.STDOUT,
    )


def intake(args, vendor: str) -> None:
    from django_q.models import OrmQ

    from campaigns.api.models import ApiMessage

    _channel, template = setup_channel("http://127.0.0.1:9")  # no worker sends in this part
    token = api_key()
    bodies = [
        json.dumps(
            {
                "template_id": template.pk,
                "phone": f"09{i % 100_000_000:08d}",
                "params": {"customer_name": f"Nguyen Van {i}", "order_code": f"DH{i}"},
                "client_reference": f"bench-{i}",
            }
        ).encode()
        for i in range(args.requests)
    ]
    port = common.free_port()
    env = server_env(args, port)
    web = start_web(env)
    try:
        common.wait_for_port(port, tries=150, pause=0.2)
        time.sleep(1.5)
        # Warm every worker (imports, first queries) before the clock starts.
        with mp.get_context("fork").Pool(1) as pool:
            pool.map(_client, [(port, bodies[:50], 8, token)])
        bodies = bodies[50:]
        cpu0 = common.cpu_seconds(pgid=web.pid), common.cpu_seconds(comm="postgres")
        t0 = time.perf_counter()
        shares = [bodies[i :: args.clients] for i in range(args.clients)]
        with mp.get_context("fork").Pool(args.clients) as pool:
            results = pool.map(_client, [(port, s, args.conns, token) for s in shares])
        elapsed = time.perf_counter() - t0
        cpu_web = common.cpu_seconds(pgid=web.pid) - cpu0[0]
        cpu_pg = common.cpu_seconds(comm="postgres") - cpu0[1]
    finally:
        common.stop_process_group(web)
    latencies = sorted(x for r in results for x in r[0])
    statuses: dict[int, int] = {}
    for r in results:
        for k, v in r[1].items():
            statuses[k] = statuses.get(k, 0) + v
    n = len(latencies)
    rate = n / elapsed
    p50, p99 = latencies[n // 2] * 1000, latencies[int(n * 0.99)] * 1000
    made = ApiMessage.objects.filter(client_reference__startswith="bench-").count()
    common.figure("api_accepted_per_s", round(rate, 1), "req/s", ">=500", rate >= 500, db=vendor)
    common.figure("api_p50_ms", round(p50, 1), "ms", "-", None, db=vendor)
    common.figure("api_p99_ms", round(p99, 1), "ms", "<50", p99 < 50, db=vendor)
    common.figure(
        "api_cpu_ms_per_request",
        round((cpu_web + cpu_pg) / n * 1000, 2),
        "ms",
        "-",
        None,
        web=round(cpu_web / n * 1000, 2),
        postgres=round(cpu_pg / n * 1000, 2),
    )
    refused = n - statuses.get(202, 0)
    common.figure(
        "api_not_accepted",
        refused,
        "-",
        "==0",
        refused == 0,
        statuses="/".join(f"{k}:{v}" for k, v in sorted(statuses.items())),
        messages_made=made,
    )
    OrmQ.objects.all().delete()  # the drivers this part queued: no cluster ran, none is sent
    retire_leftovers()


def retire_leftovers() -> None:
    """Cancel what earlier runs left running in this bench database (the intake's thousands of
    one-message campaigns, whose drivers were dropped): the every-minute tick would otherwise
    restart their drivers in front of the ones measured."""
    from campaigns.models import Campaign, Message

    live = Campaign.objects.filter(status__in=["running", "settling", "paused", "scheduled"])
    Message.objects.filter(campaign__in=live, status__in=["pending", "unknown"]).update(
        status="cancelled"
    )
    live.update(status="cancelled")


# ---- priority under a full rate -----------------------------------------------------------------


def priority(args, vendor: str) -> None:
    from django.db import close_old_connections

    from bench.fake_provider import FakeProviders
    from campaigns.api.models import ApiMessage
    from campaigns.models import Campaign, Message
    from providers.models import ProviderAccount

    retire_leftovers()
    fake = FakeProviders(latency_ms=20, callbacks=False).start()
    called: dict[str, float] = {}
    note = fake.note

    def timed_note(provider, key, *a, **kw):
        if key:
            called.setdefault(key, time.time())
        return note(provider, key, *a, **kw)

    fake.note = timed_note
    channel, template = setup_channel(fake.base_url)
    ProviderAccount.objects.filter(pk=channel.account_id).update(rate_limit=args.rate)
    list_id = make_contacts(args.campaign)
    campaign = new_campaign(channel, template, list_id)
    token = api_key()
    port = common.free_port()
    env = server_env(args, port)
    web = start_web(env)
    cluster = common.start_qcluster(env)
    try:
        common.wait_for_port(port, tries=150, pause=0.2)
        t_start = time.time()
        from campaigns.engine.dispatch import campaign_start_drivers
        from campaigns.engine.lifecycle import campaign_transition
        from campaigns.engine.materialize import campaign_materialize

        campaign_transition(campaign_id=campaign.pk, to=Campaign.Status.RUNNING, note="bench")
        campaign_materialize(campaign_id=campaign.pk)
        campaign_start_drivers(campaign_id=campaign.pk)
        # Until the campaign sends at its rate (the account's rate minus the API's share).
        deadline = time.time() + 120
        while time.time() < deadline:
            if Campaign.objects.get(pk=campaign.pk).sent_count > args.rate * 3:
                break
            time.sleep(0.5)
        sent0, t0 = Campaign.objects.get(pk=campaign.pk).sent_count, time.time()
        import requests

        s = requests.Session()
        s.headers["Authorization"] = f"Bearer {token}"
        accepted: list[tuple[int, float]] = []
        for i in range(args.api_messages):
            r = s.post(
                f"http://127.0.0.1:{port}/api/v1/messages",
                json={
                    "template_id": template.pk,
                    "phone": f"0987{i:06d}",
                    "params": {"customer_name": "API", "order_code": f"API{i}"},
                },
                timeout=30,
            )
            if r.status_code == 202:
                accepted.append((r.json()["id"], time.time()))
            time.sleep(args.api_every)
        # Wait for their calls.
        end = time.time() + 60
        keys = {}
        while time.time() < end:
            close_old_connections()
            keys = dict(
                ApiMessage.objects.filter(pk__in=[a for a, _t in accepted]).values_list(
                    "pk", "message__idempotency_key"
                )
            )
            if all(keys.get(a) in called for a, _t in accepted):
                break
            time.sleep(0.5)
        sent1, t1 = Campaign.objects.get(pk=campaign.pk).sent_count, time.time()
    finally:
        for proc in (web, cluster):
            common.stop_process_group(proc)
        fake.stop()
    waits = sorted(called[keys[a]] - t for a, t in accepted if keys.get(a) in called)
    missing = len(accepted) - len(waits)
    campaign_rate = (sent1 - sent0) / (t1 - t0)
    common.figure(
        "api_202_to_provider_p95_s",
        round(waits[int(len(waits) * 0.95) - 1], 3) if waits else 999,
        "s",
        "<2",
        bool(waits) and waits[int(len(waits) * 0.95) - 1] < 2 and not missing,
        p50=round(waits[len(waits) // 2], 3) if waits else "-",
        max=round(waits[-1], 3) if waits else "-",
        api_messages=len(accepted),
        never_called=missing,
        campaign=args.campaign,
        db=vendor,
    )
    common.figure(
        "campaign_rate_during_api_msg_per_s",
        round(campaign_rate, 1),
        "msg/s",
        f"<={args.rate}",
        campaign_rate <= args.rate * 1.02,
        account_rate=args.rate,
        campaign_pending=Message.objects.filter(campaign=campaign, status="pending").count(),
        materialize_and_start_s=round(t0 - t_start, 1),
    )


def main() -> None:
    args = parse_args()
    env = {"LOG_LEVEL": "WARNING", "LOA_ALLOW_HTTP_PROVIDER_URLS": "true"}
    if args.database_url:
        env["DATABASE_URL"] = args.database_url
    common.setup_django(env)
    vendor = common.migrate_and_clear_queue()
    (ROOT / "tmp").mkdir(exist_ok=True)
    common.machine_speed()
    common.figure("machine_load_1min", round(os.getloadavg()[0], 2), "-", "-", None)
    if not args.skip_intake:
        intake(args, vendor)
    if not args.skip_priority:
        priority(args, vendor)
    threading.Event().wait(0)


if __name__ == "__main__":
    main()
