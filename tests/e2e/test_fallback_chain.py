"""Issue 19's "done when", under real conditions: a chain ZNS (eTelecom) -> SMS (VNA MMP) sent by
real qcluster processes over real HTTP to bench/fake_provider, which answers Zalo -118 for one
set of numbers and never sends a receipt for another. Workers are SIGKILLed while the first step
and while the fallback step go out, and the campaign is paused and resumed: exactly those
recipients get the SMS, and each SMS key reaches the provider once. A late ZNS receipt after
the SMS changes only its own row; a recipient opted out of SMS only gets no fallback.

The receipt deadline (30 minutes) is reached by moving the first step's `sent_at` back, then
the tick's sweep (campaigns_fall_back_due) runs as the scheduler would run it.

A message whose worker was killed mid-call is `unknown` until reconciled: eTelecom's
ListMessages proves absence (resent then); the MMP status path is assumed, so an SMS left
`unknown` that the fake never received is sent again by the person's "Send again"
(messages_resend_unknown), the documented path for an unproven outcome.

Run on PostgreSQL:
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/loa_x pytest tests/e2e/test_fallback_chain.py
"""

from __future__ import annotations

import random
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.test import override_settings
from django.utils import timezone

from bench.fake_provider import FakeProviders
from campaigns.engine.delivery import message_apply_event
from campaigns.engine.fallback import campaigns_fall_back_due
from campaigns.engine.lifecycle import campaign_pause, campaign_resume, campaign_send_now
from campaigns.engine.reconcile import (
    messages_reap_stuck,
    messages_reconcile,
    messages_resend_unknown,
)
from campaigns.engine.scheduler import campaigns_kick_running
from campaigns.models import Campaign, FallbackStep, Message, OptOut
from providers.base import EventStatus, StatusEvent
from providers.models import Channel
from tests.conftest import wait_for
from tests.factories import (
    CampaignFactory,
    ChannelFactory,
    ContactListFactory,
    ProviderAccountFactory,
    TemplateFactory,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
S = Message.Status

CLUSTER_ENV = {
    "LOA_SEND_CONCURRENCY": "4",
    "LOA_SEND_BATCH_SIZE": "20",
    "LOA_DRIVER_TIME_BUDGET": "5",
    "Q_TIMEOUT": "20",
    "Q_RETRY": "30",
    "Q_WORKERS": "2",
}
N = 240


def _campaign(fake: FakeProviders) -> Campaign:
    zns_account = ProviderAccountFactory(
        kind="etelecom",
        base_url=fake.url("etelecom"),
        secrets={"api_key": "shop-key"},
        settings={"http": {"read_timeout": 1.5, "connect_timeout": 1}},
    )
    zns = ChannelFactory(account=zns_account)
    template = TemplateFactory(account=zns_account, provider_template_id="205644")
    mmp_account = ProviderAccountFactory(
        kind="vna_mmp",
        base_url=fake.url("vna_mmp"),
        secrets={"api_key": "mmp-key"},
        settings={"http": {"read_timeout": 1.5, "connect_timeout": 1}},
    )
    sms = Channel.objects.create(name="SMS", account=mmp_account, kind="sms", external_id="pub-sms")
    campaign = CampaignFactory(channel=zns, template=template, lists=[ContactListFactory(size=N)])
    FallbackStep.objects.create(
        campaign=campaign,
        position=1,
        channel=sms,
        content="Loa: {{ten}} ơi, đơn {{ma}} đã giao.",
        param_mapping={
            "ten": {"source": "field", "value": "name"},
            "ma": {"source": "attribute", "value": "order"},
        },
        receipt_minutes=30,
    )
    return campaign


def _kill_while(cluster_factory, cluster, done, *, kills: int, rnd: random.Random):
    for _ in range(kills):
        if done():
            break
        time.sleep(rnd.uniform(0.3, 0.9))
        cluster.kill()
        cluster = cluster_factory(**CLUSTER_ENV)
        campaigns_kick_running(idle_seconds=0)
    return cluster


def _settle(campaign, fake, cluster_factory, cluster, *, step: int):
    """Drive the step to its end as the scheduler would: wait for the drivers, reap rows a killed
    worker left in `sending`, reconcile `unknown` ones; an SMS the fake never received that
    stays unproven is sent again by a person's decision (see the module docstring)."""
    rows = Message.objects.filter(campaign=campaign, step=step)
    for _ in range(10):
        if cluster is None or cluster.proc.poll() is not None:
            cluster = cluster_factory(**CLUSTER_ENV)
        Campaign.objects.filter(pk=campaign.pk, status=Campaign.Status.COMPLETED).update(
            status=Campaign.Status.RUNNING
        )
        campaigns_kick_running(idle_seconds=0)
        wait_for(lambda: not rows.filter(status__in=[S.PENDING]).exists(), timeout=90)
        time.sleep(2.5)  # in-flight batches land before the reaper looks
        messages_reap_stuck(older_than=0)
        with override_settings(LOA={**settings.LOA, "RESEND_NOT_FOUND_AFTER_MINUTES": 0}):
            for _i in range(3):
                messages_reconcile(limit=5000)
                rows.filter(status=S.UNKNOWN).update(last_polled_at=None)
        unseen = [
            m.pk
            for m in rows.filter(status=S.UNKNOWN)
            if fake.count("mmp" if step else "etelecom", m.idempotency_key) == 0
        ]
        if step and unseen:
            messages_resend_unknown(message_ids=unseen)
        if not rows.filter(status__in=[S.PENDING, S.SENDING, S.UNKNOWN]).exists():
            return cluster
    left = list(
        rows.filter(status__in=[S.PENDING, S.SENDING, S.UNKNOWN]).values_list(
            "status", "error_code", "next_attempt_at"
        )
    )
    c = Campaign.objects.get(pk=campaign.pk)
    raise AssertionError(f"step {step} not settled: {left} campaign={c.status} {c.reason_text()}")


def test_chain_through_sigkill_and_pause_resume(qcluster):
    rnd = random.Random(19)
    with FakeProviders(latency_ms=40, callbacks=False, seed=19) as fake:
        campaign = _campaign(fake)
        phones = sorted(campaign.lists.first().contacts.values_list("phone", flat=True))
        shuffled = phones[:]
        rnd.shuffle(shuffled)
        no_zalo, silent = set(shuffled[:36]), set(shuffled[36:60])  # 15% and 10%
        sms_opted_out = sorted(no_zalo)[0]
        fake.fail_phones = {p: (-118, "Zalo account not existed") for p in no_zalo}
        fake.silent_phones = set(silent)
        OptOut.objects.create(
            contact=campaign.lists.first().contacts.get(phone=sms_opted_out), channel_kind="sms"
        )

        # step 0 (and the -118 fallbacks it triggers), with SIGKILLs
        cluster = qcluster(**CLUSTER_ENV)
        campaign_send_now(campaign_id=campaign.pk)
        step0 = Message.objects.filter(campaign=campaign, step=0)
        cluster = _kill_while(
            qcluster,
            cluster,
            lambda: not step0.filter(status__in=[S.PENDING, S.SENDING]).exists(),
            kills=4,
            rnd=rnd,
        )
        cluster = _settle(campaign, fake, qcluster, cluster, step=0)
        cluster = _settle(campaign, fake, qcluster, cluster, step=1)
        failed = set(step0.filter(status=S.FAILED).values_list("phone", flat=True))
        assert failed == no_zalo, list(
            step0.filter(phone__in=no_zalo - failed).values_list(
                "status", "error_code", "error_message"
            )
        )

        # receipts for everyone but the silent ones; then the deadline passes
        for m in step0.filter(status=S.SENT).exclude(phone__in=silent):
            message_apply_event(message_id=m.pk, event=StatusEvent(status=EventStatus.DELIVERED))
        step0.filter(status=S.SENT).update(sent_at=timezone.now() - timedelta(minutes=31))
        assert campaigns_fall_back_due() == len(silent)
        assert campaigns_fall_back_due() == 0  # once
        campaigns_kick_running(idle_seconds=0)
        # the silent ones' SMS go out through pause/resume and a SIGKILL
        for _ in range(3):
            time.sleep(0.2)
            campaign_pause(campaign_id=campaign.pk)
            time.sleep(0.2)
            campaign_resume(campaign_id=campaign.pk)
        cluster.kill()
        cluster = qcluster(**CLUSTER_ENV)
        cluster = _settle(campaign, fake, qcluster, cluster, step=1)

        sms = {m.phone: m for m in Message.objects.filter(campaign=campaign, step=1)}
        assert set(sms) == no_zalo | silent
        assert sms[sms_opted_out].status == S.SKIPPED
        assert sms[sms_opted_out].error_code == "opted_out"
        got = {p for p, m in sms.items() if m.status == S.SENT}
        assert got == (no_zalo | silent) - {sms_opted_out}, [
            (p, m.status, m.error_code, m.error_message) for p, m in sms.items() if p not in got
        ]
        # one provider call per SMS recipient, none for the opted-out one
        calls = {p: fake.count("mmp", m.idempotency_key) for p, m in sms.items()}
        assert {p: n for p, n in calls.items() if n != (0 if p == sms_opted_out else 1)} == {}
        # one ZNS call per recipient, none twice
        zns_calls = [
            fake.count("etelecom", k) for k in step0.values_list("idempotency_key", flat=True)
        ]
        assert set(zns_calls) == {1}

        # a late ZNS receipt after the SMS: its own row moves, nothing else
        late = step0.get(phone=sorted(silent)[0])
        before = {r["id"]: r for r in Message.objects.filter(campaign=campaign).values()}
        message_apply_event(message_id=late.pk, event=StatusEvent(status=EventStatus.DELIVERED))
        after = {r["id"]: r for r in Message.objects.filter(campaign=campaign).values()}
        assert [k for k in after if after[k] != before[k]] == [late.pk]
        assert after[late.pk]["status"] == S.DELIVERED
        assert campaigns_fall_back_due() == 0
        assert sum(fake.count("mmp", m.idempotency_key) for m in sms.values()) == len(got)
        cluster.stop()


def test_provider_native_chain_through_sigkill_and_pause_resume(qcluster):
    """The same chain in the provider's own mode (campaigns.engine.native): eTelecom sends the
    SMS itself when the ZNS fails (enable_sms_on_zns_failure, providers.md §1.2: from the
    reference notes, not the seeds). One request per recipient, through SIGKILLs and
    pause/resume; the SMS rows are recorded from the answers (and, for a request whose answer a
    kill lost, from reconciliation's ListMessages), each once; none to the MMP channel; the
    recipient opted out of SMS is asked no SMS."""
    rnd = random.Random(20)
    with FakeProviders(latency_ms=40, callbacks=False, seed=20) as fake:
        campaign = _campaign(fake)
        FallbackStep.objects.filter(campaign=campaign).update(mode=FallbackStep.Mode.PROVIDER)
        phones = sorted(campaign.lists.first().contacts.values_list("phone", flat=True))
        shuffled = phones[:]
        rnd.shuffle(shuffled)
        no_zalo = set(shuffled[:36])
        sms_opted_out = sorted(no_zalo)[0]
        fake.fail_phones = {p: (-118, "Zalo account not existed") for p in no_zalo}
        OptOut.objects.create(
            contact=campaign.lists.first().contacts.get(phone=sms_opted_out), channel_kind="sms"
        )

        cluster = qcluster(**CLUSTER_ENV)
        campaign_send_now(campaign_id=campaign.pk)
        step0 = Message.objects.filter(campaign=campaign, step=0)
        for _ in range(2):
            time.sleep(0.3)
            campaign_pause(campaign_id=campaign.pk)
            time.sleep(0.2)
            campaign_resume(campaign_id=campaign.pk)
        cluster = _kill_while(
            qcluster,
            cluster,
            lambda: not step0.filter(status__in=[S.PENDING, S.SENDING]).exists(),
            kills=3,
            rnd=rnd,
        )
        cluster = _settle(campaign, fake, qcluster, cluster, step=0)
        assert set(step0.filter(status=S.FAILED).values_list("phone", flat=True)) == no_zalo

        expected = no_zalo - {sms_opted_out}
        with fake.lock:
            asked = [r["phone"] for r in fake.sms_fallbacks]
        assert sorted(asked) == sorted(expected)  # each once, none for the opted-out one
        sms = {m.phone: m for m in Message.objects.filter(campaign=campaign, step=1)}
        assert set(sms) == expected
        assert {m.status for m in sms.values()} == {S.SENT}
        assert all(m.idempotency_key.endswith("s1") for m in sms.values())
        # one ZNS call per recipient; nothing through the SMS step's own (MMP) channel
        assert set(
            fake.count("etelecom", k) for k in step0.values_list("idempotency_key", flat=True)
        ) == {1}
        assert not [k for (p, k) in fake.calls_by_key if p == "mmp"]
        campaign.refresh_from_db()
        assert campaign.fallback_count == len(expected)
        cluster.stop()
