"""Issue 15: a provider that cannot be reached. The requests never arrive, so no recipient is
burned: the messages stay pending, the campaign pauses within seconds saying why in words a
marketer reads, the outage is readable by the campaign page and the dashboard, and resume sends
every one of them. Failures that prove the provider did not take a message can be retried by a
person (campaign_retry_failed); refusals never are. Real HTTP: a closed port, then the fake
provider's server."""

import re
import time

import pytest
from django.test import override_settings
from django.utils import translation

from bench.fake_provider import FakeProviders
from campaigns.engine.lifecycle import campaign_resume, campaign_retry_failed, campaign_send_now
from campaigns.engine.outage import campaign_outage, campaigns_in_outage
from campaigns.models import Campaign, Message, MessageAttempt
from providers import errors
from providers.base import ErrorClass
from providers.models import ProviderAccount
from providers.shared.errors import Refused
from tests.conftest import free_port
from tests.factories import (
    CampaignFactory,
    ChannelFactory,
    ContactListFactory,
    ProviderAccountFactory,
    TemplateFactory,
)

pytestmark = pytest.mark.django_db(transaction=True)

LOA = __import__("django.conf").conf.settings.LOA


def _etelecom_campaign(base_url: str, n: int) -> Campaign:
    account = ProviderAccountFactory(
        kind="etelecom",
        base_url=base_url,
        secrets={"api_key": "shop-key"},
        settings={"http": {"connect_timeout": 0.5, "read_timeout": 2}},
    )
    channel = ChannelFactory(account=account)
    template = TemplateFactory(account=account, provider_template_id="205644")
    return CampaignFactory(channel=channel, template=template, lists=[ContactListFactory(size=n)])


@override_settings(LOA={**LOA, "OUTAGE_PAUSE_AFTER": 5})
def test_provider_outage_pauses_fast_burns_no_recipient_and_resume_sends_them_all():
    campaign = _etelecom_campaign(f"http://127.0.0.1:{free_port()}/etelecom", 30)  # nothing listens
    started = time.monotonic()
    campaign_send_now(campaign_id=campaign.pk)
    assert time.monotonic() - started < 60  # the campaign page says so within a minute
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PAUSED
    with translation.override("en"):
        reason = campaign.reason_text()
        assert "cannot reach the provider" in reason and "No message was lost" in reason
        outage = campaign_outage(campaign)
    assert outage is not None and outage.code == "connect_error" and outage.paused
    assert "refuses the connection" in outage.error
    assert list(campaigns_in_outage()) == [campaign]
    rows = Message.objects.filter(campaign=campaign)
    # Nothing failed, nothing was burned: every message is still to send, none used an attempt.
    assert set(rows.values_list("status", flat=True)) == {"pending"}
    assert set(rows.values_list("attempts", flat=True)) == {0}
    assert campaign.failed_count == 0 and campaign.sent_count == 0
    # The calls that happened are on record; the messages not attempted have no attempt row.
    calls = MessageAttempt.objects.filter(message__campaign=campaign)
    assert 5 <= calls.count() < 30
    assert set(calls.values_list("error", "in_flight")) == {("connect_error", False)}

    with FakeProviders(latency_ms=0, callbacks=False) as fake:
        ProviderAccount.objects.filter(pk=campaign.channel.account_id).update(
            base_url=fake.url("etelecom")
        )
        assert campaign_resume(campaign_id=campaign.pk)  # drivers run inline in tests
        keys = list(rows.values_list("idempotency_key", flat=True))
        assert [fake.count("etelecom", k) for k in keys] == [1] * 30
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.COMPLETED and campaign.sent_count == 30
    assert campaign_outage(campaign) is None


@override_settings(LOA={**LOA, "OUTAGE_PAUSE_AFTER": 50})
def test_a_connection_failure_waits_and_is_not_counted_against_the_retries():
    """Below the outage threshold, a connection failure waits (backoff) and does not count: a
    message that met an unreachable provider many times still has all its tries left."""
    campaign = _etelecom_campaign(f"http://127.0.0.1:{free_port()}/etelecom", 3)
    campaign_send_now(campaign_id=campaign.pk)
    rows = Message.objects.filter(campaign=campaign)
    assert set(rows.values_list("status", "attempts", "error_code")) == {
        ("pending", 0, "connect_error")
    }
    assert all(m.next_attempt_at is not None for m in rows)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.RUNNING  # waiting out the backoff, visibly:
    assert campaign_outage(campaign).failures == 3


def test_retry_failed_requeues_only_what_the_provider_did_not_take():
    campaign = CampaignFactory(lists=[ContactListFactory(size=6)])  # sandbox
    campaign_send_now(campaign_id=campaign.pk)
    rows = list(Message.objects.filter(campaign=campaign).order_by("pk"))
    failures = [
        (ErrorClass.RETRYABLE, "connect_error"),  # a connection error, before issue 15
        (ErrorClass.RETRYABLE, "http_429"),  # rate limited MAX_RETRIES times
        (ErrorClass.PERMANENT, "-118"),  # the recipient has no Zalo account: never
        (ErrorClass.PERMANENT, "esms_failed"),  # a receipt said it failed: never
    ]
    for msg, (klass, code) in zip(rows, failures, strict=False):
        Message.objects.filter(pk=msg.pk).update(
            status="failed", error_class=klass, error_code=code, attempts=5
        )
    Campaign.objects.filter(pk=campaign.pk).update(sent_count=2, failed_count=4)
    assert campaign_retry_failed(campaign_id=campaign.pk, user=None) == 2
    by_pk = {m.pk: m for m in Message.objects.filter(campaign=campaign)}
    assert [by_pk[m.pk].status for m in rows[:4]] == ["sent", "sent", "failed", "failed"]
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.COMPLETED  # it ran again and finished
    assert campaign.failed_count == 2 and campaign.sent_count == 4
    events = list(campaign.events.values_list("from_status", "to_status"))
    assert events[-2:] == [("completed", "running"), ("running", "completed")]
    assert campaign_retry_failed(campaign_id=campaign.pk, user=None) == 0


def test_retry_failed_refuses_a_cancelled_campaign():
    campaign = CampaignFactory(lists=[ContactListFactory(size=1)], status="cancelled")
    with pytest.raises(Refused):
        campaign_retry_failed(campaign_id=campaign.pk, user=None)


def test_no_retryable_error_is_explained_as_retried():
    """A retryable failure ends `failed` after MAX_RETRIES: its explanation, shown beside a failed
    message, must not promise that it will be retried or resent."""
    retryable = [c for c, (k, _t) in errors.ZALO_ERRORS.items() if k == ErrorClass.RETRYABLE]
    retryable += [c for c, (k, _t) in errors.ESMS_CODES.items() if k == ErrorClass.RETRYABLE]
    retryable += [c for c, (k, _t) in errors.TWIRP_CODES.items() if k == ErrorClass.RETRYABLE]
    codes = [str(c) for c in retryable] + ["connect_error", "connect_timeout", "http_408"]
    promise = re.compile(r"(will be|it will be) (retried|resent|sent again)")
    with translation.override("en"):
        promising = {c: errors.explain(c) for c in codes if promise.search(errors.explain(c))}
    assert promising == {}
