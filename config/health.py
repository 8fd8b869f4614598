"""/healthz: the process answers. /readyz: the database, the broker and a cluster heartbeat."""

from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.utils import timezone


def healthz(request):
    return JsonResponse({"status": "ok"})


def readyz(request):
    checks = {}
    ok = True
    try:
        with connection.cursor() as cur:
            cur.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:  # report, never raise: this page is for monitors
        checks["database"] = f"error: {type(exc).__name__}"
        ok = False
    if settings.REDIS_URL:
        try:
            import redis

            redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2).ping()
            checks["broker"] = "ok"
        except Exception as exc:
            checks["broker"] = f"error: {type(exc).__name__}"
            ok = False
    else:
        checks["broker"] = "orm"
    try:
        from django_q.models import Success

        last = Success.objects.order_by("-stopped").values_list("stopped", flat=True).first()
        from django_q.status import Stat

        clusters = Stat.get_all()
        checks["cluster"] = f"{len(clusters)} running" if clusters else "none seen"
        if last:
            checks["last_task"] = timezone.localtime(last).isoformat()
        if not clusters and (last is None or last < timezone.now() - timedelta(minutes=5)):
            ok = False
    except Exception as exc:
        checks["cluster"] = f"error: {type(exc).__name__}"
        ok = False
    return JsonResponse(
        {"status": "ok" if ok else "degraded", "checks": checks}, status=200 if ok else 503
    )
