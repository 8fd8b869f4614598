"""Inbound replies (MMP conversation webhook, seed 000) are stored, and opt-out keywords opt the
number out of that channel."""

import json
from pathlib import Path

import pytest
from django.urls import reverse

from campaigns.models import Contact, OptOut
from campaigns.selectors.dashboard import dashboard_cache_clear
from tests.factories import ChannelFactory, ContactFactory, ProviderAccountFactory
from webhooks.models import InboundMessage

pytestmark = pytest.mark.django_db(transaction=True)

SEED = json.loads(
    (
        Path(__file__).resolve().parents[1] / "fixtures" / "mmp" / "webhook_conversation.json"
    ).read_text()
)


def _post(client, account, payload):
    url = reverse("webhooks:receive", args=[account.webhook_token])
    return client.post(url, json.dumps(payload), content_type="application/json")


def _mmp():
    account = ProviderAccountFactory(kind="vna_mmp", secrets={"api_key": "k"})
    channel = ChannelFactory(
        account=account, kind="viber_bot", official_account=None, external_id=SEED["channelId"]
    )
    return account, channel


def test_the_seed_conversation_message_is_stored(client):
    account, channel = _mmp()
    assert _post(client, account, SEED).status_code == 200
    msg = InboundMessage.objects.get()
    assert msg.text == "hoha" and msg.sender == SEED["from"] and msg.channel == channel
    assert not msg.opted_out


@pytest.mark.parametrize("text", ["TU CHOI", "Từ chối", "stop", "HUY."])
def test_opt_out_keyword_opts_the_contact_out_of_that_channel(client, text):
    account, channel = _mmp()
    contact = ContactFactory(phone="84901888484")
    payload = {
        **SEED,
        "messageId": f"m-{text}",
        "message": {"type": "text", "message": text},
        "contact": {**SEED["contact"], "phone": "0901888484"},
    }
    assert _post(client, account, payload).status_code == 200
    msg = InboundMessage.objects.get()
    assert msg.opted_out and msg.contact == contact
    opt = OptOut.objects.get(contact=contact)
    assert opt.channel_kind == channel.kind and opt.source == OptOut.Source.REPLY


def test_a_reply_from_an_unknown_number_still_records_the_refusal(client):
    account, channel = _mmp()
    payload = {
        **SEED,
        "message": {"type": "text", "message": "STOP"},
        "contact": {**SEED["contact"], "phone": "0912345678"},
    }
    assert _post(client, account, payload).status_code == 200
    contact = Contact.objects.get(phone="84912345678")
    assert OptOut.objects.filter(contact=contact, channel_kind=channel.kind).exists()
    assert InboundMessage.objects.get().contact == contact


def test_replies_show_on_the_contact_and_the_campaign_pages(client, admin_client):
    from datetime import timedelta

    from django.utils import timezone

    from campaigns.models import Campaign, Message
    from tests.factories import CampaignFactory

    account, channel = _mmp()
    contact = ContactFactory(phone="84901888484", name="Trần Thị Bình")
    campaign = CampaignFactory(
        channel=channel,
        template__account=account,
        status=Campaign.Status.COMPLETED,
        started_at=timezone.now() - timedelta(hours=1),
    )
    Message.objects.create(
        campaign=campaign,
        contact=contact,
        phone=contact.phone,
        idempotency_key="reply-test-1",
        status=Message.Status.DELIVERED,
    )
    payload = {
        **SEED,
        "messageId": "m-reply",
        "message": {"type": "text", "message": "Cho tôi hỏi giá sản phẩm"},
        "contact": {**SEED["contact"], "phone": "0901888484"},
    }
    assert _post(client, account, payload).status_code == 200
    contact_page = admin_client.get(reverse("admin:campaigns_contact_change", args=[contact.pk]))
    assert "Cho tôi hỏi giá sản phẩm" in contact_page.content.decode()
    campaign_page = admin_client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk]))
    html = campaign_page.content.decode()
    assert 'id="replies"' in html and "Cho tôi hỏi giá sản phẩm" in html
    assert "Trần Thị Bình" in html


# ---- a STOP without a phone (seed 000's example has "phone": "") --------------------------------


def _stop(conversation: str, phone: str = "", message_id: str = "m-stop"):
    return {
        **SEED,
        "from": conversation,
        "messageId": message_id,
        "message": {"type": "text", "message": "STOP"},
        "contact": {**SEED["contact"], "phone": phone},
    }


def test_stop_without_phone_reaches_the_contact_of_an_earlier_reply_in_that_conversation(client):
    account, channel = _mmp()
    contact = ContactFactory(phone="84901888484")
    hello = {
        **SEED,
        "messageId": "m-hello",
        "contact": {**SEED["contact"], "phone": "0901888484"},
    }
    assert _post(client, account, hello).status_code == 200
    assert _post(client, account, _stop(SEED["from"])).status_code == 200
    stop = InboundMessage.objects.get(provider_message_id="m-stop")
    assert stop.contact == contact and stop.opted_out
    assert stop.opt_out_state == InboundMessage.OptOutState.APPLIED
    assert OptOut.objects.filter(contact=contact, channel_kind=channel.kind).exists()


def test_stop_without_phone_from_an_unknown_conversation_is_kept_as_not_matched(
    client, admin_client
):
    account, _channel = _mmp()
    assert _post(client, account, _stop("conv-nobody")).status_code == 200
    msg = InboundMessage.objects.get()
    assert msg.opted_out and msg.contact is None
    assert msg.opt_out_state == InboundMessage.OptOutState.NOT_MATCHED
    assert not OptOut.objects.exists()
    url = reverse("admin:webhooks_inboundmessage_changelist")
    page = admin_client.get(url, {"opt_out_state": "not_matched"}, HTTP_ACCEPT_LANGUAGE="en")
    html = page.content.decode()
    assert page.status_code == 200 and f"/{msg.pk}/change/" in html
    assert "Opt-out request not matched" in html


def test_not_matched_stop_is_applied_once_the_conversation_is_tied_to_a_contact(client):
    account, channel = _mmp()
    assert _post(client, account, _stop("conv-later")).status_code == 200
    later = {
        **SEED,
        "from": "conv-later",
        "messageId": "m-later",
        "contact": {**SEED["contact"], "phone": "0912345678"},
    }
    assert _post(client, account, later).status_code == 200
    contact = Contact.objects.get(phone="84912345678")
    assert OptOut.objects.filter(contact=contact, channel_kind=channel.kind).exists()
    stop = InboundMessage.objects.get(provider_message_id="m-stop")
    assert stop.opt_out_state == InboundMessage.OptOutState.APPLIED and stop.contact == contact


def test_zalo_stop_reaches_the_contact_named_by_an_earlier_delivery_receipt(client):
    """eTelecom forwards Zalo OA events: a ZNS receipt names its recipient's Zalo user id and
    our message; the user's later "TU CHOI" (no phone, only that user id) reaches the contact."""
    from campaigns.models import Campaign, Message
    from tests.factories import CampaignFactory, message_for

    fixtures = Path(__file__).resolve().parents[1] / "fixtures" / "zalo"
    receipt = json.loads((fixtures / "user_received_message.json").read_text())
    reply = json.loads((fixtures / "user_send_text.json").read_text())
    account = ProviderAccountFactory(kind="etelecom", secrets={"api_key": "k"})
    campaign = CampaignFactory(channel__account=account)
    contact = ContactFactory(phone="84901888484")
    message_for(
        campaign, contact, status="sent", provider_message_id=receipt["message"]["msg_id"]
    ).save()
    Campaign.objects.filter(pk=campaign.pk).update(status="running", sent_count=1)
    assert _post(client, account, receipt).status_code == 200
    assert Message.objects.get().status == "delivered"
    assert _post(client, account, reply).status_code == 200
    msg = InboundMessage.objects.get()
    assert msg.contact == contact and msg.opt_out_state == InboundMessage.OptOutState.APPLIED
    assert OptOut.objects.filter(contact=contact).exists()


def test_the_dashboard_points_at_opt_outs_nobody_could_be_matched_to(client, admin_client):
    """A STOP nobody could be tied to waits for a person: the dashboard's webhook box says so per
    account and links to those replies."""
    account, _channel = _mmp()
    assert _post(client, account, _stop("conv-nobody")).status_code == 200
    dashboard_cache_clear()
    html = admin_client.get(reverse("admin:index"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "1 opt-out request not matched to a contact" in html
    assert f"opt_out_state__exact=not_matched&amp;account__id__exact={account.pk}" in html
