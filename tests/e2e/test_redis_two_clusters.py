"""Scale-out, for real: the Redis broker, two qcluster processes (two "worker machines") and a
separate "web" process that starts the campaign, all on one database, sending one campaign
through the eSMS adapter to bench/fake_provider/. Every contact gets exactly one provider call
(counted by the fake per RequestId), whichever cluster's driver claimed it.

Run on SQLite (the clusters contend for the single write lock) and on PostgreSQL
(`DATABASE_URL=postgres://... pytest tests/e2e/test_redis_two_clusters.py`). Needs Redis on
127.0.0.1:6379; uses database 15, which it empties.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys

import pytest
from django.conf import settings

from bench.fake_provider import FakeProviders
from campaigns.models import Campaign, Message
from tests.conftest import process_env, wait_for
from tests.factories import (
    CampaignFactory,
    ChannelFactory,
    ContactListFactory,
    OfficialAccountFactory,
    ProviderAccountFactory,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

REDIS_URL = "redis://127.0.0.1:6379/15"
CONTACTS = 300


def _redis_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            pass
        import redis

        return bool(redis.Redis.from_url(REDIS_URL, socket_timeout=2).ping())
    except Exception:
        return False


@pytest.fixture
def redis_db():
    if not _redis_reachable():
        pytest.skip(
            "Redis is not reachable at 127.0.0.1:6379 (start it: `redis-server --daemonize yes`); "
            "this test needs the real Redis broker"
        )
    import redis

    conn = redis.Redis.from_url(REDIS_URL)
    conn.flushdb()
    yield conn
    conn.flushdb()


def test_two_clusters_on_redis_send_every_contact_exactly_once(redis_db, qcluster):
    with FakeProviders(latency_ms=5, callbacks=False, seed=7) as fake:
        account = ProviderAccountFactory(
            kind="esms",
            base_url=fake.url("esms"),
            secrets={"api_key": "e2e-api-key", "secret_key": "e2e-secret-key"},
        )
        oa = OfficialAccountFactory(account=account, oa_id="4097311281936189049")
        channel = ChannelFactory(account=account, official_account=oa)
        campaign = CampaignFactory(
            lists=[ContactListFactory(size=CONTACTS)],
            channel=channel,
            template__provider_template_id="205644",
        )
        env = {
            "REDIS_URL": REDIS_URL,
            "Q_WORKERS": "2",
            "Q_LOG_LEVEL": "INFO",
            "LOA_DRIVERS_PER_CAMPAIGN": "4",
            "LOA_SEND_BATCH_SIZE": "20",
            "LOA_SEND_CONCURRENCY": "4",
        }
        clusters = [qcluster(**env), qcluster(**env)]

        def both_running():
            return all(re.search(r"Q Cluster .* running", c.output()) for c in clusters)

        assert wait_for(both_running, timeout=60), [c.output() for c in clusters]

        # The "web" role: a separate process with the production settings starts the campaign,
        # which enqueues its driver tasks on Redis.
        web = subprocess.run(
            [
                sys.executable,
                "manage.py",
                "shell",
                "-c",
                "from campaigns.engine.lifecycle import campaign_send_now; "
                f"print(campaign_send_now(campaign_id={campaign.pk}))",
            ],
            cwd=settings.BASE_DIR,
            env=process_env(REDIS_URL=REDIS_URL),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert web.returncode == 0, web.stderr
        assert web.stdout.strip().splitlines()[-1] == str(CONTACTS)

        def finished():
            campaign.refresh_from_db()
            return campaign.status == Campaign.Status.COMPLETED

        assert wait_for(finished, timeout=180), [c.output() for c in clusters]

        keys = list(
            Message.objects.filter(campaign=campaign).values_list("idempotency_key", "status")
        )
        assert len(keys) == CONTACTS
        assert {status for _k, status in keys} == {Message.Status.SENT}
        calls = {k: fake.count("esms", k) for k, _s in keys}
        assert set(calls.values()) == {1}, {k: n for k, n in calls.items() if n != 1}
        sends = [r for r in fake.requests if "SendZaloMessage" in r["path"]]
        assert len(sends) == CONTACTS
        campaign.refresh_from_db()
        assert campaign.sent_count == CONTACTS and campaign.failed_count == 0

        # Both "machines" took part: each cluster ran some of the driver tasks. The campaign can
        # complete before the last of its drivers was even taken from the queue (one driver sent
        # all 300 while the clusters' workers ran the schedules due at their start): those come
        # next, and find nothing left to send.
        def per_cluster():
            return [
                len(
                    re.findall(
                        r"processing .*campaign_drive_task", c.log.read_text(errors="replace")
                    )
                )
                for c in clusters
            ]

        assert wait_for(lambda: all(n > 0 for n in per_cluster()), timeout=60), per_cluster()
        # The broker really was Redis: nothing went through the ORM queue table.
        from django_q.models import OrmQ

        assert not OrmQ.objects.exists()
