"""The provider's own fallback (issue 19, a chain step in provider mode): one request carries the
ZNS and the SMS (eTelecom enable_sms_on_zns_failure, eSMS MultiChannelMessage), over real HTTP
to bench/fake_provider, which checks the request against the reference notes (providers.md §1.2,
§2.3: built from the notes, not the seeds); Loa records both steps from the answer and the
receipts (campaigns.engine.native, .legs)."""

from __future__ import annotations

import json
from decimal import Decimal
from urllib.parse import urlencode

import pytest

from bench.fake_provider import FakeProviders
from bench.fake_provider.shared import OA_ID
from campaigns.engine.fallback import campaign_fall_back, campaign_fallback_waiting
from campaigns.engine.legs import legs_record
from campaigns.engine.lifecycle import campaign_check_sendable, campaign_send_now
from campaigns.models import (
    Campaign,
    Contact,
    FallbackStep,
    Message,
)
from campaigns.selectors.fallback import campaign_step_funnel
from providers.base import EventStatus, NativeSms, OutboundMessage, StatusEvent
from providers.esms.adapter import EsmsProvider
from providers.etelecom import EtelecomProvider, sms_leg_event
from providers.models import Channel, OfficialAccount, ProviderAccount
from tests.engine.test_fallback import chain_campaign

pytestmark = pytest.mark.django_db(transaction=True)
S = Message.Status

PHONES = [f"8490555{i:04d}" for i in range(6)]
NO_ZALO = set(PHONES[:3])  # the fake answers -118: the provider sends the SMS itself
SMS_OPTED_OUT = PHONES[0]  # no Zalo, and opted out of SMS only: their request asks no SMS
LOCAL = {p: "0" + p[2:] for p in PHONES}  # eSMS's phone format (0xxxxxxxxx)


class _Captured(FakeProviders):
    """The fake, its callbacks kept for the test to deliver through the webhook path."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.outbox: list[tuple[str, str, object]] = []

    def schedule(self, delay, method, url, payload) -> None:
        with self.lock:
            self.outbox.append((method, url, payload))


def _fake(provider: str) -> _Captured:
    fake = _Captured(latency_ms=0)
    phones = [LOCAL[p] for p in NO_ZALO] if provider == "esms" else list(NO_ZALO)
    fake.fail_phones = {p: (-118, "Zalo account not existed") for p in phones}
    return fake


def _chain(fake: FakeProviders, provider: str) -> Campaign:
    account = ProviderAccount.objects.create(
        name=f"{provider} account",
        kind=provider,
        base_url=fake.url(provider),
        settings={"sms_brandname": "LOA"}
        | ({"status_base_url": fake.url("esms_status")} if provider == "esms" else {}),
    )
    account.set_secrets(
        {"api_key": "k", "secret_key": "s"} if provider == "esms" else {"api_key": "shop-key"}
    )
    account.save()
    oa = OfficialAccount.objects.create(account=account, oa_id=OA_ID, name="Loa OA")
    zns = Channel.objects.create(name="ZNS", account=account, kind="zalo_zns", official_account=oa)
    mmp = ProviderAccount.objects.create(name="MMP", kind="vna_mmp", base_url=fake.url("vna_mmp"))
    mmp.set_secrets({"api_key": "m"})
    mmp.save()
    sms = Channel.objects.create(name="SMS", account=mmp, kind="sms", external_id="pub-sms")
    return chain_campaign(
        zns=zns,
        sms=sms,
        phones=PHONES,
        opted_out=SMS_OPTED_OUT,
        name="native chain",
        contact="Khach {i}",
        mode=FallbackStep.Mode.PROVIDER,
        content="Loa: {{ten}}, don {{ma}} da giao.",
    )


def _deliver(fake: _Captured, campaign: Campaign) -> int:
    """Every callback the fake owes, through the real webhook intake and applier."""
    from webhooks.applier import webhook_events_apply
    from webhooks.services import webhook_receive

    account = campaign.channel.account
    with fake.lock:
        owed, fake.outbox[:] = list(fake.outbox), []
    for method, _url, payload in owed:
        if method == "GET":
            webhook_receive(
                account=account,
                method="GET",
                query_string=urlencode(payload),
                body=b"",
                headers={},
            )
        else:
            webhook_receive(
                account=account,
                method="POST",
                query_string="",
                body=json.dumps(payload).encode(),
                headers={"Content-Type": "application/json"},
            )
    while webhook_events_apply():
        pass
    return len(owed)


def _sms_rows(campaign: Campaign) -> dict[str, Message]:
    return {m.phone: m for m in Message.objects.filter(campaign=campaign, step=1)}


# ---- the adapters' requests ----------------------------------------------------------------------
def _out(**kw) -> OutboundMessage:
    base = dict(
        idempotency_key="loa1t1c1",
        phone="84901234567",
        template_id="205644",
        template_data={"customer_name": "An", "order_code": "DH1"},
        param_order=("customer_name", "order_code"),
        oa_id=OA_ID,
        fallback_sms=NativeSms(
            content="Đơn DH1 đã giao", idempotency_key="loa1t1c1s1", unicode=True
        ),
    )
    return OutboundMessage(**(base | kw))


def _config(kind: str, settings: dict):
    from providers.base import AccountConfig

    secrets = {"api_key": "k", "secret_key": "s"}
    return AccountConfig(
        1,
        kind,
        "https://example.test",
        secrets,
        settings,
        webhook_url="https://loa.test/webhooks/t/",
    )


def test_etelecom_payload_asks_the_sms_fallback():
    provider = EtelecomProvider(_config("etelecom", {"sms_brandname": "LOA"}))
    method, body = provider.build_payload(_out())
    assert method == "SendZNS"
    assert body["tracking_id"] == "loa1t1c1"  # step 0's key: the leg is found through it
    assert body["enable_sms_on_zns_failure"] is True
    assert body["sms"] == {"message": "Đơn DH1 đã giao", "unicode": True, "brandname": "LOA"}
    # without a fallback: exactly the seed-004 request as before
    _m, plain = provider.build_payload(_out(fallback_sms=None))
    assert "enable_sms_on_zns_failure" not in plain and "sms" not in plain


def test_esms_payload_is_the_multichannel_message_of_its_page():
    provider = EsmsProvider(_config("esms", {"sms_brandname": "LOA"}))
    url, body = provider.build_payload(_out(campaign_name="Gửi OTP"))
    assert url.endswith("/MultiChannelMessage/")
    assert body["Channels"] == ["zalo", "sms"]
    assert body["Phone"] == "0901234567"
    zns, sms = body["Data"]
    assert zns == {
        "TempID": "205644",
        "Params": ["An", "DH1"],
        "OAID": OA_ID,
        "campaignid": "Gửi OTP",
        "RequestId": "loa1t1c1",
        "CallbackUrl": "https://loa.test/webhooks/t/",
        "Sandbox": "0",
    }
    assert sms == {
        "Content": "Đơn DH1 đã giao",
        "IsUnicode": "1",
        "SmsType": "2",
        "Brandname": "LOA",
        "RequestId": "loa1t1c1s1",  # the step's own key: its callback names its own row
        "CallbackUrl": "https://loa.test/webhooks/t/",
        "Sandbox": "0",
    }
    # no brandname: refused as a configuration error before anything leaves
    bare = EsmsProvider(_config("esms", {}))
    result = bare.send(_out())
    assert result.error_class == "configuration" and result.error_code == "missing_brandname"


def test_etelecom_sms_block_reads_as_the_leg():
    msg = {
        "msg_id": "z1",
        "tracking_id": "loa1t1c1",
        "status": "N",
        "error_code": -118,
        "is_charged": True,
        "fee_main": 750,
        "sms": {"status": "Z", "send_time": "2026-12-04T03:00:00Z", "code": 0},
    }
    leg = sms_leg_event(msg)
    assert leg.leg == 1 and leg.status == EventStatus.SENT and leg.fee == Decimal(750)
    assert leg.idempotency_key == "loa1t1c1" and leg.provider_message_id == "z1:sms"
    assert sms_leg_event({**msg, "sms": {**msg["sms"], "status": "P"}}).status == "delivered"
    failed = sms_leg_event({**msg, "sms": {"status": "N", "code": 12, "status_description": "x"}})
    assert failed.status == EventStatus.FAILED and failed.error_code == "12"
    assert sms_leg_event({k: v for k, v in msg.items() if k != "sms"}) is None


# ---- the chain over HTTP -------------------------------------------------------------------------
@pytest.mark.parametrize("provider", ["etelecom", "esms"])
def test_one_request_and_both_steps_recorded(provider):
    with _fake(provider) as fake:
        campaign = _chain(fake, provider)
        assert campaign_check_sendable(campaign) == []
        campaign_send_now(campaign_id=campaign.pk)
        # one request per recipient, through the campaign's own provider; none to the MMP
        assert not [k for (p, k) in fake.calls_by_key if p == "mmp"]
        assert not fake.refusals, fake.refusals
        sent_sms = {r["phone"] for r in fake.sms_fallbacks}
        expected = NO_ZALO - {SMS_OPTED_OUT}
        assert sent_sms == ({LOCAL[p] for p in expected} if provider == "esms" else expected)
        if provider == "etelecom":
            # the answer's sms block: the step's row, sent, with its fee (assumed: fee_main)
            sms = _sms_rows(campaign)
            assert set(sms) == expected
            assert {m.status for m in sms.values()} == {S.SENT}
            assert {m.fee for m in sms.values()} == {Decimal(750)}
        else:
            assert not _sms_rows(campaign)  # eSMS says nothing but the SMSID in its answer
        # Loa's own sweep never builds a provider-mode step, and does not wait for one
        assert campaign_fall_back(campaign_id=campaign.pk) == 0
        assert not campaign_fallback_waiting(campaign_id=campaign.pk)

        _deliver(fake, campaign)
        zns = {m.phone: m for m in Message.objects.filter(campaign=campaign, step=0)}
        assert {p for p, m in zns.items() if m.status == S.FAILED} == NO_ZALO
        sms = _sms_rows(campaign)
        assert set(sms) == expected  # the opted-out one: no SMS asked, no row
        for m in sms.values():
            assert m.status == S.DELIVERED
            assert m.fee == Decimal(750)
            assert m.idempotency_key == zns[m.phone].idempotency_key + "s1"
            assert m.template_data == {"ten": m.contact.name, "ma": m.contact.attributes["order"]}
        campaign.refresh_from_db()
        assert campaign.fallback_count == len(expected)
        assert campaign.delivered_count == len(PHONES) - len(NO_ZALO) + len(expected)

        funnel = campaign_step_funnel(campaign=campaign)
        assert funnel.steps[1].native and funnel.steps[1].delivered == len(expected)
        assert funnel.steps[0].fell_back == len(expected)
        assert funnel.steps[1].cost == Decimal(750) * len(expected)


@pytest.mark.parametrize("provider", ["etelecom", "esms"])
def test_the_same_answer_twice_records_one_row(provider):
    with _fake(provider) as fake:
        campaign = _chain(fake, provider)
        campaign_send_now(campaign_id=campaign.pk)
        with fake.lock:
            owed = list(fake.outbox)
        _deliver(fake, campaign)
        before = list(Message.objects.filter(campaign=campaign).order_by("pk").values())
        counters = Campaign.objects.filter(pk=campaign.pk).values().get()
        with fake.lock:
            fake.outbox.extend(owed)  # every callback again (a provider's retry)
        _deliver(fake, campaign)
        after = list(Message.objects.filter(campaign=campaign).order_by("pk").values())
        assert after == before
        assert Campaign.objects.filter(pk=campaign.pk).values().get() == counters


def test_leg_record_is_idempotent_and_stays_in_its_account():
    with _fake("etelecom") as fake:
        campaign = _chain(fake, "etelecom")
        zns_row = Message.objects.none()
        campaign_send_now(campaign_id=campaign.pk)
        zns_row = Message.objects.get(campaign=campaign, step=0, phone=PHONES[1])
        Message.objects.filter(campaign=campaign, step=1).delete()
        account = campaign.channel.account_id

        def leg():
            return StatusEvent(
                EventStatus.SENT,
                idempotency_key=zns_row.idempotency_key,
                provider_message_id="z:sms",
                fee=Decimal(700),
                leg=1,
            )

        assert legs_record(account_id=account, events=[leg()]) == 1
        assert legs_record(account_id=account, events=[leg()]) == 0
        rows = Message.objects.filter(campaign=campaign, step=1)
        assert rows.count() == 1 and rows.get().status == S.SENT
        # another account's callback naming this campaign's key builds nothing
        mmp = FallbackStep.objects.get(campaign=campaign).channel.account_id
        other = leg()
        other.idempotency_key = Message.objects.get(
            campaign=campaign, step=0, phone=PHONES[2]
        ).idempotency_key
        assert legs_record(account_id=mmp, events=[other]) == 0
        assert rows.count() == 1
        # and a leg never lands on the step-0 row whose key it carries
        zns_row.refresh_from_db()
        assert zns_row.status == S.FAILED and zns_row.error_code == "-118"


def test_per_recipient_steps_page_by_page(admin_client):
    from campaigns.selectors.fallback import campaign_recipient_steps

    with _fake("etelecom") as fake:
        campaign = _chain(fake, "etelecom")
        campaign_send_now(campaign_id=campaign.pk)
        _deliver(fake, campaign)
        seen, after, pages = {}, 0, 0
        while True:
            page = campaign_recipient_steps(campaign=campaign, after=after, limit=4)
            pages += 1
            seen.update({r.phone: r for r in page.rows})
            if page.next_after is None:
                break
            after = page.next_after
        assert pages == 2 and set(seen) == set(PHONES)
        for phone, row in seen.items():
            if phone in NO_ZALO - {SMS_OPTED_OUT}:
                assert row.reached_by == 1
                assert row.steps[0]["error_code"] == "-118"
                assert row.steps[1]["status"] == S.DELIVERED
                assert row.steps[1]["fee"] == Decimal(750)
            elif phone == SMS_OPTED_OUT:
                assert row.reached_by is None and row.steps[1] is None
            else:
                assert row.reached_by == 0 and row.steps[1] is None
        html = admin_client.get(f"/admin/campaigns/campaign/{campaign.pk}/change/").content
        assert b'id="recipient-steps-table"' in html
        assert b"funnel-native" in html  # the step marked as the provider's own fallback
        bad = admin_client.get(f"/admin/campaigns/campaign/{campaign.pk}/change/?after=9")
        assert bad.status_code == 200
        huge = admin_client.get(f"/admin/campaigns/campaign/{campaign.pk}/change/?after={'9' * 40}")
        assert huge.status_code == 200


def test_an_sms_block_for_a_step_in_loas_own_mode_builds_nothing():
    """eTelecom reports an SMS leg for a message whose chain step is Loa's own: no row is built
    from it, the message's own status is applied, and the callback is not "unmatched"."""
    from webhooks.applier import webhook_events_apply
    from webhooks.models import WebhookEvent
    from webhooks.services import webhook_receive

    with _fake("etelecom") as fake:
        campaign = _chain(fake, "etelecom")
        FallbackStep.objects.filter(campaign=campaign).update(mode=FallbackStep.Mode.LOA)
        zns = Message.objects.create(
            campaign=campaign,
            contact=Contact.objects.get(phone=PHONES[4]),
            phone=PHONES[4],
            idempotency_key="loa-x",
            status=S.SENT,
            provider_message_id="zmsg-4",
        )
        payload = {
            "msg_id": "zmsg-4",
            "tracking_id": "",
            "oa_id": OA_ID,
            "status": "P",
            "delivery_status": "received",
            "error_code": 0,
            "sms": {"status": "Z", "code": 0},
        }
        webhook_receive(
            account=campaign.channel.account,
            method="POST",
            query_string="",
            body=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json"},
        )
        while webhook_events_apply():
            pass
        zns.refresh_from_db()
        assert zns.status == S.DELIVERED
        assert not Message.objects.filter(campaign=campaign, step=1).exists()
        assert WebhookEvent.objects.get().outcome == WebhookEvent.Outcome.APPLIED
