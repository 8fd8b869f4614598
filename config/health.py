"""/healthz: the process answers. /readyz: the database, the cache, the broker and a cluster
heartbeat are reachable.

/readyz answers 200 when every check passes and 503 naming the failing checks otherwise, always
as JSON: a check that raises is reported by its exception's type, never as a traceback (this page
is for monitors, and may be reachable from the internet: it names no host, user or key).
`/readyz?only=database,broker` limits the checks, for a load balancer that should keep routing
to the admin while the workers are down (docs/OPERATIONS.md, "Monitoring").
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.db import connection
from django.db.models import Min, Q
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache

logger = logging.getLogger("loa.health")

CHECKS = ("database", "cache", "broker", "cluster")
# The scheduler runs every 30 s in a live cluster and moves each due schedule's next_run into the
# future; schedules overdue by more than this mean no cluster is running the scheduler.
CLUSTER_STALE_SECONDS = 180


@never_cache
def healthz(request):
    return JsonResponse({"status": "ok"})


@never_cache
def readyz(request):
    wanted = [c for c in (request.GET.get("only") or "").split(",") if c in CHECKS] or list(CHECKS)
    checks: dict[str, dict] = {}
    for name in wanted:
        started = time.monotonic()
        try:
            ok, detail = _RUNNERS[name]()
        except Exception as exc:  # report, never raise
            logger.warning("readyz: %s check failed: %s", name, type(exc).__name__)
            ok, detail = False, f"error: {type(exc).__name__}"
        checks[name] = {
            "ok": ok,
            "detail": detail,
            "ms": int((time.monotonic() - started) * 1000),
        }
    failing = [n for n, c in checks.items() if not c["ok"]]
    return JsonResponse(
        {"status": "ok" if not failing else "unavailable", "failing": failing, "checks": checks},
        status=200 if not failing else 503,
    )


def check_database() -> tuple[bool, str]:
    with connection.cursor() as cur:
        cur.execute("SELECT 1")
        cur.fetchone()
    return True, connection.vendor


def check_cache() -> tuple[bool, str]:
    from django.core.cache import cache

    key = "loa:readyz"
    value = str(time.time())
    cache.set(key, value, 30)
    if cache.get(key) != value:
        return False, "the cache did not return what was written"
    return True, cache.__class__.__name__


def check_broker() -> tuple[bool, str]:
    if settings.REDIS_URL:
        import redis

        redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2).ping()
        return True, "redis"
    # The ORM broker is a table in the database: reachable when its table answers.
    from django_q.models import OrmQ

    OrmQ.objects.using(settings.Q_CLUSTER.get("orm", "default")).exists()
    return True, "orm"


def check_cluster() -> tuple[bool, str]:
    """A cluster's statistics (Redis broker, or the shared database cache on PostgreSQL), else
    the schedules: a running scheduler keeps their next_run in the future."""
    from django_q.models import Schedule
    from django_q.status import Stat

    try:
        clusters = Stat.get_all()
    except Exception:  # statistics are a hint only; the schedules below decide
        clusters = []
    if clusters:
        return True, f"{len(clusters)} cluster(s) running"
    name = settings.Q_CLUSTER.get("name", "default")
    oldest = (
        Schedule.objects.exclude(repeats=0)
        .filter(Q(cluster__isnull=True) | Q(cluster="") | Q(cluster=name))
        .aggregate(m=Min("next_run"))["m"]
    )
    if oldest is None:
        return False, "no cluster seen and no schedule to tell"
    overdue = (timezone.now() - oldest).total_seconds()
    if overdue > CLUSTER_STALE_SECONDS:
        since = timezone.localtime(oldest).strftime("%Y-%m-%d %H:%M:%S")
        return False, f"no cluster heartbeat: schedules overdue since {since}"
    next_due = timezone.localtime(oldest).strftime("%Y-%m-%d %H:%M:%S")
    return True, f"scheduler running (next schedule due {next_due})"


_RUNNERS = {
    "database": check_database,
    "cache": check_cache,
    "broker": check_broker,
    "cluster": check_cluster,
}
