"""Campaign engine benchmark: materialization, sustained send rate, worker CPU per message, and
rate-limit accuracy, against the local fake provider over real HTTP.

    python bench/send_campaign.py --database-url postgres://postgres@127.0.0.1:5432/loa_bench
    python bench/send_campaign.py --quick

What it does (issue 9's figures):
1. creates N contacts in one list (set-based SQL), then times `campaign_materialize` for them;
2. starts bench/fake_provider.py (its own process, 50 ms latency, no callbacks) and one qcluster
   with 2 workers, sends a campaign of S messages through the eSMS adapter, and reports the rate
   sustained between 10% and 90% of the campaign, plus the workers' user+sys CPU per message;
3. sends a rate-limited campaign (R/s) and checks the achieved rate against R and the busiest
   10-second window against R (from each message's send time).
Every contact must get exactly one provider call (the fake server counts calls per RequestId).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


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


def make_contacts(n: int) -> int:
    """n contacts and one list holding them, in two set-based statements."""
    from django.db import connection

    from campaigns.models import ContactList

    cl = ContactList.objects.create(name=f"bench-{time.time_ns()}")
    with connection.cursor() as cur:
        cur.execute("SELECT COALESCE(MAX(id), 0) FROM campaigns_contact")
        base = cur.fetchone()[0]
        if connection.vendor == "postgresql":
            series = "generate_series(%s, %s) AS g"
            head = ""
            args = [base + 1, base + n]
        else:
            head = "WITH RECURSIVE s(g) AS (SELECT %s UNION ALL SELECT g + 1 FROM s WHERE g < %s) "
            series = "s"
            args = [base + 1, base + n]
        phone = (
            "'849' || substr('00000000' || CAST(g AS TEXT), -8, 8)"
            if connection.vendor != "postgresql"
            else "'849' || lpad(g::text, 8, '0')"
        )
        attrs = (
            "json_object('order', 'DH' || g)"
            if connection.vendor != "postgresql"
            else "jsonb_build_object('order', 'DH' || g)"
        )
        cur.execute(
            f"{head}INSERT INTO campaigns_contact (phone, name, attributes, search_text, source, created_at, "
            f"updated_at) SELECT {phone}, 'Nguyen Van ' || g, {attrs}, 'nguyen van ' || g, 'bench', "
            f"CURRENT_TIMESTAMP, CURRENT_TIMESTAMP FROM {series}",
            args,
        )
        cur.execute(
            "INSERT INTO campaigns_contactlistmembership (contact_list_id, contact_id, added_at) "
            "SELECT %s, id, CURRENT_TIMESTAMP FROM campaigns_contact WHERE id > %s",
            [cl.pk, base],
        )
    ContactList.objects.filter(pk=cl.pk).update(contact_count=n)
    return cl.pk


def setup_channel(fake_base: str):
    from providers.models import Channel, OfficialAccount, ProviderAccount
    from templates_app.models import Template, TemplateParam

    account = ProviderAccount(
        name=f"bench-esms-{time.time_ns()}",
        kind="esms",
        base_url=f"{fake_base}/esms/MainService.svc/json",
    )
    account.set_secrets({"api_key": "bench-key", "secret_key": "bench-secret"})
    account.save()
    oa = OfficialAccount.objects.create(
        account=account, oa_id="4097311281936189049", name="Bench OA"
    )
    channel = Channel.objects.create(
        name=f"bench-{account.pk}", account=account, kind="zalo_zns", official_account=oa
    )
    template = Template.objects.create(
        account=account,
        official_account=oa,
        provider_template_id="205644",
        name="Bench",
        status="approved",
        price=300,
    )
    TemplateParam.objects.create(template=template, name="customer_name", position=0, max_length=30)
    TemplateParam.objects.create(template=template, name="order_code", position=1, max_length=30)
    return channel, template


MAPPING = {
    "customer_name": {"source": "field", "value": "name"},
    "order_code": {"source": "attribute", "value": "order"},
}


def new_campaign(channel, template, list_id, **kw):
    from campaigns.models import Campaign

    c = Campaign.objects.create(
        name=f"bench {time.time_ns()}",
        channel=channel,
        template=template,
        param_mapping=MAPPING,
        **kw,
    )
    c.lists.add(list_id)
    return c


def start(campaign_id: int) -> None:
    from campaigns import services
    from campaigns.models import Campaign

    services.campaign_transition(campaign_id=campaign_id, to=Campaign.Status.RUNNING, note="bench")
    services.campaign_materialize(campaign_id=campaign_id)
    services.campaign_start_drivers(campaign_id=campaign_id)


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


def main() -> None:
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
    args = parser.parse_args()
    if args.quick:
        args.contacts, args.messages, args.rate_seconds = 100_000, 20_000, 20.0
    if args.database_url:
        os.environ["DATABASE_URL"] = args.database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ["LOA_SEND_CONCURRENCY"] = str(args.concurrency)
    os.environ["LOA_SEND_BATCH_SIZE"] = "400"
    os.environ["LOA_DRIVERS_PER_CAMPAIGN"] = "2"
    os.environ["LOG_LEVEL"] = "WARNING"
    os.environ["DEBUG"] = "false"  # no query log, like production (and the other benchmarks)
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

    machine_speed()
    # 1. materialization
    list_id = make_contacts(args.contacts)
    fake_port = free_port()
    fake = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "bench" / "fake_provider.py"),
            "--port",
            str(fake_port),
            "--latency-ms",
            str(args.latency_ms),
            "--no-callbacks",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    cluster = None
    try:
        base = f"http://127.0.0.1:{fake_port}"
        for _ in range(50):
            try:
                socket.create_connection(("127.0.0.1", fake_port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        channel, template = setup_channel(base)
        from campaigns import services
        from campaigns.models import Campaign, Message

        big = new_campaign(channel, template, list_id)
        services.campaign_transition(campaign_id=big.pk, to=Campaign.Status.RUNNING, note="bench")
        t0 = time.monotonic()
        n = services.campaign_materialize(campaign_id=big.pk)
        took = time.monotonic() - t0
        scaled = took * 1_000_000 / max(n, 1)
        figure("materialize_s", round(took, 2), "s", "-", None, size=n, db=vendor)
        figure(
            "materialize_1m_s",
            round(scaled, 2),
            "s",
            "<20",
            scaled < 20,
            size=n,
            db=vendor,
            note="scaled_to_1M" if n != 1_000_000 else "measured",
        )
        services.campaign_cancel(campaign_id=big.pk)

        # 2. sustained send rate with 2 workers
        env = {
            **os.environ,
            "Q_WORKERS": "2",
            "Q_SYNC": "false",
            "PYTHONUNBUFFERED": "1",
            "Q_LOG_LEVEL": "ERROR",
        }
        cluster = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"],
            cwd=ROOT,
            env=env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(3)
        send_list = make_contacts(args.messages)
        camp = new_campaign(channel, template, send_list)
        cpu0 = cpu_seconds(cluster.pid)
        start(camp.pk)
        samples = wait_sent(camp.pk, args.messages, timeout=max(120, args.messages / 100))
        cpu1 = cpu_seconds(cluster.pid)
        rate = sustained_rate(samples, args.messages)
        sent = Campaign.objects.get(pk=camp.pk).sent_count
        figure(
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
        figure("worker_cpu_ms_per_msg", round(cpu_ms, 3), "ms", "<=1.5", cpu_ms <= 1.5, db=vendor)
        # Every HTTP call is recorded as a MessageAttempt: more than one per message = a resend.
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
        figure(
            "provider_calls_per_message",
            round(calls / max(sent, 1), 4),
            "-",
            "==1",
            dupes == 0,
            duplicates=dupes,
            db=vendor,
        )

        # 3. rate-limit accuracy
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
        if len(times) > 1:
            achieved = (len(times) - 1) / (times[-1] - times[0])
            worst = 0
            j = 0
            for i in range(len(times)):
                while times[i] - times[j] >= 10.0:
                    j += 1
                worst = max(worst, i - j + 1)
            dev = abs(achieved - args.rate) / args.rate * 100
            figure(
                "rate_limit_achieved_msg_s",
                round(achieved, 2),
                "msg/s",
                f"~{args.rate:g}",
                dev <= 5,
                deviation_pct=round(dev, 2),
                db=vendor,
            )
            figure(
                "rate_limit_max_10s_window",
                worst,
                "msgs",
                f"<={int(args.rate * 10)}",
                worst <= args.rate * 10,
                db=vendor,
            )
    finally:
        if cluster is not None and cluster.poll() is None:
            os.killpg(cluster.pid, signal.SIGTERM)
            try:
                cluster.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(cluster.pid, signal.SIGKILL)
        fake.terminate()


if __name__ == "__main__":
    main()
