"""Issue 15: recipients that fail the template's parameter rules were sent anyway (the wizard said
1 of 2 fails, then send-now sent both). Each campaign now decides in the wizard: exclude the
failing recipients (default: their messages are skipped with the reason, never handed to the
provider) or block the send. Through the real path: the wizard's draft services and review page
(admin client), send-now, materialize, the driver, the MMP adapter, HTTP (`responses`)."""

import json
from decimal import Decimal

import pytest
import responses
from django.urls import reverse

from campaigns.drafts import campaign_draft_create, campaign_draft_update
from campaigns.engine.lifecycle import campaign_send_now
from campaigns.engine.results import messages_record_results
from campaigns.models import Campaign, Message
from providers.base import SendResult
from providers.shared.errors import Refused
from tests.factories import (
    ChannelFactory,
    ContactFactory,
    ContactListFactory,
    ProviderAccountFactory,
    TemplateFactory,
    message_for,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def admin_client(admin_client):
    """The pages in English (the site's default is Vietnamese): the assertions read English."""
    admin_client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return admin_client


BASE = "https://mmp.example.test"
BROADCAST = f"{BASE}/api/v1/channel/broadcast"
EMAIL_SEND = f"{BASE}/api/v1/email/send"
MAPPING = {
    "customer_name": {"source": "field", "value": "name"},
    "order_code": {"source": "attribute", "value": "order"},
}
TOO_LONG = "Nguyễn Thị Phương Thảo Hoàng Minh Châu"  # 38 characters: the template allows 30


def _draft(user, *, kind="sms", contacts=(), mode=None):
    """A campaign built as the wizard builds it: campaigns.drafts at every step."""
    account = ProviderAccountFactory(
        kind="vna_mmp",
        base_url=BASE,
        secrets={"api_key": "MMP-KEY-1"},
        settings={"email_from": "shop@loa.example"},
    )
    channel = ChannelFactory(account=account, kind=kind, official_account=None, external_id="ch-1")
    template = TemplateFactory(
        account=account, channel_kind=kind, body="Chào {{customer_name}}, đơn {{order_code}}."
    )
    campaign = campaign_draft_create(name="Tháng 12", channel=channel, user=user)
    campaign_draft_update(campaign=campaign, template=template, content="")
    campaign_draft_update(campaign=campaign, lists=[ContactListFactory(contacts=list(contacts))])
    fields = {"param_mapping": MAPPING}
    if mode is not None:
        fields["invalid_recipients"] = mode
    return campaign_draft_update(campaign=campaign, **fields)


def _two_contacts(**extra):
    ok = ContactFactory(name="Nguyễn An", attributes={"order": "DH042", **extra})
    bad = ContactFactory(name=TOO_LONG, attributes={"order": "DH043", **extra})
    return ok, bad


def _review_url(campaign):
    return reverse("admin:campaigns_campaign_wizard", args=[campaign.pk, 5])


@responses.activate
def test_invalid_recipients_excluded_by_default_are_skipped_with_the_reason(
    admin_client, admin_user
):
    responses.add(responses.POST, BROADCAST, json={"messageId": "m-1"})
    ok, bad = _two_contacts()
    campaign = _draft(admin_user, contacts=[ok, bad])
    assert campaign.invalid_recipients == Campaign.InvalidRecipients.EXCLUDE  # the default

    page = admin_client.get(_review_url(campaign)).content.decode()
    assert "1 of 2 recipients fail the template" in page
    assert reverse("admin:templates_app_campaign_validation_report", args=[campaign.pk]) in page

    r = admin_client.post(_review_url(campaign), {"action": "send_now"})
    assert r.status_code == 302
    # The provider received exactly one request: the recipient that passes.
    assert len(responses.calls) == 1
    sent = json.loads(responses.calls[0].request.body)
    assert sent["subscribers"][0]["phone"] == ok.phone
    skipped = Message.objects.get(campaign=campaign, contact=bad)
    assert skipped.status == Message.Status.SKIPPED
    assert skipped.error_code == "invalid_params"
    assert "customer_name" in skipped.error_message and "30" in skipped.error_message
    assert skipped.attempts == 0 and not skipped.provider_message_id
    campaign.refresh_from_db()
    assert campaign.sent_count == 1 and campaign.skipped_count == 1
    assert campaign.status == Campaign.Status.COMPLETED


@responses.activate
def test_invalid_recipients_block_refuses_send_now_with_the_count(admin_client, admin_user):
    responses.add(responses.POST, BROADCAST, json={"messageId": "m-1"})
    ok, bad = _two_contacts()
    campaign = _draft(admin_user, contacts=[ok, bad], mode="block")

    with pytest.raises(Refused) as exc:
        campaign_send_now(campaign_id=campaign.pk)
    assert exc.value.code == "invalid_recipients"
    assert "1 of 2" in str(exc.value.message)

    # Through the wizard: the refusal is shown, nothing is sent, the campaign stays a draft.
    r = admin_client.post(_review_url(campaign), {"action": "send_now"}, follow=True)
    assert "1 of 2" in r.content.decode()
    assert len(responses.calls) == 0
    assert not Message.objects.filter(campaign=campaign).exists()
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DRAFT


def test_invalid_recipients_choice_is_saved_from_the_review_step(admin_client, admin_user):
    ok, bad = _two_contacts()
    campaign = _draft(admin_user, contacts=[ok, bad])
    r = admin_client.post(
        _review_url(campaign), {"action": "save_choice", "invalid_recipients": "block"}
    )
    assert r.status_code == 302 and r["Location"] == _review_url(campaign)
    campaign.refresh_from_db()
    assert campaign.invalid_recipients == Campaign.InvalidRecipients.BLOCK
    page = admin_client.get(_review_url(campaign)).content.decode()
    assert "1 of 2 recipients fail the template" in page


@responses.activate
def test_invalid_recipients_email_contact_without_address_is_skipped():
    responses.add(responses.POST, EMAIL_SEND, json={"messageId": "e-1"})
    from django.contrib.auth.models import User

    user = User.objects.create_user("m")
    with_address = ContactFactory(
        name="Nguyễn An", attributes={"order": "DH042", "email": "a@x.vn"}
    )
    without = ContactFactory(name="Trần Bình", attributes={"order": "DH043"})
    campaign = _draft(user, kind="email", contacts=[with_address, without])
    campaign_send_now(campaign_id=campaign.pk)
    assert len(responses.calls) == 1
    skipped = Message.objects.get(campaign=campaign, contact=without)
    assert skipped.status == Message.Status.SKIPPED and skipped.error_code == "invalid_params"
    assert "email" in skipped.error_message


def test_send_answer_fee_not_finite_or_negative_is_dropped():
    """results.py: the provider's send answer fee is checked (fee_refusal) before it is written
    onto the message and added to the campaign's cost."""
    from tests.factories import CampaignFactory

    campaign = CampaignFactory(status=Campaign.Status.RUNNING)
    contacts = [ContactFactory() for _ in range(4)]
    Message.objects.bulk_create(
        [message_for(campaign, c, status=Message.Status.SENDING) for c in contacts]
    )
    msgs = list(Message.objects.filter(campaign=campaign).order_by("pk"))
    fees = [Decimal("Infinity"), Decimal("NaN"), Decimal("-5e9"), Decimal("300")]
    results = [
        (m, SendResult.accepted(provider_message_id=f"p{i}", fee=fee), None)
        for i, (m, fee) in enumerate(zip(msgs, fees, strict=True))
    ]
    out = messages_record_results(campaign_id=campaign.pk, results=results)
    assert out.sent == 4
    stored = list(
        Message.objects.filter(campaign=campaign).order_by("pk").values_list("fee", flat=True)
    )
    assert stored == [None, None, None, Decimal("300")]
    campaign.refresh_from_db()
    assert campaign.cost == Decimal("300")


@responses.activate
def test_invalid_recipients_block_refuses_schedule_and_the_scheduled_start(admin_user):
    from datetime import timedelta

    from django.utils import timezone

    from campaigns.engine.lifecycle import campaign_schedule
    from campaigns.engine.scheduler import campaigns_start_due

    responses.add(responses.POST, BROADCAST, json={"messageId": "m-1"})
    ok, bad = _two_contacts()
    campaign = _draft(admin_user, contacts=[ok, bad], mode="block")
    when = timezone.now() + timedelta(hours=1)
    with pytest.raises(Refused) as exc:
        campaign_schedule(campaign_id=campaign.pk, when=when)
    assert exc.value.code == "invalid_recipients" and "1 of 2" in str(exc.value.message)

    # Scheduled while it passed (exclude), then set to block: the start is refused, with the count.
    Campaign.objects.filter(pk=campaign.pk).update(invalid_recipients="exclude")
    campaign_schedule(campaign_id=campaign.pk, when=when)
    Campaign.objects.filter(pk=campaign.pk).update(invalid_recipients="block")
    assert campaigns_start_due(now=when + timedelta(minutes=1)) == []
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SCHEDULED and "1 of 2" in campaign.status_reason
    assert len(responses.calls) == 0 and not Message.objects.filter(campaign=campaign).exists()
