"""Statuses arrive late, twice and out of order; the numbers must still be right."""

import json
import random
import threading

import pytest
from django.db import connection
from django.urls import reverse

from campaigns.engine.lifecycle import campaign_transition
from campaigns.engine.materialize import campaign_materialize
from campaigns.models import Campaign, Message
from tests.factories import CampaignFactory, ContactListFactory
from webhooks.services import webhook_receive

pytestmark = pytest.mark.django_db(transaction=True)


def _campaign(n: int) -> Campaign:
    cl = ContactListFactory(size=n)
    campaign = CampaignFactory(lists=[cl])
    campaign_transition(campaign_id=campaign.pk, to=Campaign.Status.RUNNING)
    campaign_materialize(campaign_id=campaign.pk)
    # Every message accepted by the provider with an id, as after a send.
    for m in Message.objects.filter(campaign=campaign):
        Message.objects.filter(pk=m.pk).update(status="sent", provider_message_id=f"zmsg-{m.pk}")
    Campaign.objects.filter(pk=campaign.pk).update(sent_count=n)
    return campaign


def _events_for(messages, rnd):
    """A realistic story per message: delivered then read, or failed, or delivered only."""
    events = []
    for m in messages:
        fate = rnd.random()
        steps = (
            ["delivered", "read"] if fate < 0.5 else (["failed"] if fate < 0.6 else ["delivered"])
        )
        for i, step in enumerate(steps):
            events.append(
                {
                    "msg_id": m.provider_message_id,
                    "tracking_id": m.idempotency_key,
                    "status": step,
                    "error": -118 if step == "failed" else 0,
                    "message": "Zalo account not existed",
                    "timestamp": 1_700_000_000_000 + i * 1000,
                    "fee": "300" if step == "delivered" else None,
                }
            )
    return events


def _post(account, payload):
    return webhook_receive(
        account=account,
        method="POST",
        query_string="",
        body=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
    )


def _snapshot(campaign):
    campaign.refresh_from_db()
    statuses = dict(
        Message.objects.filter(campaign=campaign).values_list("provider_message_id", "status")
    )
    counters = (
        campaign.sent_count,
        campaign.delivered_count,
        campaign.read_count,
        campaign.failed_count,
        campaign.cost,
    )
    return statuses, counters


@pytest.fixture
def batch_apply(monkeypatch):
    """Store callbacks without applying each one (as under load), apply in batches on demand."""
    from webhooks import applier
    from webhooks import services as ws

    monkeypatch.setattr(ws, "_trigger_applier", lambda: None)
    return applier.webhook_events_apply


def test_10000_events_shuffled_and_duplicated_end_like_in_order(batch_apply):
    rnd = random.Random(7)
    a = _campaign(2000)
    b = _campaign(2000)
    msgs_a = list(Message.objects.filter(campaign=a).order_by("pk"))
    msgs_b = list(Message.objects.filter(campaign=b).order_by("pk"))
    story = _events_for(msgs_a, random.Random(1))
    # the same story for campaign b, in a different order and with duplicates
    by_index = {m.provider_message_id: i for i, m in enumerate(msgs_a)}
    story_b = [
        dict(
            e,
            msg_id=msgs_b[by_index[e["msg_id"]]].provider_message_id,
            tracking_id=msgs_b[by_index[e["msg_id"]]].idempotency_key,
        )
        for e in story
    ]
    replay = story_b + rnd.sample(story_b, k=len(story_b) // 2)
    while len(replay) < 10_000:
        replay.append(rnd.choice(story_b))
    rnd.shuffle(replay)
    account_a = a.channel.account
    account_b = b.channel.account
    for e in story:
        _post(account_a, e)
        batch_apply()  # in order, one by one
    for i, e in enumerate(replay):
        _post(account_b, e)
        if i % 997 == 0:
            batch_apply()  # shuffled, applied in uneven batches
    while batch_apply():
        pass
    statuses_a, counters_a = _snapshot(a)
    statuses_b, counters_b = _snapshot(b)
    assert len(replay) >= 10_000
    mapped = {msgs_b[by_index[k]].provider_message_id: v for k, v in statuses_a.items()}
    assert statuses_b == mapped
    assert counters_a == counters_b
    # counters equal what the provider reported, exactly once each
    assert counters_b[2] == sum(1 for s in statuses_b.values() if s == "read")
    assert counters_b[3] == sum(1 for s in statuses_b.values() if s == "failed")


def test_concurrent_callbacks_for_one_message_lose_no_update(postgres_only):
    campaign = _campaign(40)
    account = campaign.channel.account
    msgs = list(Message.objects.filter(campaign=campaign))
    payloads = []
    for m in msgs:
        for status in ("delivered", "read"):
            payloads += [{"msg_id": m.provider_message_id, "status": status, "timestamp": 1}] * 3
    random.Random(3).shuffle(payloads)
    chunks = [payloads[i::8] for i in range(8)]
    errors = []

    def worker(chunk):
        try:
            for p in chunk:
                _post(account, p)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(c,)) for c in chunks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    campaign.refresh_from_db()
    assert campaign.read_count == 40 and campaign.delivered_count == 40
    assert set(Message.objects.filter(campaign=campaign).values_list("status", flat=True)) == {
        "read"
    }


def test_http_endpoint_answers_duplicates_with_200(client):
    campaign = _campaign(1)
    m = Message.objects.get(campaign=campaign)
    url = reverse("webhooks:receive", args=[campaign.channel.account.webhook_token])
    body = json.dumps({"msg_id": m.provider_message_id, "status": "read", "timestamp": 5})
    r1 = client.post(url, body, content_type="application/json")
    r2 = client.post(url, body, content_type="application/json")
    assert (r1.status_code, r1.json()["status"]) == (200, "received")
    assert (r2.status_code, r2.json()["status"]) == (200, "duplicate")
    m.refresh_from_db()
    assert m.status == "read"  # applied by the webhook task (inline in tests)
