"""The campaign setting "only contacts with advertising consent for this channel" (issue 21): on
by default for promotion templates, enforced when the messages are built and again when they are
sent (like opt-outs), and counted in the pre-flight. Through the real path: the wizard's draft
services and review page (admin client), send-now, materialize, the driver, the MMP adapter, HTTP
(`responses`). Runs on SQLite and PostgreSQL."""

import json

import pytest
import responses
from django.urls import reverse

from campaigns.contacts.optout import contact_opt_out
from campaigns.drafts import campaign_draft_create, campaign_draft_update
from campaigns.engine.claim import messages_claim
from campaigns.engine.materialize import campaign_materialize
from campaigns.models import Campaign, Message
from campaigns.privacy.services import consent_record
from campaigns.selectors.campaign import campaign_preflight
from templates_app.models import Template
from tests.factories import (
    ChannelFactory,
    ContactFactory,
    ContactListFactory,
    ProviderAccountFactory,
    TemplateFactory,
)

pytestmark = pytest.mark.django_db(transaction=True)

BASE = "https://mmp.example.test"
BROADCAST = f"{BASE}/api/v1/channel/broadcast"
MAPPING = {
    "customer_name": {"source": "field", "value": "name"},
    "order_code": {"source": "attribute", "value": "order"},
}


@pytest.fixture(autouse=True)
def _daytime(settings):
    # Promotion messages are refused outside 07:00-22:00 (Decree 91): the tests run at any hour.
    settings.LOA = {**settings.LOA, "QUIET_HOURS": "00:00-23:59"}


@pytest.fixture
def admin_client(admin_client):
    admin_client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return admin_client


def _account():
    return ProviderAccountFactory(kind="vna_mmp", base_url=BASE, secrets={"api_key": "MMP-KEY-1"})


def _draft(user, *, tag=Template.Tag.PROMOTION, contacts=()):
    account = _account()
    channel = ChannelFactory(account=account, kind="sms", official_account=None, external_id="c1")
    template = TemplateFactory(
        account=account, channel_kind="sms", tag=tag, body="Chào {{customer_name}} {{order_code}}"
    )
    campaign = campaign_draft_create(name="Khuyến mãi 12", channel=channel, user=user)
    campaign_draft_update(campaign=campaign, template=template, content="")
    campaign_draft_update(campaign=campaign, lists=[ContactListFactory(contacts=list(contacts))])
    return campaign_draft_update(campaign=campaign, param_mapping=MAPPING)


def _audience():
    """Four contacts: consented to SMS, consented to every channel, none, and opted out."""
    sms = ContactFactory(name="An")
    everything = ContactFactory(name="Bình")
    nothing = ContactFactory(name="Chi")
    opted = ContactFactory(name="Dũng")
    consent_record(contact=sms, channel_kind="sms", granted=True, source="form")
    consent_record(contact=everything, channel_kind="all", granted=True, source="import")
    consent_record(contact=opted, channel_kind="sms", granted=True, source="form")
    contact_opt_out(phone=opted.phone, channel_kind="sms")
    return sms, everything, nothing, opted


def test_the_setting_follows_the_template_tag(admin_user):
    promo = _draft(admin_user)
    assert promo.requires_advertising_consent is True
    transactional = TemplateFactory(
        account=promo.channel.account, channel_kind="sms", tag=Template.Tag.TRANSACTION
    )
    changed = campaign_draft_update(campaign=promo, template=transactional)
    assert changed.requires_advertising_consent is False
    care = _draft(admin_user, tag=Template.Tag.CUSTOMER_CARE)
    assert care.requires_advertising_consent is False


def _review(campaign):
    return reverse("admin:campaigns_campaign_wizard", args=[campaign.pk, 5])


@responses.activate
def test_send_now_excludes_contacts_without_consent_and_counts_them(admin_client, admin_user):
    responses.add(responses.POST, BROADCAST, json={"messageId": "m-1"})
    sms, everything, nothing, opted = _audience()
    campaign = _draft(admin_user, contacts=[sms, everything, nothing, opted])

    pre = campaign_preflight(campaign=campaign)
    assert (pre["in_lists"], pre["opted_out"], pre["no_consent"], pre["recipients"]) == (
        4,
        1,
        1,
        2,
    )
    page = admin_client.get(_review(campaign)).content.decode()
    assert 'id="preflight-no-consent"' in page
    assert "1 recipient has no advertising consent for this channel: left out." in page
    assert "Send now to 2 recipients" in page

    r = admin_client.post(_review(campaign), {"action": "send_now"})
    assert r.status_code == 302
    sent = {
        s["phone"]
        for call in responses.calls
        for s in json.loads(call.request.body).get("subscribers", [])
    }
    assert sent == {sms.phone, everything.phone}
    campaign.refresh_from_db()
    assert campaign.total_count == 2
    assert campaign.excluded == {"opted_out": 1, "no_consent": 1}
    assert not Message.objects.filter(campaign=campaign, contact__in=[nothing, opted]).exists()
    page = admin_client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk]))
    assert "no advertising consent for this channel" in page.content.decode()


@responses.activate
def test_with_the_setting_off_every_contact_not_opted_out_is_sent(admin_client, admin_user):
    responses.add(responses.POST, BROADCAST, json={"messageId": "m-1"})
    sms, everything, nothing, opted = _audience()
    campaign = _draft(admin_user, contacts=[sms, everything, nothing, opted])
    r = admin_client.post(_review(campaign), {"action": "save_consent"})  # the box unticked: off
    assert r.status_code == 302
    campaign.refresh_from_db()
    assert campaign.requires_advertising_consent is False
    pre = campaign_preflight(campaign=campaign)
    assert (pre["opted_out"], pre["no_consent"], pre["recipients"]) == (1, 0, 3)
    assert 'id="preflight-no-consent"' not in admin_client.get(_review(campaign)).content.decode()
    admin_client.post(_review(campaign), {"action": "send_now"})
    campaign.refresh_from_db()
    assert campaign.total_count == 3 and campaign.excluded == {"opted_out": 1}
    # ...and ticking it again turns it back on.
    other = _draft(admin_user, contacts=[sms])
    campaign_draft_update(campaign=other, requires_advertising_consent=False)
    admin_client.post(
        _review(other), {"action": "save_consent", "requires_advertising_consent": "on"}
    )
    other.refresh_from_db()
    assert other.requires_advertising_consent is True


def test_a_consent_withdrawn_after_the_build_is_honoured_at_send_time(admin_user):
    sms, everything, nothing, _opted = _audience()
    campaign = _draft(admin_user, contacts=[sms, everything, nothing])
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.RUNNING)
    assert campaign_materialize(campaign_id=campaign.pk) == 2
    # "Bình" withdraws SMS advertising after the messages were built (the all-channel consent
    # stays for the other channels).
    consent_record(contact=everything, channel_kind="sms", granted=False, source="api")
    claimed = messages_claim(campaign_id=campaign.pk, limit=10, kind="sms", requires_consent=True)
    assert [m.contact_id for m in claimed] == [sms.pk]
    skipped = Message.objects.get(campaign=campaign, contact=everything)
    assert skipped.status == Message.Status.SKIPPED and skipped.error_code == "no_consent"
    assert "advertising consent" in skipped.error_message
    campaign.refresh_from_db()
    assert campaign.skipped_count == 1
