"""Transactional API benchmark: POST /api/v1/messages accepted per second and its latency, and
the time from the 202 to the provider's HTTP call while a big campaign fills the account's rate.

    python bench/api_messages.py --database-url postgres://postgres@127.0.0.1:5432/loa_bench
    python bench/api_messages.py --quick

1. Intake: gunicorn (config/gunicorn.conf.py, the web role) in front of config.wsgi; wrk on the
   same machine (1 thread, 16 keep-alive connections: see intake()) POSTs distinct messages
   (distinct phones, a ZNS template) for --seconds. Reports req/s, p50/p99 (wrk's), the machine's
   load before and after, CPU per request (web and PostgreSQL), and that every answer was a 2xx
   and wrote its intake row. No worker cluster runs during this part: it measures intake (the
   web role and PostgreSQL); the intake worker then makes the rows into messages in-process
   (its rate printed too), and the drivers those messages queued are dropped afterwards.
2. Priority: a campaign of C messages on an eSMS account limited to --rate messages/s starts
   sending through a real qcluster against the local fake provider (bench/fake_provider); once
   it sends at the rate, N API messages are POSTed one every --api-every seconds, and for each the
   time from its 202 to the fake provider receiving its call is measured (the fake notes the time
   of every call by idempotency key). Reports p50/p95/max; the campaign's own achieved rate too.
"""

from __future__ import annotations

import argparse
import os
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
    p.add_argument("--seconds", type=int, default=20, help="length of the wrk run")
    p.add_argument("--wrk-threads", type=int, default=1)
    p.add_argument("--wrk-conns", type=int, default=16)
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
        args.seconds, args.campaign, args.api_messages = 8, 20_000, 30
    return args


# ---- the load generator -------------------------------------------------------------------------


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
        # As deployed: DEBUG (this checkout's default outside production) keeps every query's
        # text and time per request, which is not what a server does.
        "DEBUG": "false",
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


WRK_SCRIPT = """
-- Each request a distinct phone and client reference (a counter per wrk thread, the thread's
-- number in the high digits), so every POST is a new message, never a replay. Phones 037…: never
-- one of make_contacts' 849… (the priority run's campaign), so both parts share a database.
local counter = 0
local threads = {}
function setup(thread) thread:set("tid", #threads); table.insert(threads, thread) end
function init(args) tid = tonumber(tid) or 0 end  -- a global: setup() set it in this thread
request = function()
  counter = counter + 1
  local n = tid * 10000000 + counter
  local body = string.format(
    '{"template_id":%d,"phone":"037%07d","params":{"customer_name":"Nguyen Van %d",' ..
    '"order_code":"DH%d"},"client_reference":"bench-%d-%d"}', TEMPLATE, n % 10000000, n, n,
    RUN, n)
  return wrk.format("POST", "/api/v1/messages", {
    ["Authorization"] = "Bearer " .. TOKEN,
    ["Content-Type"] = "application/json"}, body)
end
"""


def _wrk(port: int, token: str, template_id: int, run: int, args, seconds: float) -> dict:
    script = ROOT / "tmp" / "bench-api-wrk.lua"
    script.write_text(f'TOKEN = "{token}"\nTEMPLATE = {template_id}\nRUN = {run}\n' + WRK_SCRIPT)
    out = subprocess.run(
        [
            "wrk",
            f"-t{args.wrk_threads}",
            f"-c{args.wrk_conns}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return _wrk_parse(out)


def _ms(text: str) -> float:
    for unit, factor in (("us", 0.001), ("ms", 1.0), ("s", 1000.0), ("m", 60000.0)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * factor
    return float(text)


def _wrk_parse(out: str) -> dict:
    import re

    got = {"non_2xx": 0, "errors": ""}
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("Requests/sec:"):
            got["rate"] = float(line.split()[1])
        elif re.match(r"^(50|99)(\.\d+)?%\s", line):
            pct, value = line.split()[:2]
            got[f"p{pct.rstrip('%').split('.')[0]}"] = _ms(value)
        elif "requests in" in line:
            got["requests"] = int(line.split()[0])
        elif line.startswith("Non-2xx or 3xx responses:"):
            got["non_2xx"] = int(line.split()[-1])
        elif line.startswith("Socket errors:"):
            got["errors"] = line
    return got


def _backends_cpu(dbname: str) -> dict[int, float]:
    """CPU seconds of each PostgreSQL backend serving `dbname` (its process title names the
    database): this run's own PostgreSQL work, not the other databases' on a shared server."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            title = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            if not title.startswith("postgres:") or f" {dbname} " not in title:
                continue
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        out[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
    return out


def intake(args, vendor: str) -> None:
    """POST /api/v1/messages with wrk (the load generator on the same machine): one wrk thread
    (an event loop needs no more at these rates, and every core it takes is taken from the
    server) with --wrk-conns keep-alive connections (16: a little more than the server's 3 x 4
    request threads, so none idles, not so many that p99 measures wrk's own queue). No worker
    cluster runs: this measures intake (gunicorn + PostgreSQL); the intake worker's own rate is
    measured afterwards, in-process, on the rows the run wrote."""
    from django.db import connection

    from campaigns.api.intake import intake_process
    from campaigns.api.models import ApiIntake

    _channel, template = setup_channel("http://127.0.0.1:9")  # no worker sends in this part
    token = api_key()
    port = common.free_port()
    env = server_env(args, port)
    web = start_web(env)
    run = int(time.time()) % 100000
    try:
        common.wait_for_port(port, tries=150, pause=0.2)
        time.sleep(1.5)
        # Warm every worker (imports, caches, first queries) before the clock starts.
        _wrk(port, token, template.pk, run, args, 3)
        rows0 = ApiIntake.objects.count()
        load0 = os.getloadavg()[0]
        dbname = connection.settings_dict["NAME"]
        cpu0 = common.cpu_seconds(pgid=web.pid), _backends_cpu(dbname)
        got = _wrk(port, token, template.pk, run + 1, args, args.seconds)
        cpu_web = common.cpu_seconds(pgid=web.pid) - cpu0[0]
        cpu_pg = sum(t - cpu0[1].get(pid, 0.0) for pid, t in _backends_cpu(dbname).items())
        load1 = os.getloadavg()[0]
    finally:
        common.stop_process_group(web)
    n = got["requests"]
    rows = ApiIntake.objects.count() - rows0
    rate, p50, p99 = got["rate"], got["p50"], got["p99"]
    common.figure(
        "api_accepted_per_s",
        round(rate, 1),
        "req/s",
        ">=500",
        rate >= 500 and got["non_2xx"] == 0,
        db=vendor,
        wrk=f"t{args.wrk_threads}c{args.wrk_conns}d{args.seconds}",
        load_before=round(load0, 2),
        load_after=round(load1, 2),
    )
    common.figure("api_p50_ms", round(p50, 2), "ms", "-", None, db=vendor)
    common.figure("api_p99_ms", round(p99, 2), "ms", "<50", p99 < 50, db=vendor)
    common.figure(
        "api_cpu_ms_per_request",
        round((cpu_web + cpu_pg) / n * 1000, 2),
        "ms",
        "-",
        None,
        web=round(cpu_web / n * 1000, 2),
        postgres=round(cpu_pg / n * 1000, 2),
    )
    common.figure(
        "api_not_accepted",
        got["non_2xx"],
        "-",
        "==0",
        got["non_2xx"] == 0,
        requests=n,
        intake_rows=rows,
        socket_errors=got["errors"] or "none",
    )
    # The worker's side: the rows this run wrote made into campaigns + messages, in-process.
    t0, c0 = time.perf_counter(), time.process_time()
    made = 0
    while made < rows:
        k = intake_process()
        if not k:
            break
        made += k
    wall = time.perf_counter() - t0
    common.figure(
        "api_intake_worker_rows_per_s",
        round(made / wall, 1) if wall else 0,
        "rows/s",
        "-",
        None,
        rows=made,
        process_cpu_ms_per_row=round((time.process_time() - c0) / max(made, 1) * 1000, 2),
        load=round(os.getloadavg()[0], 2),
    )
    from django_q.models import OrmQ

    OrmQ.objects.all().delete()  # the drivers and kicks this part queued: no cluster ran
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
