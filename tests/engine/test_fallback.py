"""Fallback chains (issue 19): the decision, and a chain ZNS (eTelecom) -> SMS (VNA MMP) sent
through the engine over real HTTP to bench/fake_provider (in-process drivers; the qcluster
version with SIGKILLs is tests/e2e/test_fallback_chain.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone, translation

from bench.fake_provider import FakeProviders
from bench.fake_provider.shared import OA_ID
from campaigns.engine.delivery import message_apply_event, messages_find
from campaigns.engine.driver import campaign_drive
from campaigns.engine.fallback import (
    REACHED_EARLIER,
    campaign_fall_back,
    campaign_fallback_waiting,
)
from campaigns.engine.keys import idempotency_key, idempotency_key_parse, idempotency_key_step
from campaigns.engine.lifecycle import (
    campaign_cancel,
    campaign_pause,
    campaign_resume,
    campaign_send_now,
)
from campaigns.engine.scheduler import campaigns_tick
from campaigns.models import (
    Campaign,
    Contact,
    ContactList,
    ContactListMembership,
    FallbackStep,
    Message,
    OptOut,
)
from providers.base import EventStatus, StatusEvent
from providers.fallback import cannot_reach, sends_receipts, unreachable_codes
from providers.models import Channel, OfficialAccount, ProviderAccount
from templates_app.models import Template, TemplateParam

pytestmark = pytest.mark.django_db(transaction=True)
S = Message.Status

PHONES = [f"8490123{i:04d}" for i in range(12)]
NO_ZALO = set(PHONES[:3])  # the fake answers -118
SILENT = set(PHONES[3:5])  # accepted, no receipt ever
SMS_OPTED_OUT = PHONES[0]  # no Zalo, and opted out of SMS only


# ---- provider facts ----------------------------------------------------------------------------
def test_provider_codes_live_with_the_provider():
    assert cannot_reach("etelecom", "-118") and cannot_reach("etelecom", "-119")
    assert cannot_reach("esms", "-141") and cannot_reach("esms", "177")
    # retryable, deferred and configuration codes never fall back
    for code in ("-100", "-133", "-144", "-147", "-124", "-115", ""):
        assert not cannot_reach("etelecom", code), code
    assert not cannot_reach("vna_mmp", "mmp_fail")  # assumed: MMP documents no such code
    assert cannot_reach("vna_mmp", "E42", {"fallback_codes": ["E42"]})
    assert unreachable_codes("metfone_mmp", {"fallback_codes": "not a list"}) == frozenset()
    assert sends_receipts("etelecom", "zalo_zns") and sends_receipts("vna_mmp", "sms")
    assert not sends_receipts("etelecom", "sms")


def test_step_keys_keep_step_zero_exactly_as_before():
    account = ProviderAccount.objects.create(name="sbx", kind="sandbox")
    channel = Channel.objects.create(name="c", account=account, kind="zalo_zns")
    campaign = Campaign.objects.create(name="k", channel=channel)
    k0, k1 = idempotency_key(campaign, 7), idempotency_key(campaign, 7, 1)
    # The stamp is base 36 and may hold a "c" itself: the contact is after the last one.
    assert k0 == f"loa{campaign.pk}t{k0.split('t', 1)[1].rsplit('c', 1)[0]}c7"
    assert k1 == k0 + "s1"
    assert idempotency_key_parse(k1) == idempotency_key_parse(k0) == (campaign.pk, 7)
    assert idempotency_key_step(k0) == 0 and idempotency_key_step(k1) == 1
    assert idempotency_key_step("loa1t1c1s") is None


# ---- the chain over HTTP ------------------------------------------------------------------------
def _chain(fake: FakeProviders, *, receipt_minutes: int | None = 30) -> Campaign:
    zns_account = ProviderAccount.objects.create(
        name="eTelecom", kind="etelecom", base_url=fake.url("etelecom")
    )
    zns_account.set_secrets({"api_key": "fb-shop-key"})
    zns_account.save()
    oa = OfficialAccount.objects.create(account=zns_account, oa_id=OA_ID, name="Loa OA")
    zns = Channel.objects.create(
        name="ZNS", account=zns_account, kind="zalo_zns", official_account=oa
    )
    mmp_account = ProviderAccount.objects.create(
        name="VNA MMP", kind="vna_mmp", base_url=fake.url("vna_mmp")
    )
    mmp_account.set_secrets({"api_key": "fb-mmp-key"})
    mmp_account.save()
    sms = Channel.objects.create(name="SMS", account=mmp_account, kind="sms", external_id="pub-sms")
    return chain_campaign(
        zns=zns,
        sms=sms,
        phones=PHONES,
        opted_out=SMS_OPTED_OUT,
        name="chain",
        content="Loa: {{ten}} ơi, đơn {{ma}} đã giao.",
        receipt_minutes=receipt_minutes,
    )


def chain_campaign(
    *, zns: Channel, sms: Channel, phones, opted_out: str, name: str, contact="Khách {i}", **step
) -> Campaign:
    """A ZNS campaign to one list of `phones` (contact i named `contact`, order "DH{i}"), its
    template's two parameters mapped to the name and the order, one fallback step to `sms`
    (`step`: its content, mode, receipt window; its parameters the same two), and `opted_out`
    opted out of SMS only."""
    template = Template.objects.create(
        account=zns.account,
        provider_template_id="205644",
        name="Đơn hàng",
        channel_kind="zalo_zns",
        status=Template.Status.APPROVED,
        body="Xin chào {{customer_name}}, đơn {{order_code}}",
    )
    for i, param in enumerate(["customer_name", "order_code"]):
        TemplateParam.objects.create(template=template, name=param, position=i, max_length=60)
    people = ContactList.objects.create(name=name, contact_count=len(phones))
    for i, phone in enumerate(phones):
        person = Contact.objects.create(
            phone=phone, name=contact.format(i=i), attributes={"order": f"DH{i}"}
        )
        ContactListMembership.objects.create(contact_list=people, contact=person)
    campaign = Campaign.objects.create(
        name=name,
        channel=zns,
        template=template,
        param_mapping={
            "customer_name": {"source": "field", "value": "name"},
            "order_code": {"source": "attribute", "value": "order"},
        },
    )
    campaign.lists.set([people])
    FallbackStep.objects.create(
        campaign=campaign,
        position=1,
        channel=sms,
        param_mapping={
            "ten": {"source": "field", "value": "name"},
            "ma": {"source": "attribute", "value": "order"},
        },
        **step,
    )
    OptOut.objects.create(
        contact=Contact.objects.get(phone=opted_out), channel_kind="sms", reason="STOP SMS"
    )
    return campaign


def _fake() -> FakeProviders:
    fake = FakeProviders(latency_ms=0, callbacks=False)
    fake.fail_phones = {p: (-118, "Zalo account not existed") for p in NO_ZALO}
    fake.silent_phones = set(SILENT)
    return fake


def _receipts(campaign: Campaign, *, step: int, skip: set[str]) -> None:
    """Delivery receipts for every sent message of a step except `skip`, through the engine's
    delivery service (what the webhook applier calls)."""
    for m in Message.objects.filter(campaign=campaign, step=step, status=S.SENT):
        if m.phone not in skip:
            message_apply_event(
                message_id=m.pk,
                event=StatusEvent(status=EventStatus.DELIVERED, provider_message_id=""),
            )


def _sms_calls(fake: FakeProviders) -> dict[str, int]:
    with fake.lock:
        return {k: n for (provider, k), n in fake.calls_by_key.items() if provider == "mmp"}


def test_chain_falls_back_exactly_for_the_unreachable_and_the_silent():
    with _fake() as fake:
        campaign = _chain(fake)
        campaign_send_now(campaign_id=campaign.pk)
        campaign.refresh_from_db()
        # -118 in eTelecom's send answer: the SMS step was built and sent in the same run;
        # the others wait for their receipt deadline, so the campaign is settling, not done.
        assert campaign.status == Campaign.Status.SETTLING
        zns = {m.phone: m for m in Message.objects.filter(campaign=campaign, step=0)}
        assert {p for p, m in zns.items() if m.status == S.FAILED} == NO_ZALO
        assert all(m.error_code == "-118" for p, m in zns.items() if p in NO_ZALO)
        sms = {m.phone: m for m in Message.objects.filter(campaign=campaign, step=1)}
        assert set(sms) == NO_ZALO
        assert sms[SMS_OPTED_OUT].status == S.SKIPPED
        assert sms[SMS_OPTED_OUT].error_code == "opted_out"
        assert {p for p, m in sms.items() if m.status == S.SENT} == NO_ZALO - {SMS_OPTED_OUT}
        # the step's own data, from the contact, through the step's own channel
        first = sms[PHONES[1]]
        assert first.idempotency_key.endswith("s1")
        assert first.template_data == {"ten": "Khách 1", "ma": "DH1"}

        _receipts(campaign, step=0, skip=SILENT)
        assert campaign_fallback_waiting(campaign_id=campaign.pk)  # the silent ones
        assert campaign_fall_back(campaign_id=campaign.pk) == 0  # not before the deadline
        later = timezone.now() + timedelta(minutes=31)
        assert campaign_fall_back(campaign_id=campaign.pk, now=later) == len(SILENT)
        assert campaign_fall_back(campaign_id=campaign.pk, now=later) == 0  # once
        campaign_drive(campaign_id=campaign.pk)

        sms = {m.phone: m for m in Message.objects.filter(campaign=campaign, step=1)}
        assert set(sms) == NO_ZALO | SILENT
        sent_to = {m.phone for m in sms.values() if m.status == S.SENT}
        assert sent_to == (NO_ZALO | SILENT) - {SMS_OPTED_OUT}
        calls = _sms_calls(fake)
        assert sorted(calls) == sorted(
            m.idempotency_key for m in sms.values() if m.phone in sent_to
        )
        assert set(calls.values()) == {1}  # one provider call per fallback message

        # a late ZNS receipt after the SMS went out: recorded, nothing else changes
        late = zns[next(iter(SILENT))]
        before = list(Message.objects.filter(campaign=campaign).order_by("pk").values())
        message_apply_event(message_id=late.pk, event=StatusEvent(status=EventStatus.DELIVERED))
        after = list(Message.objects.filter(campaign=campaign).order_by("pk").values())
        changed = [a for a, b in zip(after, before, strict=True) if a != b]
        assert [c["id"] for c in changed] == [late.pk]
        assert changed[0]["status"] == S.DELIVERED
        assert campaign_fall_back(campaign_id=campaign.pk, now=later) == 0
        assert _sms_calls(fake) == calls

        # every SMS receipt in: the campaign completes
        _receipts(campaign, step=1, skip=set())
        assert not campaign_fallback_waiting(campaign_id=campaign.pk)
        campaigns_tick()
        campaign.refresh_from_db()
        assert campaign.status == Campaign.Status.COMPLETED


def test_messages_of_a_step_are_found_by_their_own_account():
    with _fake() as fake:
        campaign = _chain(fake)
        campaign_send_now(campaign_id=campaign.pk)
        sms = Message.objects.filter(campaign=campaign, step=1, status=S.SENT).first()
        zns = Message.objects.get(campaign=campaign, step=0, contact_id=sms.contact_id)
        mmp_account = FallbackStep.objects.get(campaign=campaign).channel.account_id
        events = [
            StatusEvent(status=EventStatus.DELIVERED, idempotency_key=sms.idempotency_key),
            StatusEvent(status=EventStatus.DELIVERED, idempotency_key=zns.idempotency_key),
        ]
        assert messages_find(account_id=mmp_account, events=events) == [sms.pk, None]
        zns_account = campaign.channel.account_id
        assert messages_find(account_id=zns_account, events=events) == [None, zns.pk]


def test_no_fallback_on_retryable_or_delivered_and_a_late_receipt_skips_a_pending_one():
    with _fake() as fake:
        campaign = _chain(fake)
        campaign_send_now(campaign_id=campaign.pk)
        _receipts(campaign, step=0, skip=SILENT)
        # a retryable failure (Zalo -100) never falls back, even past the deadline
        quiet = Message.objects.get(campaign=campaign, step=0, phone=PHONES[3])
        Message.objects.filter(pk=quiet.pk).update(status=S.FAILED, error_code="-100")
        later = timezone.now() + timedelta(hours=2)
        assert campaign_fall_back(campaign_id=campaign.pk, now=later) == 1  # PHONES[4] only
        pending = Message.objects.get(campaign=campaign, step=1, phone=PHONES[4])
        assert pending.status == S.PENDING
        # ... then its ZNS receipt arrives before the SMS is claimed: the SMS is not sent
        message_apply_event(
            message_id=Message.objects.get(campaign=campaign, step=0, phone=PHONES[4]).pk,
            event=StatusEvent(status=EventStatus.DELIVERED),
        )
        campaign_drive(campaign_id=campaign.pk)
        pending.refresh_from_db()
        assert pending.status == S.SKIPPED and pending.error_code == REACHED_EARLIER
        assert pending.idempotency_key not in _sms_calls(fake)
        # delivered ZNS rows have no SMS row at all
        delivered = Message.objects.filter(campaign=campaign, step=0, status=S.DELIVERED)
        assert not Message.objects.filter(
            campaign=campaign, step=1, contact_id__in=delivered.values("contact_id")
        ).exclude(pk=pending.pk)


def test_pause_builds_but_does_not_send_and_cancel_builds_nothing():
    with _fake() as fake:
        campaign = _chain(fake)
        campaign_send_now(campaign_id=campaign.pk)
        _receipts(campaign, step=0, skip=SILENT)
        assert campaign_pause(campaign_id=campaign.pk)
        later = timezone.now() + timedelta(minutes=31)
        assert campaign_fall_back(campaign_id=campaign.pk, now=later) == len(SILENT)
        campaign_drive(campaign_id=campaign.pk)
        assert not Message.objects.filter(campaign=campaign, step=1, phone__in=SILENT).exclude(
            status=S.PENDING
        )
        assert campaign_resume(campaign_id=campaign.pk)
        sent = Message.objects.filter(campaign=campaign, step=1, phone__in=SILENT, status=S.SENT)
        assert sent.count() == len(SILENT)
        assert set(_sms_calls(fake).values()) == {1}


def test_unique_per_step():
    with _fake() as fake:
        campaign = _chain(fake)
        campaign_send_now(campaign_id=campaign.pk)
        m = Message.objects.filter(campaign=campaign, step=1).first()
        with pytest.raises(IntegrityError), transaction.atomic():
            Message.objects.create(
                campaign=campaign,
                contact_id=m.contact_id,
                phone=m.phone,
                step=1,
                idempotency_key=m.idempotency_key,
            )


# ---- the wizard's fallback page and the campaign page's funnel ----------------------------------
def test_wizard_builds_a_chain_and_the_campaign_page_shows_the_funnel(admin_client, english):
    from django.urls import reverse

    admin_client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    with _fake() as fake:
        campaign = _chain(fake)
        FallbackStep.objects.filter(campaign=campaign).delete()
        sms = Channel.objects.get(kind="sms")
        page = reverse("admin:campaigns_campaign_wizard_fallback", args=[campaign.pk, 1])
        review = reverse("admin:campaigns_campaign_wizard", args=[campaign.pk, 5])
        body = admin_client.get(review).content.decode()
        assert 'id="fallback-add"' in body
        # neither trigger chosen: a clear error, nothing saved
        r = admin_client.post(page, {"action": "channel", "channel": sms.pk})
        assert r.status_code == 200 and b"Choose when to fall back" in r.content
        assert not FallbackStep.objects.filter(campaign=campaign).exists()
        r = admin_client.post(
            page,
            {"action": "channel", "channel": sms.pk, "on_unreachable": "on", "receipt_minutes": 30},
        )
        assert r.status_code == 302
        step = FallbackStep.objects.get(campaign=campaign, position=1)
        assert step.channel == sms and step.receipt_minutes == 30
        # the send is refused while the step has no message
        body = admin_client.get(review).content.decode()
        assert "Fallback step 1: choose a template or write the message." in body
        r = admin_client.post(
            page, {"action": "message", "fb-content": "Loa: {{ten}}, đơn {{ma}}."}
        )
        assert r.status_code == 302
        body = admin_client.get(page).content.decode()
        assert 'id="fallback-mapping-form"' in body and "fallback-reach-ok" in body
        r = admin_client.post(
            page,
            {
                "action": "mapping",
                "fm-p0_source": "field",
                "fm-p0_value": "name",
                "fm-p1_source": "attribute",
                "fm-p1_value": "order",
            },
        )
        assert r.status_code == 302
        step.refresh_from_db()
        assert step.param_mapping == {
            "ten": {"source": "field", "value": "name"},
            "ma": {"source": "attribute", "value": "order"},
        }
        body = admin_client.get(review).content.decode()
        assert 'id="fallback-chain-step-1"' in body
        assert "a default (no earlier campaign on this channel" in body
        assert "Fallback step 1:" not in body
        # send it from the review step, then read the funnel on the campaign page
        r = admin_client.post(review, {"action": "send_now"})
        assert r.status_code == 302, r.content.decode()[:2000]
        _receipts(campaign, step=0, skip=SILENT)
        campaign_fall_back(campaign_id=campaign.pk, now=timezone.now() + timedelta(minutes=31))
        campaign_drive(campaign_id=campaign.pk)
        _receipts(campaign, step=1, skip=set())
        body = admin_client.get(
            reverse("admin:campaigns_campaign_change", args=[campaign.pk])
        ).content.decode()
        assert 'id="fallback-funnel"' in body
        n = len(PHONES)
        delivered0 = n - len(NO_ZALO) - len(SILENT)
        fell = len(NO_ZALO | SILENT)
        sms_ok = fell - 1  # the one opted out of SMS
        campaign.refresh_from_db()
        assert campaign.fallback_count == fell and campaign.progress_percent == 100
        assert "fallback messages: <strong" in body
        row0 = body.split('id="funnel-step-0"')[1].split("</tr>")[0]
        row1 = body.split('id="funnel-step-1"')[1].split("</tr>")[0]
        assert f"{delivered0} ({round(100 * delivered0 / n, 1):g}%)" in row0
        assert f"{fell} ({round(100 * fell / n, 1):g}%)" in row0
        assert f"{sms_ok} ({round(100 * sms_ok / n, 1):g}%)" in row1
        # the messages list filters by step
        msgs = admin_client.get(
            reverse("admin:campaigns_message_changelist")
            + f"?campaign__id__exact={campaign.pk}&step__exact=1"
        )
        assert msgs.status_code == 200
        xlsx = admin_client.get(reverse("admin:campaigns_campaign_export_xlsx", args=[campaign.pk]))
        assert xlsx.status_code == 200
        # the export: one row per recipient, each fallback step's status, time, error, fee
        import csv
        import io

        r = admin_client.get(
            reverse("admin:campaigns_campaign_export", args=[campaign.pk]),
            HTTP_ACCEPT_LANGUAGE="en",
        )
        text = b"".join(r.streaming_content).decode("utf-8-sig")
        table = list(csv.reader(io.StringIO(text)))
        header, rows = table[0], table[1:]
        assert len(rows) == n
        col = {h: i for i, h in enumerate(header)}
        status1 = col["Fallback 1 (SMS): status"]
        by_phone = {row[col["Phone (international)"]]: row for row in rows}
        for phone in PHONES:
            row = by_phone[phone]
            if phone == SMS_OPTED_OUT:
                assert row[status1] == "Skipped" and row[col["Reached by"]] == ""
                assert row[col["Fallback 1 (SMS): error"]].startswith("opted_out")
            elif phone in NO_ZALO | SILENT:
                assert row[status1] == "Delivered"
                assert row[col["Reached by"]] == "Fallback 1 (SMS)"
                assert row[col["Fallback 1 (SMS): time"]]
            else:
                assert row[status1] == "" and row[col["Reached by"]] == "First"


def test_a_deactivated_fallback_channel_pauses_the_campaign_before_its_batch():
    from campaigns.engine.driver import DriveResult

    with _fake() as fake:
        campaign = _chain(fake)
        campaign_send_now(campaign_id=campaign.pk)
        _receipts(campaign, step=0, skip=SILENT)
        Channel.objects.filter(kind="sms").update(is_active=False)
        later = timezone.now() + timedelta(minutes=31)
        assert campaign_fall_back(campaign_id=campaign.pk, now=later) == len(SILENT)
        assert campaign_drive(campaign_id=campaign.pk) == DriveResult.BLOCKED
        campaign.refresh_from_db()
        assert campaign.status == Campaign.Status.PAUSED
        with translation.override("en"):
            assert "fallback step 1" in campaign.reason_text()
        pending = Message.objects.filter(campaign=campaign, step=1, phone__in=SILENT)
        assert set(pending.values_list("status", flat=True)) == {S.PENDING}


def test_cancel_ends_pending_fallbacks_and_builds_no_more():
    with _fake() as fake:
        campaign = _chain(fake)
        campaign_send_now(campaign_id=campaign.pk)
        _receipts(campaign, step=0, skip=SILENT)
        assert campaign_pause(campaign_id=campaign.pk)
        later = timezone.now() + timedelta(minutes=31)
        assert campaign_fall_back(campaign_id=campaign.pk, now=later) == len(SILENT)
        assert campaign_cancel(campaign_id=campaign.pk) is not None
        silent = Message.objects.filter(campaign=campaign, step=1, phone__in=SILENT)
        assert set(silent.values_list("status", flat=True)) == {S.CANCELLED}
        silent.delete()
        assert campaign_fall_back(campaign_id=campaign.pk, now=later) == 0
        assert not _sms_calls(fake).keys() & set(
            Message.objects.filter(campaign=campaign, step=1, phone__in=SILENT).values_list(
                "idempotency_key", flat=True
            )
        )


def test_a_promotion_fallback_waits_for_the_morning(monkeypatch):
    from campaigns.engine import driver
    from campaigns.engine.driver import DriveResult

    with _fake() as fake:
        campaign = _chain(fake)
        Template.objects.filter(pk=campaign.template_id).update(tag=Template.Tag.PROMOTION)
        later = timezone.now() + timedelta(minutes=31)
        monkeypatch.setattr(driver, "promotion_allowed_at", lambda *a: (True, later))
        campaign_send_now(campaign_id=campaign.pk)
        _receipts(campaign, step=0, skip=SILENT)
        assert campaign_fall_back(campaign_id=campaign.pk, now=later) == len(SILENT)
        # night: the free-text SMS of a promotion waits, like the promotion itself
        monkeypatch.setattr(driver, "promotion_allowed_at", lambda *a: (False, later))
        assert campaign_drive(campaign_id=campaign.pk) == DriveResult.QUIET_HOURS
        waiting = Message.objects.filter(campaign=campaign, step=1, phone__in=SILENT)
        assert set(waiting.values_list("status", flat=True)) == {S.PENDING}
        monkeypatch.setattr(driver, "promotion_allowed_at", lambda *a: (True, later))
        campaign_drive(campaign_id=campaign.pk)
        assert set(waiting.values_list("status", flat=True)) == {S.SENT}
