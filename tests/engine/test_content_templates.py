"""Issue 15: a campaign on a content template (SMS, Viber, email entered in Loa) sends the template's
text, rendered for each recipient, through the real path: send-now, materialize, the driver, the
MMP adapter, HTTP (mocked at the requests seam by `responses`). An email goes to the contact's
email attribute when the mapping names no address."""

import json

import pytest
import responses
from django.utils import timezone

from campaigns.engine.lifecycle import campaign_check_sendable, campaign_send_now
from campaigns.models import Campaign, Message
from tests.factories import (
    CampaignFactory,
    ChannelFactory,
    ContactFactory,
    ContactListFactory,
    ProviderAccountFactory,
    TemplateFactory,
)

pytestmark = pytest.mark.django_db(transaction=True)

BASE = "https://mmp.example.test"
CHANNEL_ID = "917df4d0-7eb7-11ee-b9de-1727a5a284e5"


def _mmp_campaign(kind: str, *, body: str, subject: str = "", synced: bool = False, contacts=()):
    account = ProviderAccountFactory(
        kind="vna_mmp",
        base_url=BASE,
        secrets={"api_key": "MMP-KEY-1"},
        settings={"email_from": "shop@loa.example"},
    )
    channel = ChannelFactory(
        account=account, kind=kind, official_account=None, external_id=CHANNEL_ID
    )
    template = TemplateFactory(
        account=account,
        channel_kind=kind,
        provider_template_id=f"{kind}-1",  # what the admin typed: the provider knows no such id
        body=body,
        subject=subject,
        synced_at=timezone.now() if synced else None,
    )
    return CampaignFactory(
        channel=channel,
        template=template,
        content="",  # the wizard saves no content when a template is chosen
        lists=[ContactListFactory(contacts=list(contacts))],
    )


def _bodies() -> list[dict]:
    return [json.loads(c.request.body) for c in responses.calls]


@pytest.mark.parametrize("kind,application_id", [("sms", 3), ("viber", 1)])
@responses.activate
def test_content_template_campaign_sends_the_rendered_text(kind, application_id):
    responses.add(responses.POST, f"{BASE}/api/v1/channel/broadcast", json={"messageId": "m-1"})
    contact = ContactFactory(name="Nguyễn An", attributes={"order": "DH042"})
    campaign = _mmp_campaign(
        kind, body="Chào {{customer_name}}, đơn {{order_code}} đã xác nhận.", contacts=[contact]
    )
    campaign_send_now(campaign_id=campaign.pk)
    key = Message.objects.get(campaign=campaign).idempotency_key
    assert _bodies() == [
        {
            "publicId": CHANNEL_ID,
            "applicationId": application_id,
            "clientMessageId": key,
            "message": {"type": "text", "text": "Chào Nguyễn An, đơn DH042 đã xác nhận."},
            "subscribers": [{"phone": contact.phone, "clientMessageId": key}],
        }
    ]
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.COMPLETED and campaign.sent_count == 1


@responses.activate
def test_sms_content_template_without_diacritics_sends_the_folded_text():
    responses.add(responses.POST, f"{BASE}/api/v1/channel/broadcast", json={"messageId": "m-1"})
    contact = ContactFactory(name="Nguyễn An", attributes={"order": "DH042"})
    campaign = _mmp_campaign(
        "sms", body="Chào {{customer_name}} – đơn {{order_code}}", contacts=[contact]
    )
    campaign.template.strip_diacritics = True
    campaign.template.save()
    campaign_send_now(campaign_id=campaign.pk)
    assert _bodies()[0]["message"] == {"type": "text", "text": "Chao Nguyen An - don DH042"}


@responses.activate
def test_email_content_template_sends_subject_html_to_the_contacts_address():
    responses.add(responses.POST, f"{BASE}/api/v1/email/send", json={"messageId": "e-1"})
    with_address = ContactFactory(
        name="Nguyễn An", attributes={"order": "DH042", "email": "an@example.vn"}
    )
    without = ContactFactory(name="Trần Bình", attributes={"order": "DH043"})
    campaign = _mmp_campaign(
        "email",
        subject="Đơn {{order_code}} đã xác nhận",
        body='<p>Chào <b>{{customer_name}}</b></p><script>alert(1)</script><a href="javascript:x">x</a>',
        contacts=[with_address, without],
    )
    campaign_send_now(campaign_id=campaign.pk)
    key = Message.objects.get(campaign=campaign, contact=with_address).idempotency_key
    assert _bodies() == [
        {
            "from": "shop@loa.example",
            "to": ["an@example.vn"],
            "subject": "Đơn DH042 đã xác nhận",
            "html": '<p>Chào <b>Nguyễn An</b></p><a rel="noopener noreferrer">x</a>',
            "clientMessageId": key,
        }
    ]
    # The contact with no address is skipped alone, with the reason, never handed to the
    # provider (tests/engine/test_invalid_recipients.py); the other one was sent.
    skipped = Message.objects.get(campaign=campaign, contact=without)
    assert skipped.status == "skipped" and skipped.error_code == "invalid_params"
    campaign.refresh_from_db()
    assert campaign.sent_count == 1 and campaign.skipped_count == 1


@responses.activate
def test_a_template_synced_from_the_provider_still_goes_by_its_id():
    responses.add(responses.POST, f"{BASE}/api/v1/channel/broadcast", json={"messageId": "m-1"})
    contact = ContactFactory(name="Nguyễn An", attributes={"order": "DH042"})
    campaign = _mmp_campaign(
        "viber", body="Chào {{customer_name}}", synced=True, contacts=[contact]
    )
    campaign_send_now(campaign_id=campaign.pk)
    assert _bodies()[0]["message"] == {
        "type": "template",
        "template": {
            "publicId": "viber-1",
            "params": {"customer_name": "Nguyễn An", "order_code": "DH042"},
        },
    }


@responses.activate
def test_free_text_email_campaign_sends_its_own_rendered_subject():
    """Issue 15 defect: a free-text email went out with an empty subject (only a template had
    one). The campaign's subject is rendered per recipient like its content."""
    responses.add(responses.POST, f"{BASE}/api/v1/email/send", json={"messageId": "e-1"})
    contact = ContactFactory(
        name="Nguyễn An", attributes={"order": "DH042", "email": "an@example.vn"}
    )
    campaign = _mmp_campaign(
        "email", subject="Chủ đề của mẫu", body="<p>mẫu</p>", contacts=[contact]
    )
    campaign.content = "<p>Chào {{customer_name}}, đơn {{order_code}}</p>"
    campaign.subject = "Chào {{customer_name}}"
    campaign.save()
    campaign_send_now(campaign_id=campaign.pk)
    key = Message.objects.get(campaign=campaign).idempotency_key
    assert _bodies() == [
        {
            "from": "shop@loa.example",
            "to": ["an@example.vn"],
            "subject": "Chào Nguyễn An",
            "html": "<p>Chào Nguyễn An, đơn DH042</p>",
            "clientMessageId": key,
        }
    ]


def test_free_text_email_campaign_without_subject_is_not_sendable():
    contact = ContactFactory(attributes={"email": "an@example.vn"})
    campaign = _mmp_campaign("email", body="<p>mẫu</p>", contacts=[contact])
    campaign.template = None
    campaign.content = "<p>Chào</p>"
    campaign.save()
    errors = [str(e) for e in campaign_check_sendable(campaign)]
    assert any("subject" in e for e in errors), errors
    campaign.subject = "Chào"
    assert campaign_check_sendable(campaign) == []
