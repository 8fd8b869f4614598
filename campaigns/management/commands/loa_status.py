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


def _cluster_status() -> dict:
    try:
        ok, detail = check_cluster()
    except Exception as exc:
        ok, detail = False, f"error: {type(exc).__name__}"
    return {"ok": ok, "detail": detail}


def _messages_by_campaign(messages, *, oldest: str) -> list[dict]:
    """The 20 campaigns with the most of these messages, and since when (`oldest` field)."""
    rows = (
        messages.values("campaign_id")
        .annotate(n=Count("id"), oldest=Min(oldest))
        .order_by("-n")[:20]
    )
    return [
        {"campaign_id": r["campaign_id"], "count": r["n"], "oldest": _local(r["oldest"])}
        for r in rows
    ]


def _running_campaigns() -> tuple[int, int, set[int]]:
    """How many campaigns run (or settle: sent, confirming outcomes), their pending messages, and
    the provider accounts they use."""
    active = [Campaign.Status.RUNNING, Campaign.Status.SETTLING]
    running = list(
        Campaign.objects.filter(status__in=active).values_list("pk", "channel__account_id")
    )
    pending = (
        Message.objects.filter(
            campaign_id__in=[pk for pk, _acc in running], status=Message.Status.PENDING
        ).count()
        if running
        else 0
    )
    return len(running), pending, {acc for _pk, acc in running}


def _accounts_status(*, now, accounts_running: set[int]) -> tuple[list[dict], list[str]]:
    """Each provider account's last callback, and a problem for every active one that has
    campaigns running and has been silent too long (the sandbox never calls back)."""
    accounts, problems = [], []
    for acc in ProviderAccount.objects.order_by("name").values(
        "pk", "name", "kind", "is_active", "last_callback_at"
    ):
        last = acc["last_callback_at"]
        age = int((now - last).total_seconds()) if last else None
        accounts.append(
            {
                "id": acc["pk"],
                "name": acc["name"],
                "kind": acc["kind"],
                "active": acc["is_active"],
                "last_callback_at": _local(last),
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
    return accounts, problems


def _problems(*, queue: dict, cluster: dict, stuck: dict, failures_24h: int) -> list[str]:
    problems = []
    if not queue.get("ok"):
        problems.append(f"broker unreachable ({queue.get('error')})")
    if not cluster["ok"]:
        problems.append(f"cluster: {cluster['detail']}")
    if stuck["total"]:
        problems.append(
            f"{stuck['total']} message(s) in sending for more than "
            f"{stuck['older_than_seconds']} s "
            "(the scheduler moves them to unknown and reconciles them)"
        )
    if failures_24h:
        problems.append(f"{failures_24h} failed background task(s) in the last 24 h")
    return problems


def loa_status(*, now=None) -> dict:
    now = now or timezone.now()
    stuck_seconds = int(settings.LOA["STUCK_SENDING_SECONDS"])
    S = Message.Status
    cluster = _cluster_status()
    stuck_messages = Message.objects.filter(
        status=S.SENDING, claimed_at__lt=now - timedelta(seconds=stuck_seconds)
    )
    stuck_rows = _messages_by_campaign(stuck_messages, oldest="claimed_at")
    stuck = {
        "older_than_seconds": stuck_seconds,
        "total": sum(r["count"] for r in stuck_rows),
        "by_campaign": stuck_rows,
    }
    unknown_rows = _messages_by_campaign(
        Message.objects.filter(status=S.UNKNOWN), oldest="updated_at"
    )
    running, pending, accounts_running = _running_campaigns()
    accounts, problems = _accounts_status(now=now, accounts_running=accounts_running)
    queue = queue_status()
    failures_24h = Failure.objects.filter(stopped__gte=now - timedelta(hours=24)).count()
    problems += _problems(queue=queue, cluster=cluster, stuck=stuck, failures_24h=failures_24h)
    return {
        "at": _local(now),
        "queue": queue,
        "cluster": cluster,
        "campaigns_running": running,
        "pending_in_running_campaigns": pending,
        "stuck_sending": stuck,
        "unknown": {
            "total": Message.objects.filter(status=S.UNKNOWN).count(),
            "by_campaign": unknown_rows,
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
