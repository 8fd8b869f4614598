"""What an operator (or a monitoring script) needs at a glance: queue depth, clusters, stuck and
unknown messages, and the last callback per provider account.

`--json` prints one JSON object; `--check` exits with status 1 when a problem is listed (for cron
or a monitoring agent). Every count uses an index (Message's msg_stuck_idx and msg_claim_idx), so
this stays fast on millions of messages.
"""

from __future__ import annotations

import json
from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db.models import Count, Min
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.models import Failure, OrmQ

from campaigns.models import Campaign, Message
from config.health import check_cluster
from providers.models import ProviderAccount

# An active account with a running campaign and no callback for this long is worth a look.
CALLBACK_SILENCE_SECONDS = 3600


def _local(dt) -> str | None:
    return timezone.localtime(dt).isoformat(timespec="seconds") if dt else None


def queue_status() -> dict:
    broker = get_broker()
    out = {"broker": "redis" if settings.REDIS_URL else "orm"}
    try:
        out["queued"] = broker.queue_size()
        if not settings.REDIS_URL:
            # queue_size() counts tasks waiting; the table also holds tasks being worked on.
            out["in_table"] = OrmQ.objects.count()
            oldest = OrmQ.objects.aggregate(m=Min("lock"))["m"]
            out["oldest_lock"] = _local(oldest)
        out["ok"] = True
    except Exception as exc:
        out.update(ok=False, error=type(exc).__name__)
    return out


def loa_status(*, now=None) -> dict:
    now = now or timezone.now()
    stuck_seconds = int(settings.LOA["STUCK_SENDING_SECONDS"])
    cutoff = now - timedelta(seconds=stuck_seconds)
    S = Message.Status

    try:
        cluster_ok, cluster_detail = check_cluster()
    except Exception as exc:
        cluster_ok, cluster_detail = False, f"error: {type(exc).__name__}"

    stuck_rows = list(
        Message.objects.filter(status=S.SENDING, claimed_at__lt=cutoff)
        .values("campaign_id")
        .annotate(n=Count("id"), oldest=Min("claimed_at"))
        .order_by("-n")[:20]
    )
    unknown_rows = list(
        Message.objects.filter(status=S.UNKNOWN)
        .values("campaign_id")
        .annotate(n=Count("id"), oldest=Min("updated_at"))
        .order_by("-n")[:20]
    )
    running = list(
        Campaign.objects.filter(status=Campaign.Status.RUNNING).values_list(
            "pk", "name", "channel__account_id"
        )
    )
    pending = (
        Message.objects.filter(campaign_id__in=[r[0] for r in running], status=S.PENDING).count()
        if running
        else 0
    )
    accounts_running = {r[2] for r in running}
    accounts = []
    problems = []
    for acc in ProviderAccount.objects.order_by("name").values(
        "pk", "name", "kind", "is_active", "last_callback_at"
    ):
        age = (
            int((now - acc["last_callback_at"]).total_seconds())
            if acc["last_callback_at"]
            else None
        )
        accounts.append(
            {
                "id": acc["pk"],
                "name": acc["name"],
                "kind": acc["kind"],
                "active": acc["is_active"],
                "last_callback_at": _local(acc["last_callback_at"]),
                "seconds_since_callback": age,
            }
        )
        if (
            acc["is_active"]
            and acc["pk"] in accounts_running
            and acc["kind"] != "sandbox"
            and (age is None or age > CALLBACK_SILENCE_SECONDS)
        ):
            problems.append(
                f"account {acc['name']}: campaigns running and no callback "
                + ("ever" if age is None else f"for {age // 60} min")
            )

    queue = queue_status()
    failures_24h = Failure.objects.filter(stopped__gte=now - timedelta(hours=24)).count()
    stuck_total = sum(r["n"] for r in stuck_rows)
    unknown_total = Message.objects.filter(status=S.UNKNOWN).count()
    if not queue.get("ok"):
        problems.append(f"broker unreachable ({queue.get('error')})")
    if not cluster_ok:
        problems.append(f"cluster: {cluster_detail}")
    if stuck_total:
        problems.append(
            f"{stuck_total} message(s) in sending for more than {stuck_seconds} s "
            "(the scheduler moves them to unknown and reconciles them)"
        )
    if failures_24h:
        problems.append(f"{failures_24h} failed background task(s) in the last 24 h")
    return {
        "at": _local(now),
        "queue": queue,
        "cluster": {"ok": cluster_ok, "detail": cluster_detail},
        "campaigns_running": len(running),
        "pending_in_running_campaigns": pending,
        "stuck_sending": {
            "older_than_seconds": stuck_seconds,
            "total": stuck_total,
            "by_campaign": [
                {"campaign_id": r["campaign_id"], "count": r["n"], "oldest": _local(r["oldest"])}
                for r in stuck_rows
            ],
        },
        "unknown": {
            "total": unknown_total,
            "by_campaign": [
                {"campaign_id": r["campaign_id"], "count": r["n"], "oldest": _local(r["oldest"])}
                for r in unknown_rows
            ],
        },
        "task_failures_24h": failures_24h,
        "accounts": accounts,
        "problems": problems,
    }


class Command(BaseCommand):
    help = "Queue depth, clusters, stuck and unknown messages, last callback per account."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="Print one JSON object.")
        parser.add_argument(
            "--check", action="store_true", help="Exit with status 1 when a problem is listed."
        )

    def handle(self, *args, **opts):
        report = loa_status()
        if opts["json"]:
            self.stdout.write(json.dumps(report, ensure_ascii=False, indent=2))
        else:
            self._text(report)
        if opts["check"] and report["problems"]:
            raise CommandError(f"{len(report['problems'])} problem(s)", returncode=1)

    def _text(self, r: dict) -> None:
        w = self.stdout.write
        q = r["queue"]
        w(f"Loa status at {r['at']}")
        if q.get("ok"):
            extra = f", {q['in_table']} in the table" if "in_table" in q else ""
            w(f"  queue ({q['broker']}): {q['queued']} waiting{extra}")
        else:
            w(f"  queue ({q['broker']}): UNREACHABLE ({q.get('error')})")
        w(f"  cluster: {'ok' if r['cluster']['ok'] else 'PROBLEM'} - {r['cluster']['detail']}")
        w(
            f"  campaigns running: {r['campaigns_running']} "
            f"({r['pending_in_running_campaigns']} messages pending)"
        )
        st = r["stuck_sending"]
        w(f"  stuck in sending > {st['older_than_seconds']} s: {st['total']}")
        for row in st["by_campaign"]:
            w(f"    campaign {row['campaign_id']}: {row['count']} (since {row['oldest']})")
        w(f"  unknown (reconciling): {r['unknown']['total']}")
        for row in r["unknown"]["by_campaign"]:
            w(f"    campaign {row['campaign_id']}: {row['count']} (oldest {row['oldest']})")
        w(f"  failed background tasks (24 h): {r['task_failures_24h']}")
        w("  last callback per account:")
        for a in r["accounts"]:
            state = "" if a["active"] else " (inactive)"
            w(f"    {a['name']} [{a['kind']}]{state}: {a['last_callback_at'] or 'never'}")
        if r["problems"]:
            w(self.style.WARNING("Problems:"))
            for p in r["problems"]:
                w(self.style.WARNING(f"  - {p}"))
        else:
            w(self.style.SUCCESS("No problems."))
