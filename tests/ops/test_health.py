"""/healthz and /readyz: 200 when ready, 503 naming the failing check otherwise, JSON always."""

from __future__ import annotations

import json
import os
import socket
import time
import urllib.error
import urllib.request
from datetime import timedelta
from unittest import mock

import pytest
from django.db import OperationalError
from django.test import override_settings
from django.utils import timezone
from django_q.models import Schedule

from tests.conftest import free_port, start_gunicorn

pytestmark = pytest.mark.django_db


@pytest.fixture
def live_scheduler():
    """What a running cluster leaves behind: every schedule's next run in the future."""
    Schedule.objects.all().delete()
    Schedule.objects.create(
        name="tick", func="math.floor", schedule_type="I", minutes=1, repeats=-1,
        next_run=timezone.now() + timedelta(seconds=40),
    )  # fmt: skip


def redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


def test_healthz(client):
    r = client.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    assert "no-cache" in r["Cache-Control"]


def test_readyz_all_good(client, live_scheduler):
    r = client.get("/readyz")
    body = r.json()
    assert r.status_code == 200, body
    assert body["status"] == "ok" and body["failing"] == []
    assert set(body["checks"]) == {"database", "cache", "broker", "cluster"}
    assert body["checks"]["broker"]["detail"] == "orm"
    assert "scheduler running" in body["checks"]["cluster"]["detail"]


def test_readyz_database_down(client, live_scheduler):
    broken = mock.Mock()
    broken.cursor.side_effect = OperationalError("could not connect to server: 10.0.0.9")
    with mock.patch("config.health.connection", broken):
        r = client.get("/readyz")
    assert r.status_code == 503
    body = r.json()
    assert "database" in body["failing"]
    assert body["checks"]["database"] == {
        "ok": False,
        "detail": "error: OperationalError",
        "ms": body["checks"]["database"]["ms"],
    }
    assert "10.0.0.9" not in r.content.decode()  # no infrastructure detail leaks


@override_settings(REDIS_URL="redis://127.0.0.1:1/0")
def test_readyz_broker_down(client, live_scheduler):
    r = client.get("/readyz")
    assert r.status_code == 503
    body = r.json()
    assert body["failing"] == ["broker"]
    assert body["checks"]["broker"]["detail"] == "error: ConnectionError"


def test_readyz_cache_down(client, live_scheduler):
    with mock.patch("django.core.cache.cache.set", side_effect=OperationalError("no table")):
        r = client.get("/readyz")
    assert r.status_code == 503
    assert r.json()["failing"] == ["cache"]


def test_readyz_no_cluster_heartbeat(client):
    Schedule.objects.all().delete()
    Schedule.objects.create(
        name="tick", func="math.floor", schedule_type="I", minutes=1, repeats=-1,
        next_run=timezone.now() - timedelta(minutes=10),
    )  # fmt: skip
    r = client.get("/readyz")
    assert r.status_code == 503
    body = r.json()
    assert body["failing"] == ["cluster"]
    assert "schedules overdue since" in body["checks"]["cluster"]["detail"]
    # a load balancer can ask only about what the web process needs
    r = client.get("/readyz?only=database,cache,broker")
    assert r.status_code == 200 and set(r.json()["checks"]) == {"database", "cache", "broker"}


def test_readyz_no_schedule_at_all_is_not_ready(client):
    Schedule.objects.all().delete()
    r = client.get("/readyz")
    assert r.status_code == 503 and r.json()["failing"] == ["cluster"]


def test_readyz_cluster_seen_through_its_statistics(client):
    Schedule.objects.all().delete()
    with mock.patch("django_q.status.Stat.get_all", return_value=[object(), object()]):
        r = client.get("/readyz")
    assert r.status_code == 200
    assert r.json()["checks"]["cluster"]["detail"] == "2 cluster(s) running"


@pytest.mark.skipif(not redis_up(), reason="Redis is not running on 127.0.0.1:6379")
@override_settings(REDIS_URL="redis://127.0.0.1:6379/15")
def test_readyz_with_a_live_redis_broker(client, live_scheduler):
    r = client.get("/readyz")
    assert r.status_code == 200
    assert r.json()["checks"]["broker"]["detail"] == "redis"


def test_a_real_web_process_with_everything_down_answers_503_json(tmp_path):
    """A web process whose PostgreSQL and Redis are unreachable: 503 naming each failing check,
    JSON, no traceback, no host or password in the answer."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "DJANGO_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DATABASE_URL="postgres://loa:hunter2-db-password@127.0.0.1:1/loa",
        REDIS_URL="redis://127.0.0.1:1/0",
        DEBUG="true",  # even with DEBUG's technical pages on, readyz answers JSON
        PORT=str(port),
        WEB_CONCURRENCY="1",
        GUNICORN_THREADS="1",
    )
    log = open(tmp_path / "web.log", "wb")  # noqa: SIM115 - closed below
    proc = start_gunicorn(env, log)
    try:
        deadline = time.monotonic() + 30
        status, body = None, b""
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=20) as r:
                    status, body = r.status, r.read()
                break
            except urllib.error.HTTPError as exc:
                status, body = exc.code, exc.read()
                break
            except OSError:
                time.sleep(0.3)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as r:
            assert r.status == 200  # the process itself is up
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)
        log.close()
    assert status == 503, (tmp_path / "web.log").read_text()[-3000:]
    data = json.loads(body)
    assert set(data["failing"]) == {"database", "cache", "broker", "cluster"}
    text = body.decode()
    assert "Traceback" not in text and "hunter2" not in text and "127.0.0.1" not in text


def test_the_admin_has_a_favicon(client, db):
    """Issue 17: every page asked for a missing favicon."""
    page = client.get("/admin/login/")
    assert 'rel="icon"' in page.content.decode()
    icon = client.get("/favicon.ico")
    assert icon.status_code == 301 and icon["Location"].endswith("loa/favicon.svg")
