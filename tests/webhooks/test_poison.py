"""Poison callbacks: one callback that cannot be applied must never block the others.

For each provider kind (sandbox, eSMS, eTelecom, VNA MMP, Metfone MMP): a bad callback (a NUL
byte in an identifier, a fee of 1e20 / NaN / Infinity / -5e9, a lone surrogate) followed by good
ones, through the real path (HTTP -> view -> webhook_receive -> the applier, which the test
settings run inline). The good ones apply, the bad one is kept with its reason, and the campaign's
cost stays a true sum of sane fees. The same again with the bad event already stored (as an
earlier version's intake let it through), and with a value the checks do not catch reaching the
database (the applier's per-event isolation). Runs on SQLite and on PostgreSQL (NUL bytes and
numeric overflow fail differently there: `DATABASE_URL=postgres://... pytest tests/webhooks`).
"""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal
from urllib.parse import quote, urlencode

import pytest
from django.db import connection
from django.urls import reverse

from campaigns.models import Campaign, Message, OptOut
from tests.factories import (
    CampaignFactory,
    ChannelFactory,
    ContactFactory,
    ProviderAccountFactory,
    message_for,
)
from webhooks.models import InboundMessage, WebhookEvent

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("clear_cache")]

OUT = WebhookEvent.Outcome
KINDS = ("sandbox", "esms", "etelecom", "vna_mmp", "metfone_mmp")
SECRETS = {
    "sandbox": {},
    "esms": {"api_key": "AK-test", "secret_key": "SK-test"},
    "etelecom": {"api_key": "ek-test"},
    "vna_mmp": {"api_key": "mk-test"},
    "metfone_mmp": {"api_key": "mk-test"},
}
CHANNEL = {"sandbox": "zalo_zns", "esms": "zalo_zns", "etelecom": "zalo_zns"}
FEE_KINDS = {"sandbox", "esms", "etelecom"}  # MMP's webhooks carry no fee


def campaign_of(kind: str, n: int = 3) -> Campaign:
    """A campaign of `kind` whose n messages were accepted by the provider (status sent)."""
    account = ProviderAccountFactory(kind=kind, secrets=SECRETS[kind] or None)
    if kind in CHANNEL:
        channel = ChannelFactory(account=account, kind=CHANNEL[kind])
    else:
        channel = ChannelFactory(
            account=account, kind="sms", official_account=None, external_id="ch-1"
        )
    campaign = CampaignFactory(channel=channel)
    contacts = ContactFactory.create_batch(n)
    Message.objects.bulk_create(
        [
            message_for(campaign, c, status="sent", provider_message_id=f"pm-{kind}-{i}")
            for i, c in enumerate(contacts)
        ]
    )
    Campaign.objects.filter(pk=campaign.pk).update(status="running", sent_count=n)
    return campaign


def good(kind: str, m: Message) -> dict:
    """A documented "delivered" callback for message m, as the provider sends it."""
    pid, key = m.provider_message_id, m.idempotency_key
    if kind == "esms":
        return {
            "method": "GET",
            "query": urlencode(
                {
                    "SMSID": pid,
                    "RequestId": key,
                    "SendStatus": "5",
                    "SendSuccess": "1",
                    "SendFailed": "0",
                    "TotalPrice": "300",
                }
            ),
        }
    if kind == "sandbox":
        body = {"msg_id": pid, "tracking_id": key, "status": "delivered", "fee": "300"}
    elif kind == "etelecom":
        body = {
            "msg_id": pid,
            "tracking_id": key,
            "status": "P",
            "delivery_status": "received",
            "error_code": 0,
            "is_charged": True,
            "fee_main": 300,
            "updated_at": "2025-11-02T02:07:00Z",
        }
    else:
        body = {
            "messageId": pid,
            "clientMessageId": key,
            "cause": "DELIVERED",
            "status": 4,
            "type": 1,
            "timestamp": 1749539924549,
        }
    return {"method": "POST", "body": json.dumps(body)}


# Each poison turns a good callback into the bad one seen in the check (kind -> name -> how).
def _esms(**fields):
    def make(kind, m):
        spec = good(kind, m)
        q = dict(x.split("=", 1) for x in spec["query"].split("&"))
        q.update(fields)
        return {"method": "GET", "query": "&".join(f"{k}={v}" for k, v in q.items())}

    return make


def _json(**fields):
    def make(kind, m):
        body = json.loads(good(kind, m)["body"])
        body.update(fields)
        return {"method": "POST", "body": json.dumps(body)}

    return make


POISONS = {
    "esms": {
        "nul_smsid": _esms(SMSID="%00%00", RequestId=""),
        "fee_1e20": _esms(TotalPrice="1e20"),
        "fee_nan": _esms(TotalPrice="NaN"),
        "fee_infinity": _esms(TotalPrice="Infinity"),
        "fee_negative": _esms(TotalPrice="-5e9"),
    },
    "sandbox": {
        "nul_msg_id": _json(msg_id="\u0000", tracking_id=""),
        "fee_1e20": _json(fee="1e20"),
        "fee_nan": _json(fee="NaN"),
        "fee_infinity": _json(fee="Infinity"),
        "fee_negative": _json(fee="-5e9"),
    },
    "etelecom": {
        "nul_tracking_id": _json(tracking_id="\u0000", msg_id="x\u0000"),
        "surrogate_msg_id": _json(msg_id="\ud800", tracking_id=""),
        "fee_1e20": _json(fee_main="1e20"),
        "fee_nan": _json(fee_main="NaN"),
        "fee_negative": _json(fee_main="-5e9"),
        "date_overflow": _json(delivery_time="9999-12-31T23:59:59-14:00"),
    },
    "vna_mmp": {
        "nul_message_id": _json(messageId="\u0000", clientMessageId=""),
        "surrogate_message_id": _json(messageId="\ud800\u0000", clientMessageId=""),
    },
    "metfone_mmp": {
        "nul_message_id": _json(messageId="\u0000", clientMessageId="k\u0000"),
    },
}
CASES = [(kind, name) for kind in KINDS for name in POISONS[kind]]


def deliver(client, account, spec: dict):
    url = reverse("webhooks:receive", args=[account.webhook_token])
    if spec["method"] == "GET":
        return client.get(url, QUERY_STRING=spec["query"])
    return client.post(url, spec["body"], content_type="application/json")


def assert_good_ones_applied(campaign: Campaign, kind: str, good_ones: list[Message]) -> None:
    """The good callbacks applied (delivered, fee 300 each where the provider sends fees), the
    campaign's counters equal to its rows, its cost the sum of the good fees, nothing waiting."""
    campaign.refresh_from_db()
    rows = {m.pk: m for m in Message.objects.filter(campaign=campaign)}
    assert {rows[m.pk].status for m in good_ones} == {"delivered"}
    assert {rows[m.pk].fee for m in good_ones} == ({Decimal(300)} if kind in FEE_KINDS else {None})
    reached = sum(1 for m in rows.values() if m.status in ("delivered", "read"))
    assert campaign.delivered_count == reached
    assert campaign.cost == sum((m.fee or 0 for m in rows.values()), Decimal(0))
    assert all(0 <= m.fee <= 300 for m in rows.values() if m.fee is not None)
    assert not WebhookEvent.objects.filter(outcome=OUT.RECEIVED).exists()


@pytest.mark.parametrize(("kind", "poison"), CASES)
def test_poison_callback_does_not_block_the_good_ones(client, kind, poison):
    campaign = campaign_of(kind, n=4)
    account = campaign.channel.account
    victim, *others = Message.objects.filter(campaign=campaign).order_by("pk")
    r = deliver(client, account, POISONS[kind][poison](kind, victim))
    assert r.status_code in (200, 400), r.content
    for m in others:
        assert deliver(client, account, good(kind, m)).status_code == 200
    assert_good_ones_applied(campaign, kind, others)
    bad = WebhookEvent.objects.exclude(outcome=OUT.APPLIED)
    assert bad.count() <= 1, list(bad.values("outcome", "outcome_detail"))
    event = WebhookEvent.objects.order_by("pk").first()
    # Refused at intake with its reason, or applied with the unbelievable part dropped and said.
    assert event.outcome in (OUT.REJECTED, OUT.APPLIED) and event.outcome_detail
    if event.outcome == OUT.APPLIED:
        assert "ignored" in event.outcome_detail
    if poison.startswith("fee"):
        victim.refresh_from_db()
        assert victim.fee is None


@pytest.mark.parametrize(("kind", "poison"), CASES)
def test_poison_already_stored_does_not_block_the_good_ones(client, kind, poison):
    """The bad event is in the table as an earlier intake stored it (outcome received): the
    applier takes it first in every batch, and must isolate it."""
    campaign = campaign_of(kind, n=4)
    account = campaign.channel.account
    victim, *others = Message.objects.filter(campaign=campaign).order_by("pk")
    spec = POISONS[kind][poison](kind, victim)
    stored = WebhookEvent.objects.create(
        account=account,
        method=spec["method"],
        query=spec.get("query", ""),
        body=spec.get("body", ""),  # the JSON escape \u0000 is stored as it came
        dedupe_key=f"old-{poison}",
    )
    for m in others:
        assert deliver(client, account, good(kind, m)).status_code == 200
    assert_good_ones_applied(campaign, kind, others)
    stored.refresh_from_db()
    assert stored.outcome in (OUT.REJECTED, OUT.APPLIED) and stored.outcome_detail


@pytest.mark.parametrize(
    ("fee", "reason"),
    [("-5e9", "negative"), ("1e20", "above"), ("NaN", "not a number"), ("Infinity", "not")],
)
def test_fee_negative_or_absurd_never_reaches_the_campaign_cost(client, fee, reason):
    """TotalPrice=-5e9 made a campaign cost -4,999,998,500 VND."""
    campaign = campaign_of("esms", n=1)
    m = Message.objects.get(campaign=campaign)
    spec = _esms(TotalPrice=fee)("esms", m)
    assert deliver(client, campaign.channel.account, spec).status_code in (200, 400)
    campaign.refresh_from_db()
    m.refresh_from_db()
    assert campaign.cost == 0 and m.fee is None
    event = WebhookEvent.objects.get()
    assert reason in event.outcome_detail.lower()
    if event.outcome == OUT.APPLIED:  # the status is true; only the fee was refused
        assert m.status == "delivered" and campaign.delivered_count == 1


def test_fee_at_the_bound_is_kept_above_it_is_refused():
    from campaigns.engine.delivery import FEE_MAX, fee_refusal

    assert fee_refusal(Decimal(300)) == "" and fee_refusal(FEE_MAX) == ""
    assert fee_refusal(FEE_MAX + 1) and fee_refusal(Decimal("-0.01"))
    assert fee_refusal(Decimal("NaN")) and fee_refusal(Decimal("-Infinity"))


def test_poison_reaching_the_database_is_isolated_marked_failed_and_the_rest_apply(
    client, monkeypatch
):
    """A value the intake's checks do not catch (checks switched off here) fails at the database:
    only its own event fails, with the error, visible; the batch's other events apply."""
    from webhooks import parse

    # Only the dedupe key is kept storable (the intake's row); the statuses go through as parsed.
    monkeypatch.setattr(parse, "parsed_check", lambda p: (replace(p, dedupe_key=""), []))
    campaign = campaign_of("sandbox", n=4)
    account = campaign.channel.account
    victim, *others = Message.objects.filter(campaign=campaign).order_by("pk")
    # A lone surrogate cannot be encoded for either database; on PostgreSQL a NUL id fails too.
    deliver(client, account, _json(msg_id="\ud800", tracking_id="")("sandbox", victim))
    deliver(client, account, _json(msg_id="\u0000", tracking_id="x\u0000")("sandbox", victim))
    for m in others:
        assert deliver(client, account, good("sandbox", m)).status_code == 200
    assert_good_ones_applied(campaign, "sandbox", others)
    failed = WebhookEvent.objects.filter(outcome=OUT.FAILED)
    assert failed.count() >= 1
    assert all(e.outcome_detail for e in failed)
    assert failed.count() == (2 if connection.vendor == "postgresql" else 1)


def test_opt_out_replies_are_applied_before_anything_else_in_the_batch(monkeypatch):
    """Statuses and a STOP reply wait in one batch behind a poison: the STOP is applied first,
    and is applied even though the poison fails."""
    from webhooks import applier, inbound, services
    from webhooks.services import webhook_receive

    monkeypatch.setattr(services, "_trigger_applier", lambda: None)
    order: list[str] = []
    real_opt_out, real_apply = inbound.contact_opt_out, applier.messages_apply_events

    def opt_out_spy(**kw):
        order.append("opt-out")
        return real_opt_out(**kw)

    def apply_spy(**kw):
        order.append("statuses")
        return real_apply(**kw)

    monkeypatch.setattr(inbound, "contact_opt_out", opt_out_spy)
    monkeypatch.setattr(applier, "messages_apply_events", apply_spy)
    campaign = campaign_of("vna_mmp", n=4)
    account = campaign.channel.account
    victim, *others = Message.objects.filter(campaign=campaign).order_by("pk")
    posts = [POISONS["vna_mmp"]["nul_message_id"]("vna_mmp", victim)]
    posts += [good("vna_mmp", m) for m in others]
    stop = {
        "from": "conv-1",
        "contact": {"name": "A", "phone": "0901888484"},
        "messageId": "in-1",
        "message": {"type": "text", "message": "STOP"},
        "timestamp": 1749539924549,
        "type": 2,
        "channelId": "ch-1",
    }
    posts.append({"method": "POST", "body": json.dumps(stop)})
    # The poison as an earlier intake stored it, then the rest through today's intake.
    WebhookEvent.objects.create(account=account, method="POST", body=posts[0]["body"])
    for spec in posts[1:]:
        webhook_receive(
            account=account,
            method="POST",
            query_string="",
            body=spec["body"].encode(),
            headers={"Content-Type": "application/json"},
        )
    applier.webhook_events_apply()
    assert order and order[0] == "opt-out"
    assert OptOut.objects.filter(contact__phone="84901888484").exists()
    assert InboundMessage.objects.get().opted_out
    assert_good_ones_applied(campaign, "vna_mmp", others)


def test_nul_in_reply_text_is_cleaned_and_the_reply_kept(client):
    campaign = campaign_of("vna_mmp", n=1)
    account = campaign.channel.account
    reply = {
        "from": "conv-2",
        "contact": {"name": "B\u0000", "phone": ""},
        "messageId": "in-2",
        "message": {"type": "text", "message": "xin\u0000 chao"},
        "timestamp": 1749539924549,
        "type": 2,
        "channelId": "ch-1",
    }
    r = deliver(client, account, {"method": "POST", "body": json.dumps(reply)})
    assert r.status_code == 200
    msg = InboundMessage.objects.get()
    assert msg.text == "xin chao" and msg.sender_name == "B"
    assert WebhookEvent.objects.get().outcome == OUT.APPLIED


def test_quoted_nul_is_rejected_at_intake_with_the_raw_request_kept(client):
    campaign = campaign_of("esms", n=1)
    m = Message.objects.get(campaign=campaign)
    spec = _esms(SMSID=quote("\x00\x00"), RequestId="")("esms", m)
    r = deliver(client, campaign.channel.account, spec)
    assert r.status_code == 400
    event = WebhookEvent.objects.get()
    assert event.outcome == OUT.REJECTED and "SMSID=%00%00" in event.query
    assert "nul" in event.outcome_detail.lower()
