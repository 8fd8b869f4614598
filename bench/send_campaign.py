"""Campaign engine benchmark: materialization, sustained send rate, worker CPU per message, and
rate-limit accuracy, against the local fake provider over real HTTP.

    python bench/send_campaign.py --database-url postgres://postgres@127.0.0.1:5432/loa_bench
    python bench/send_campaign.py --quick

What it does (issue 9's figures):
1. creates N contacts in one list (set-based SQL), then times `campaign_materialize` for them;
2. starts bench/fake_provider/ (its own process, 50 ms latency, no callbacks) and one qcluster
   with 2 workers, sends a campaign of S messages through the eSMS adapter, and reports the rate
   sustained between 10% and 90% of the campaign, plus the workers' user+sys CPU per message;
3. sends a rate-limited campaign (R/s) and checks the achieved rate against R and the busiest
   10-second window against R (from each message's send time).
Every contact must get exactly one provider call (the fake server counts calls per RequestId).

    python bench/send_campaign.py --fallback [--messages 4000]

    python bench/send_campaign.py --compare [--messages 20000 --rounds 3]

5. (issue 22) only this comparison: Loa's workers' CPU per message (one qcluster, 2 workers)
   beside the anchor a user would otherwise write, a bare `requests.Session` + thread pool in
   2 processes posting the same eSMS request, alternated `--rounds` times against one fake
   provider (50 ms); each side's CPU per message, their ratio, and the fake's own CPU per
   request (this machine's ceiling: the fake shares the 2 cores).

4. (issue 19) only this comparison: a campaign with a fallback chain, ZNS (eTelecom) -> SMS (VNA
   MMP), where the fake answers Zalo -118 to 20% of recipients (who fall back), side by side
   with the same campaign without a chain (the same 20% just fail), alternated twice on one
   qcluster; the workers' CPU per message of each, and their ratio (target: the chain adds
   at most 10% per message).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as `python bench/send_campaign.py`: the project importable

from bench import _common as common  # noqa: E402 (after the path above)
from bench._fixtures import make_contacts, new_campaign, setup_channel  # noqa: E402


def start(campaign_id: int) -> None:
    from campaigns.engine.dispatch import campaign_start_drivers
    from campaigns.engine.lifecycle import campaign_transition
    from campaigns.engine.materialize import campaign_materialize
    from campaigns.models import Campaign

    campaign_transition(campaign_id=campaign_id, to=Campaign.Status.RUNNING, note="bench")
    campaign_materialize(campaign_id=campaign_id)
    campaign_start_drivers(campaign_id=campaign_id)


def wait_sent(campaign_id: int, total: int, timeout: float) -> list[tuple[float, int]]:
    from campaigns.models import Campaign

    samples = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        c = (
            Campaign.objects.filter(pk=campaign_id)
            .values("sent_count", "failed_count", "unknown_count", "status")
            .first()
        )
        done = c["sent_count"] + c["failed_count"] + max(0, c["unknown_count"])
        samples.append((time.monotonic(), done))
        if done >= total or c["status"] in ("paused", "cancelled", "failed"):
            break
        time.sleep(0.5)
    return samples


def sustained_rate(samples: list[tuple[float, int]], total: int) -> float:
    lo, hi = total * 0.1, total * 0.9
    t_lo = next((t for t, n in samples if n >= lo), None)
    t_hi = next((t for t, n in samples if n >= hi), None)
    if t_lo is None or t_hi is None or t_hi <= t_lo:
        return 0.0
    return (hi - lo) / (t_hi - t_lo)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Campaign engine benchmark")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""))
    parser.add_argument("--contacts", type=int, default=1_000_000, help="contacts to materialize")
    parser.add_argument(
        "--messages", type=int, default=60_000, help="messages in the send-rate run"
    )
    parser.add_argument(
        "--rate", type=float, default=100.0, help="rate limit for the accuracy run (msg/s)"
    )
    parser.add_argument(
        "--rate-seconds", type=float, default=40.0, help="length of the rate-limit run"
    )
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--concurrency", type=int, default=40, help="in-flight requests per driver")
    parser.add_argument(
        "--quick", action="store_true", help="100k materialized, 20k sent, 20 s limited"
    )
    parser.add_argument(
        "--fallback",
        action="store_true",
        help="only the fallback-chain comparison (issue 19), --messages per campaign",
    )
    parser.add_argument(
        "--compare",
        action="store_true",
        help="only Loa vs the bare requests pool (issue 22), --messages per side and round",
    )
    parser.add_argument("--rounds", type=int, default=3, help="--compare: alternations")
    parser.add_argument(
        "--native",
        action="store_true",
        help="with --fallback: a third arm, the same chain in the provider's own mode (eTelecom "
        "enable_sms_on_zns_failure: one request, the SMS leg recorded from the answer)",
    )
    args = parser.parse_args()
    if args.quick:
        args.contacts, args.messages, args.rate_seconds = 100_000, 20_000, 20.0
    return args


def setup(args: argparse.Namespace) -> str:
    """Django on the benchmark database, with the engine sized for the run; the vendor."""
    env = {
        "LOA_SEND_CONCURRENCY": str(args.concurrency),
        "LOA_SEND_BATCH_SIZE": "400",
        "LOA_DRIVERS_PER_CAMPAIGN": "2",
        "LOG_LEVEL": "WARNING",
        "DEBUG": "false",  # no query log, like production (and the other benchmarks)
        # The fake provider listens on http://127.0.0.1 (the rule is https only without it).
        "LOA_ALLOW_HTTP_PROVIDER_URLS": "true",
    }
    if args.database_url:
        env["DATABASE_URL"] = args.database_url
    common.setup_django(env)
    return common.migrate_and_clear_queue()


def start_fake(port: int, latency_ms: float, fail_rate: float = 0.0) -> subprocess.Popen:
    """The fake provider in its own process: the engine's HTTP calls cross a real socket."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.fake_provider",
            "--port",
            str(port),
            "--latency-ms",
            str(latency_ms),
            "--no-callbacks",
            "--fail-rate",
            str(fail_rate),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def bench_materialize(channel, template, list_id: int, vendor: str) -> None:
    """1. campaign_materialize over the whole list, timed and scaled to 1M messages."""
    from campaigns.engine.lifecycle import campaign_cancel, campaign_transition
    from campaigns.engine.materialize import campaign_materialize
    from campaigns.models import Campaign

    big = new_campaign(channel, template, list_id)
    campaign_transition(campaign_id=big.pk, to=Campaign.Status.RUNNING, note="bench")
    t0 = time.monotonic()
    n = campaign_materialize(campaign_id=big.pk)
    took = time.monotonic() - t0
    scaled = took * 1_000_000 / max(n, 1)
    common.figure("materialize_s", round(took, 2), "s", "-", None, size=n, db=vendor)
    common.figure(
        "materialize_1m_s",
        round(scaled, 2),
        "s",
        "<20",
        scaled < 20,
        size=n,
        db=vendor,
        note="scaled_to_1M" if n != 1_000_000 else "measured",
    )
    campaign_cancel(campaign_id=big.pk)


def bench_send_rate(
    channel, template, cluster: subprocess.Popen, args: argparse.Namespace, vendor: str
) -> None:
    """2. The sustained send rate with 2 workers, their CPU per message, and the provider calls
    per message."""
    from campaigns.models import Campaign

    send_list = make_contacts(args.messages)
    camp = new_campaign(channel, template, send_list)
    cpu0 = common.cpu_seconds(cluster.pid)
    start(camp.pk)
    samples = wait_sent(camp.pk, args.messages, timeout=max(120, args.messages / 100))
    cpu1 = common.cpu_seconds(cluster.pid)
    rate = sustained_rate(samples, args.messages)
    sent = Campaign.objects.get(pk=camp.pk).sent_count
    common.figure(
        "send_rate_msg_s",
        round(rate, 1),
        "msg/s",
        ">=600",
        rate >= 600,
        size=args.messages,
        latency_ms=int(args.latency_ms),
        db=vendor,
    )
    cpu_ms = 1000 * (cpu1 - cpu0) / max(sent, 1)
    common.figure(
        "worker_cpu_ms_per_msg", round(cpu_ms, 3), "ms", "<=1.5", cpu_ms <= 1.5, db=vendor
    )
    report_provider_calls(camp, sent, vendor)


def report_provider_calls(camp, sent: int, vendor: str) -> None:
    """Every HTTP call is recorded as a MessageAttempt: more than one per message = a resend."""
    from django.db.models import Count

    from campaigns.models import MessageAttempt

    calls = MessageAttempt.objects.filter(message__campaign=camp).count()
    dupes = (
        MessageAttempt.objects.filter(message__campaign=camp)
        .values("message_id")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .count()
    )
    common.figure(
        "provider_calls_per_message",
        round(calls / max(sent, 1), 4),
        "-",
        "==1",
        dupes == 0,
        duplicates=dupes,
        db=vendor,
    )


def busiest_window(times: list[float], seconds: float) -> int:
    """The most sends in any `seconds`-long window of the sorted send times."""
    worst = 0
    j = 0
    for i in range(len(times)):
        while times[i] - times[j] >= seconds:
            j += 1
        worst = max(worst, i - j + 1)
    return worst


def bench_rate_limit(channel, template, args: argparse.Namespace, vendor: str) -> None:
    """3. A rate-limited campaign: the achieved rate against the limit, and the busiest 10 s."""
    from campaigns.models import Message

    n_rate = int(args.rate * args.rate_seconds)
    rate_list = make_contacts(n_rate)
    limited = new_campaign(channel, template, rate_list, rate_limit=args.rate)
    start(limited.pk)
    wait_sent(limited.pk, n_rate, timeout=args.rate_seconds * 3 + 60)
    times = sorted(
        t.timestamp()
        for t in Message.objects.filter(campaign=limited, sent_at__isnull=False).values_list(
            "sent_at", flat=True
        )
    )
    if len(times) <= 1:
        return
    achieved = (len(times) - 1) / (times[-1] - times[0])
    worst = busiest_window(times, 10.0)
    dev = abs(achieved - args.rate) / args.rate * 100
    common.figure(
        "rate_limit_achieved_msg_s",
        round(achieved, 2),
        "msg/s",
        f"~{args.rate:g}",
        dev <= 5,
        deviation_pct=round(dev, 2),
        db=vendor,
    )
    common.figure(
        "rate_limit_max_10s_window",
        worst,
        "msgs",
        f"<={int(args.rate * 10)}",
        worst <= args.rate * 10,
        db=vendor,
    )


def chain_channels(fake_base: str):
    """eTelecom ZNS (answers -118 in the send answer) and VNA MMP SMS on the fake."""
    from providers.models import Channel, OfficialAccount, ProviderAccount
    from templates_app.models import Template, TemplateParam

    zns_account = ProviderAccount(
        name=f"bench-etelecom-{time.time_ns()}",
        kind="etelecom",
        base_url=f"{fake_base}/etelecom/v1/shop",
    )
    zns_account.set_secrets({"api_key": "bench-shop-key"})
    zns_account.save()
    oa = OfficialAccount.objects.create(
        account=zns_account, oa_id="4097311281936189049", name="Bench OA"
    )
    zns = Channel.objects.create(
        name=f"bench-zns-{zns_account.pk}",
        account=zns_account,
        kind="zalo_zns",
        official_account=oa,
    )
    template = Template.objects.create(
        account=zns_account,
        official_account=oa,
        provider_template_id="205644",
        name="Bench",
        status="approved",
        price=300,
    )
    TemplateParam.objects.create(template=template, name="customer_name", position=0, max_length=30)
    TemplateParam.objects.create(template=template, name="order_code", position=1, max_length=30)
    mmp_account = ProviderAccount(
        name=f"bench-mmp-{time.time_ns()}", kind="vna_mmp", base_url=f"{fake_base}/mmp"
    )
    mmp_account.set_secrets({"api_key": "bench-mmp-key"})
    mmp_account.save()
    sms = Channel.objects.create(
        name=f"bench-sms-{mmp_account.pk}", account=mmp_account, kind="sms", external_id="pub-sms"
    )
    return zns, template, sms


def run_one(channel, template, cluster, n: int, sms=None, native=False) -> tuple[float, int]:
    """Send one campaign of n recipients (with a fallback step to `sms` when given, in the
    provider's own mode when `native`) and wait until every message of every step is handled;
    (workers' CPU seconds, messages handled)."""
    from campaigns.models import FallbackStep, Message

    camp = new_campaign(channel, template, make_contacts(n))
    if sms is not None:
        FallbackStep.objects.create(
            campaign=camp,
            position=1,
            channel=sms,
            mode=FallbackStep.Mode.PROVIDER if native else FallbackStep.Mode.LOA,
            content="Loa: {{ten}}, don {{ma}} da giao.",
            param_mapping={
                "ten": {"source": "field", "value": "name"},
                "ma": {"source": "attribute", "value": "order"},
            },
            receipt_minutes=None,  # "cannot reach" answers only: no receipt deadline in a bench
        )
    rows = Message.objects.filter(campaign_id=camp.pk)
    cpu0 = common.cpu_seconds(cluster.pid)
    start(camp.pk)
    deadline = time.monotonic() + max(180, n / 20)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        if rows.count() >= n and not rows.filter(status__in=["pending", "sending"]).exists():
            break
    cpu1 = common.cpu_seconds(cluster.pid)
    return cpu1 - cpu0, rows.exclude(status__in=["pending", "skipped", "cancelled"]).count()


def bench_fallback(args: argparse.Namespace, vendor: str) -> None:
    """4. CPU per message with and without a fallback chain (20% fall back), alternated."""
    from campaigns.models import Message

    fake_port = common.free_port()
    fake = start_fake(fake_port, args.latency_ms, fail_rate=0.2)
    cluster = None
    try:
        common.wait_for_port(fake_port, tries=50, pause=0.1)
        zns, template, sms = chain_channels(f"http://127.0.0.1:{fake_port}")
        cluster = common.start_qcluster(
            {
                **os.environ,
                "Q_WORKERS": "2",
                "Q_SYNC": "false",
                "PYTHONUNBUFFERED": "1",
                "Q_LOG_LEVEL": "ERROR",
            }
        )
        time.sleep(3)
        run_one(zns, template, cluster, min(500, args.messages))  # warm-up, not counted
        plain_cpu = chain_cpu = 0.0
        plain_n = chain_n = 0
        native_cpu, native_n = 0.0, 0
        for _round in range(2):
            cpu, n = run_one(zns, template, cluster, args.messages)
            plain_cpu, plain_n = plain_cpu + cpu, plain_n + n
            cpu, n = run_one(zns, template, cluster, args.messages, sms=sms)
            chain_cpu, chain_n = chain_cpu + cpu, chain_n + n
            if args.native:
                cpu, n = run_one(zns, template, cluster, args.messages, sms=sms, native=True)
                native_cpu, native_n = native_cpu + cpu, native_n + n
        if args.native:
            # Per recipient (2 campaigns of --messages each): the native chain sends one request
            # per recipient, its SMS rows are recorded from the answers.
            recipients = 2 * args.messages
            plain_r = 1000 * plain_cpu / recipients
            native_r = 1000 * native_cpu / recipients
            common.figure("chainless_cpu_ms_per_recipient", round(plain_r, 3), "ms", "-", None)
            common.figure(
                "chain_cpu_ms_per_recipient",
                round(1000 * chain_cpu / recipients, 3),
                "ms",
                "-",
                None,
            )
            common.figure("native_cpu_ms_per_recipient", round(native_r, 3), "ms", "-", None)
            common.figure(
                "native_cpu_ratio_per_recipient",
                round(native_r / plain_r, 3) if plain_r else 0,
                "x",
                "-",
                None,
                messages=native_n,
                db=vendor,
            )
        fell = Message.objects.filter(step=1).count()
        plain_ms = 1000 * plain_cpu / max(plain_n, 1)
        chain_ms = 1000 * chain_cpu / max(chain_n, 1)
        ratio = chain_ms / plain_ms if plain_ms else 0
        # Step-1 rows of both chained arms when --native (Loa's and the provider's own).
        arms = 2 if args.native else 1
        common.figure(
            "fallback_share", round(fell / (2 * arms * args.messages), 3), "-", "~0.2", None
        )
        common.figure("chainless_cpu_ms_per_msg", round(plain_ms, 3), "ms", "-", None, db=vendor)
        common.figure("chain_cpu_ms_per_msg", round(chain_ms, 3), "ms", "-", None, db=vendor)
        common.figure(
            "chain_cpu_ratio_per_msg",
            round(ratio, 3),
            "x",
            "<=1.10",
            ratio <= 1.10,
            messages=chain_n,
            db=vendor,
        )
    finally:
        if cluster is not None:
            common.stop_process_group(cluster)
        fake.terminate()


ANCHOR = r"""
import sys, uuid
from concurrent.futures import ThreadPoolExecutor
import requests
url, n, conc = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
session = requests.Session()
session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=conc))
def one(i):
    body = {"ApiKey": "bench-key", "SecretKey": "bench-secret", "Phone": "09%08d" % i,
            "TempID": "205644", "OAID": "4097311281936189049",
            "RequestId": uuid.uuid4().hex, "Sandbox": "0",
            "Params": ["Nguyen Van %d" % i, "DH%d" % i]}
    r = session.post(url, json=body, timeout=(5, 20))
    return r.json().get("CodeResult") == "100"
with ThreadPoolExecutor(conc) as pool:
    ok = sum(pool.map(one, range(n)))
print(ok)
"""


def run_anchor(url: str, n: int, procs: int, concurrency: int) -> tuple[float, int, float]:
    """The bare requests pool: `procs` processes, each a Session and a thread pool of
    `concurrency`, posting n requests in all; (their CPU seconds, answers accepted, wall s)."""
    started = time.monotonic()
    children = [
        subprocess.Popen(
            [sys.executable, "-c", ANCHOR, url, str(n // procs), str(concurrency)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(procs)
    ]
    ok = 0
    for child in children:
        out, _ = child.communicate()
        ok += int(out.strip() or 0)
    # The reaped children's user+sys, as the kernel accounted it (wait4 through Popen).
    return _children_cpu_delta(), ok, time.monotonic() - started


_children_seen = [0.0]


def _children_cpu_delta() -> float:
    """CPU of this process's reaped children since the last call (os.times)."""
    t = os.times()
    total = t.children_user + t.children_system
    delta = total - _children_seen[0]
    _children_seen[0] = total
    return delta


def pid_cpu(pid: int) -> float:
    """user+sys seconds of one live process (the fake: not a process group leader)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_compare(args: argparse.Namespace, vendor: str) -> None:
    """5. Loa's workers against the bare requests pool, alternated, with the fake's CPU."""
    import statistics

    from campaigns.models import Campaign

    fake_port = common.free_port()
    fake = start_fake(fake_port, args.latency_ms)
    base = f"http://127.0.0.1:{fake_port}"
    url = f"{base}/esms/MainService.svc/json/SendZaloMessage_V4_post_json/"
    cluster = None
    try:
        common.wait_for_port(fake_port, tries=50, pause=0.1)
        channel, template = setup_channel(base)
        cluster = common.start_qcluster(
            {
                **os.environ,
                "Q_WORKERS": "2",
                "Q_SYNC": "false",
                "PYTHONUNBUFFERED": "1",
                "Q_LOG_LEVEL": "ERROR",
            }
        )
        time.sleep(3)
        warm = new_campaign(channel, template, make_contacts(500))  # warm-up, not counted
        start(warm.pk)
        wait_sent(warm.pk, 500, timeout=120)
        _children_cpu_delta()
        loa_ms, pool_ms, fake_ms, ratios = [], [], [], []
        for rnd in range(args.rounds):
            load = os.getloadavg()[0]
            camp = new_campaign(channel, template, make_contacts(args.messages))
            cpu0, f0 = common.cpu_seconds(cluster.pid), pid_cpu(fake.pid)
            t0 = time.monotonic()
            start(camp.pk)
            samples = wait_sent(camp.pk, args.messages, timeout=max(120, args.messages / 50))
            loa_wall = time.monotonic() - t0
            cpu1, f1 = common.cpu_seconds(cluster.pid), pid_cpu(fake.pid)
            sent = Campaign.objects.get(pk=camp.pk).sent_count
            loa = 1000 * (cpu1 - cpu0) / max(sent, 1)
            fake_loa = 1000 * (f1 - f0) / max(sent, 1)
            f2 = pid_cpu(fake.pid)
            cpu, ok, wall = run_anchor(url, args.messages, 2, args.concurrency)
            f3 = pid_cpu(fake.pid)
            bare = 1000 * cpu / max(ok, 1)
            fake_bare = 1000 * (f3 - f2) / max(ok, 1)
            loa_ms.append(loa)
            pool_ms.append(bare)
            fake_ms += [fake_loa, fake_bare]
            ratios.append(loa / bare if bare else 0)
            print(
                f"round {rnd + 1}: load {load:.2f}; Loa {loa:.3f} ms/msg ({sent} sent, "
                f"{sustained_rate(samples, args.messages):.0f} msg/s, {loa_wall:.1f} s); "
                f"bare pool {bare:.3f} ms/msg ({ok} ok, {ok / wall:.0f} msg/s); "
                f"fake {fake_loa:.3f} / {fake_bare:.3f} ms/req",
                flush=True,
            )
        load = os.getloadavg()
        extra = {"db": vendor, "load": f"{load[0]:.2f}/{load[1]:.2f}", "rounds": args.rounds}

        def median_figure(name, values, unit, target="-", limit=None):
            med = statistics.median(values)
            common.figure(
                name,
                round(med, 3),
                unit,
                target,
                None if limit is None else med <= limit,
                spread=f"{min(values):.3f}-{max(values):.3f}",
                **extra,
            )

        median_figure("worker_cpu_ms_per_msg", loa_ms, "ms", "<=0.6", 0.6)
        median_figure("bare_requests_pool_cpu_ms_per_msg", pool_ms, "ms")
        median_figure("loa_to_bare_pool_cpu_ratio", ratios, "x")
        median_figure("fake_provider_cpu_ms_per_request", fake_ms, "ms")
    finally:
        if cluster is not None:
            common.stop_process_group(cluster)
        fake.terminate()


def main() -> None:
    args = parse_args()
    vendor = setup(args)
    if args.compare:
        common.machine_speed()
        bench_compare(args, vendor)
        return
    if args.fallback:
        common.machine_speed()
        bench_fallback(args, vendor)
        return
    common.machine_speed()
    list_id = make_contacts(args.contacts)
    fake_port = common.free_port()
    fake = start_fake(fake_port, args.latency_ms)
    cluster = None
    try:
        common.wait_for_port(fake_port, tries=50, pause=0.1)
        channel, template = setup_channel(f"http://127.0.0.1:{fake_port}")
        bench_materialize(channel, template, list_id, vendor)
        cluster = common.start_qcluster(
            {
                **os.environ,
                "Q_WORKERS": "2",
                "Q_SYNC": "false",
                "PYTHONUNBUFFERED": "1",
                "Q_LOG_LEVEL": "ERROR",
            }
        )
        time.sleep(3)
        bench_send_rate(channel, template, cluster, args, vendor)
        bench_rate_limit(channel, template, args, vendor)
    finally:
        if cluster is not None:
            common.stop_process_group(cluster)
        fake.terminate()


if __name__ == "__main__":
    main()
