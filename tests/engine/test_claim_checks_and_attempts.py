"""Issue 15: what the engine re-checks at claim time (a template disabled mid-campaign, a channel or
account deactivated: nothing more goes out, the campaign pauses and says why), and the attempt
rows (a call that happened is on record even when the worker died during it)."""

import threading

import pytest
from django.utils import translation

from campaigns.engine.lifecycle import campaign_send_now
from campaigns.engine.reconcile import messages_reap_stuck
from campaigns.models import Campaign, Message, MessageAttempt
from providers import registry
from providers.base import BaseProvider, CallRecord, SendResult
from providers.models import Channel, ProviderAccount
from templates_app.models import Template
from tests.factories import CampaignFactory, ContactListFactory, ProviderAccountFactory

pytestmark = pytest.mark.django_db(transaction=True)


class HookProvider(BaseProvider):
    """Accepts every message like an HTTP provider would (a CallRecord per call); runs `hook`
    on the first call (an admin acting while the campaign sends)."""

    kind = "hook"
    label = "Hook (tests)"
    hook = None
    calls: list[str] = []
    lock = threading.Lock()

    def send(self, message):
        with self.lock:
            first = not HookProvider.calls
            HookProvider.calls.append(message.idempotency_key)
        if first and HookProvider.hook:
            HookProvider.hook()
        self._local.last_call = CallRecord(
            method="POST",
            url="https://provider.example/send",
            status=200,
            duration_ms=3,
            request_body=f'{{"key": "{message.idempotency_key}"}}',
            response_body='{"ok": true}',
        )
        return SendResult.accepted(f"id-{message.idempotency_key}")


@pytest.fixture
def hook(monkeypatch, settings):
    settings.LOA = {**settings.LOA, "SEND_BATCH_SIZE": 10}
    monkeypatch.setitem(registry.PROVIDERS, "hook", HookProvider)
    HookProvider.hook, HookProvider.calls = None, []
    return HookProvider


def _campaign(n: int) -> Campaign:
    account = ProviderAccountFactory(kind="hook")
    return CampaignFactory(channel__account=account, lists=[ContactListFactory(size=n)])


@pytest.mark.parametrize(
    "act,words",
    [
        (
            lambda c: Template.objects.filter(pk=c.template_id).update(status="disabled"),
            "template “{template}” was disabled",
        ),
        (
            lambda c: Template.objects.filter(pk=c.template_id).update(status="deleted"),
            "template “{template}” was deleted",
        ),
        (
            lambda c: Channel.objects.filter(pk=c.channel_id).update(is_active=False),
            "channel “{channel}” was deactivated",
        ),
        (
            lambda c: ProviderAccount.objects.filter(pk=c.channel.account_id).update(
                is_active=False
            ),
            "provider account “{account}” was deactivated",
        ),
    ],
    ids=["template_disabled", "template_deleted", "channel_off", "account_off"],
)
def test_disabled_template_or_channel_mid_campaign_stops_the_next_batch(hook, act, words):
    campaign = _campaign(40)
    hook.hook = lambda: act(campaign)
    campaign_send_now(campaign_id=campaign.pk)
    assert len(hook.calls) == 10  # the batch in flight finished; nothing after it
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PAUSED
    expected = words.format(
        template=campaign.template.name,
        channel=campaign.channel.name,
        account=campaign.channel.account.name,
    )
    with translation.override("en"):
        assert expected in campaign.reason_text()
    assert Message.objects.filter(campaign=campaign, status="pending").count() == 30


def test_every_call_has_its_attempt_row_completed_after_the_answer(hook):
    campaign = _campaign(25)
    campaign_send_now(campaign_id=campaign.pk)
    attempts = MessageAttempt.objects.filter(message__campaign=campaign)
    assert attempts.count() == 25 == len(hook.calls)
    assert not attempts.filter(in_flight=True).exists()
    for attempt in attempts.select_related("message"):
        assert attempt.status_code == 200
        assert attempt.message.idempotency_key in attempt.request_body
        assert attempt.created_at == attempt.message.sent_at  # when the request left


class Killed(BaseException):
    """What SIGKILL does to a worker mid-call: nothing after it runs."""


def test_a_worker_killed_during_its_calls_leaves_the_attempts_on_record(hook):
    campaign = _campaign(8)

    def die():
        raise Killed

    hook.hook = die
    with pytest.raises(Killed):
        campaign_send_now(campaign_id=campaign.pk)
    rows = Message.objects.filter(campaign=campaign)
    assert set(rows.values_list("status", flat=True)) == {"sending"}
    # Each claimed message shows a call that may have reached the provider, not nothing.
    in_flight = MessageAttempt.objects.filter(message__campaign=campaign, in_flight=True)
    assert in_flight.count() == 8
    with translation.override("en"):
        assert "may or may not have reached the provider" in in_flight.first().state_text()
    assert messages_reap_stuck(older_than=0) == 8  # reconciliation takes them from here
