"""Issue 15: a campaign's status tells the truth. Completed means nothing is left to send or settle;
while outcomes are unknown it is settling ("sent, confirming outcomes"), and reconciliation
settling rows never moves it back and forth. Cancelled messages are counted as cancelled, also
those of a batch that was in flight when the campaign was cancelled."""

import threading

import pytest

from campaigns.engine.lifecycle import campaign_cancel, campaign_send_now, campaign_transition
from campaigns.engine.materialize import campaign_materialize
from campaigns.engine.reconcile import messages_reconcile
from campaigns.engine.scheduler import campaigns_kick_running
from campaigns.models import Campaign, Message
from providers import registry
from providers.base import BaseProvider, ErrorClass, EventStatus, SendResult, StatusEvent
from tests.factories import CampaignFactory, ContactListFactory, ProviderAccountFactory

pytestmark = pytest.mark.django_db(transaction=True)


class FlakyProvider(BaseProvider):
    """Times out (outcome unknown) on a message's first send, accepts it after; dedupes our key
    within a day (as eSMS does), so reconciliation may resend an unknown message; status polls
    answer a delivery for every second message they are asked about."""

    kind = "flaky"
    label = "Flaky (tests)"
    uses_http = False
    dedupes_idempotency_key = True
    dedupe_window_seconds = 86400
    sent: dict[str, int] = {}
    polls = 0
    lock = threading.Lock()

    def send(self, message):
        with self.lock:
            n = FlakyProvider.sent[message.idempotency_key] = (
                FlakyProvider.sent.get(message.idempotency_key, 0) + 1
            )
        if n == 1 and message.phone[-1] in "02468":
            return SendResult.failed(ErrorClass.AMBIGUOUS, "read_timeout", "timeout")
        return SendResult.accepted(f"id-{message.idempotency_key}")

    def fetch_status(self, *, provider_message_id, idempotency_key, oa_id="", **kw):
        FlakyProvider.polls += 1
        if FlakyProvider.polls % 2:
            return StatusEvent(EventStatus.DELIVERED, idempotency_key=idempotency_key)
        return None


@pytest.fixture
def flaky(monkeypatch):
    monkeypatch.setitem(registry.PROVIDERS, "flaky", FlakyProvider)
    FlakyProvider.sent, FlakyProvider.polls = {}, 0
    return FlakyProvider


def test_reconciliation_settling_rows_never_flaps_the_campaign_status(flaky):
    account = ProviderAccountFactory(kind="flaky")
    campaign = CampaignFactory(channel__account=account, lists=[ContactListFactory(size=20)])
    campaign_send_now(campaign_id=campaign.pk)
    campaign.refresh_from_db()
    assert campaign.unknown_count == 10
    # Every message was handed over, ten outcomes are unknown: not completed.
    assert campaign.status == Campaign.Status.SETTLING
    seen = [campaign.status]
    for _round in range(12):
        Message.objects.filter(campaign=campaign, status="unknown").update(last_polled_at=None)
        messages_reconcile()
        campaigns_kick_running(idle_seconds=0)  # the tick
        campaign.refresh_from_db()
        if campaign.status != seen[-1]:
            seen.append(campaign.status)
        if Message.objects.filter(campaign=campaign, status="unknown").exists():
            assert campaign.status != Campaign.Status.COMPLETED
    assert seen == [Campaign.Status.SETTLING, Campaign.Status.COMPLETED], seen
    history = list(campaign.events.values_list("from_status", "to_status"))
    assert history == [
        ("draft", "running"),
        ("running", "settling"),
        ("settling", "completed"),
    ], history
    assert not Message.objects.filter(campaign=campaign, status__in=["unknown", "pending"]).exists()
    assert campaign.unknown_count == 0 and campaign.sent_count == 20


def test_cancel_counts_the_cancelled_messages():
    campaign = CampaignFactory(lists=[ContactListFactory(size=10)])
    campaign_transition(campaign_id=campaign.pk, to=Campaign.Status.RUNNING)
    campaign_materialize(campaign_id=campaign.pk)
    assert campaign_cancel(campaign_id=campaign.pk) == 10
    campaign.refresh_from_db()
    assert campaign.cancelled_count == 10 and campaign.progress_percent == 100


class CancelledMidBatch(BaseProvider):
    """The campaign is cancelled while its batch is at the provider, which asks to retry later."""

    kind = "cancelled_mid_batch"
    label = "Cancelled mid-batch (tests)"
    uses_http = False
    campaign_id = 0

    def send(self, message):
        if message.phone.endswith("0"):
            campaign_cancel(campaign_id=CancelledMidBatch.campaign_id)
        return SendResult.failed(ErrorClass.RETRYABLE, "http_429", "slow down", retry_after=5)


def test_a_batch_in_flight_at_cancel_ends_cancelled_and_counted(monkeypatch, settings):
    settings.LOA = {**settings.LOA, "SEND_CONCURRENCY": 1}
    monkeypatch.setitem(registry.PROVIDERS, "cancelled_mid_batch", CancelledMidBatch)
    account = ProviderAccountFactory(kind="cancelled_mid_batch")
    campaign = CampaignFactory(channel__account=account, lists=[ContactListFactory(size=12)])
    CancelledMidBatch.campaign_id = campaign.pk
    campaign_send_now(campaign_id=campaign.pk)
    campaign.refresh_from_db()
    statuses = list(Message.objects.filter(campaign=campaign).values_list("status", flat=True))
    assert campaign.status == Campaign.Status.CANCELLED
    assert set(statuses) == {"cancelled"}, statuses
    assert campaign.cancelled_count == 12
