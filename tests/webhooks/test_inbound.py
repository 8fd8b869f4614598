"""Inbound replies (MMP conversation webhook, seed 000) are stored, and opt-out keywords opt the
number out of that channel."""

import json
from pathlib import Path

import pytest
from django.urls import reverse

from campaigns.models import Contact, OptOut
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
