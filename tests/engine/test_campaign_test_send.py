"""Issue 17, item 1: a campaign's test send (campaigns.testsends). Real HTTP through `responses`
at the adapters' one seam: the request carries the chosen contact's data as the real send would
(eSMS ZNS: Params in the template's order, seed 003; MMP SMS: the rendered text), a number the
channel cannot reach is refused without a call, a user's daily limit holds, a provider's 5xx is
explained, and nothing is counted in the campaign."""

import json
import re
from datetime import timedelta

import pytest
import responses
from django.conf import settings
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from campaigns.models import Campaign, CampaignTestSend, Message
from campaigns.testsends import (
    campaign_test_send,
    daily_test_sends_left,
    explain_test_send,
)
from providers.shared.errors import Refused
from tests.factories import (
    CampaignFactory,
    ChannelFactory,
    ContactFactory,
    ContactListFactory,
    ProviderAccountFactory,
    TemplateFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

ESMS_SEND = re.compile(
    r"https://rest\.esms\.vn/MainService\.svc/json/SendZaloMessage_V4_post_json/"
)
MMP = "https://mmp.example.test"
Outcome = CampaignTestSend.Outcome


def _esms_campaign(**kw) -> Campaign:
    account = ProviderAccountFactory(
        kind="esms", secrets={"api_key": "AK-TEST-0001", "secret_key": "SK-TEST-0002"}
    )
    channel = ChannelFactory(account=account)
    template = TemplateFactory(account=account, provider_template_id="205644")
    contact = ContactFactory(name="Trần Thị Lan", attributes={"order": "DH777"})
    return CampaignFactory(
        channel=channel, template=template, lists=[ContactListFactory(contacts=[contact])], **kw
    )


def _mmp_sms_campaign() -> Campaign:
    account = ProviderAccountFactory(kind="vna_mmp", base_url=MMP, secrets={"api_key": "MMP-K-1"})
    channel = ChannelFactory(account=account, kind="sms", official_account=None, external_id="c1")
    template = TemplateFactory(
        account=account,
        channel_kind="sms",
        provider_template_id="sms-1",
        body="Chao {{customer_name}}, don {{order_code}} da xac nhan.",
    )
    return CampaignFactory(channel=channel, template=template, lists=[ContactListFactory(size=1)])


def _body(i: int = -1) -> dict:
    return json.loads(responses.calls[i].request.body)


@responses.activate
def test_esms_zns_test_carries_the_contacts_data_and_is_not_counted_in_the_campaign():
    responses.add(
        responses.POST, ESMS_SEND, json={"CodeResult": "100", "SMSID": "sms-id-1"}, status=200
    )
    campaign = _esms_campaign()
    contact = campaign.lists.get().memberships.get().contact
    user = UserFactory(groups=["Marketer"])

    rows = campaign_test_send(
        campaign=campaign, user=user, phones=["0912 345 678"], contact=contact
    )

    assert [r.outcome for r in rows] == [Outcome.ACCEPTED]
    body = _body()
    # The campaign's mapping applied to the chosen contact, in the template's order (seed 003).
    assert body["Params"] == ["Trần Thị Lan", "DH777"]
    assert body["TempID"] == "205644" and body["Phone"] == "0912345678"
    assert body["OAID"] == campaign.channel.official_account.oa_id
    assert body["RequestId"].startswith("loatest") and body["Sandbox"] == "0"
    assert body["campaignid"] == campaign.name
    row = CampaignTestSend.objects.get()
    assert row.phone == "84912345678" and row.contact == contact and row.user == user
    assert row.provider_message_id == "sms-id-1"
    assert row.template_data == {"customer_name": "Trần Thị Lan", "order_code": "DH777"}
    assert "Trần Thị Lan" in row.content
    # Never a message, never in the counters or the cost.
    campaign.refresh_from_db()
    assert not Message.objects.filter(campaign=campaign).exists()
    assert (campaign.total_count, campaign.sent_count, campaign.cost) == (0, 0, 0)
    assert campaign.status == Campaign.Status.DRAFT


@responses.activate
def test_mmp_sms_test_sends_the_rendered_text_with_the_contacts_data():
    responses.add(responses.POST, f"{MMP}/api/v1/channel/broadcast", json={"messageId": "m-9"})
    campaign = _mmp_sms_campaign()
    contact = ContactFactory(name="Lê Văn Nam", attributes={"order": "HD42"})
    rows = campaign_test_send(
        campaign=campaign, user=UserFactory(), phones=["+84 901 888 484"], contact=contact
    )
    assert rows[0].outcome == Outcome.ACCEPTED and rows[0].provider_message_id == "m-9"
    body = _body()
    assert body["message"] == {"type": "text", "text": "Chao Lê Văn Nam, don HD42 da xac nhan."}
    assert "84901888484" in json.dumps(body)
    assert rows[0].content == "Chao Lê Văn Nam, don HD42 da xac nhan."


@responses.activate
def test_typed_values_are_validated_like_the_real_send():
    responses.add(responses.POST, ESMS_SEND, json={"CodeResult": "100", "SMSID": "x"})
    campaign = _esms_campaign()
    user = UserFactory()
    with pytest.raises(Refused) as refused:  # max_length 30 (the factory's TemplateParam)
        campaign_test_send(
            campaign=campaign,
            user=user,
            phones=["0912345678"],
            values={"customer_name": "A" * 31, "order_code": "DH1"},
        )
    assert refused.value.code == "invalid_values" and "customer_name" in refused.value.message
    with pytest.raises(Refused) as refused:
        campaign_test_send(campaign=campaign, user=user, phones=["0912345678"])
    assert refused.value.code == "no_values"
    assert not responses.calls and not CampaignTestSend.objects.exists()

    rows = campaign_test_send(
        campaign=campaign,
        user=user,
        phones=["0912345678"],
        values={"customer_name": " Bình ", "order_code": "DH2"},
    )
    assert rows[0].outcome == Outcome.ACCEPTED and rows[0].contact is None
    assert _body()["Params"] == ["Bình", "DH2"]


@responses.activate
def test_a_number_the_channel_cannot_reach_is_refused_without_a_call_and_not_counted():
    responses.add(responses.POST, ESMS_SEND, json={"CodeResult": "100", "SMSID": "x"})
    campaign = _esms_campaign()
    user = UserFactory()
    values = {"customer_name": "An", "order_code": "DH1"}
    rows = campaign_test_send(
        campaign=campaign,
        user=user,
        phones=["+855 12 345 678", "12345", "0912345678"],
        values=values,
    )
    assert [r.outcome for r in rows] == [Outcome.REFUSED, Outcome.REFUSED, Outcome.ACCEPTED]
    assert rows[0].error_code == "unreachable" and "Cambodia" in explain_test_send(rows[0])
    assert rows[1].error_code == "invalid_phone"
    assert len(responses.calls) == 1 and _body()["Phone"] == "0912345678"
    # Only the one that went out counts against the day.
    assert daily_test_sends_left(user=user) == settings.LOA["TEST_SENDS_PER_DAY"] - 1
    with pytest.raises(Refused) as refused:
        campaign_test_send(campaign=campaign, user=user, phones=["1", "2", "3", "4"], values=values)
    assert refused.value.code == "too_many_phones"


@responses.activate
@override_settings(LOA={**settings.LOA, "TEST_SENDS_PER_DAY": 2})
def test_the_daily_limit_per_user_counts_since_local_midnight():
    responses.add(responses.POST, ESMS_SEND, json={"CodeResult": "100", "SMSID": "x"})
    campaign = _esms_campaign()
    user, other = UserFactory(), UserFactory()
    values = {"customer_name": "An", "order_code": "DH1"}
    # Yesterday's tests do not count today.
    old = CampaignTestSend.objects.create(
        campaign=campaign, user=user, phone="84912345678", outcome=Outcome.ACCEPTED
    )
    yesterday = timezone.localtime().replace(hour=0, minute=0) - timedelta(minutes=1)
    CampaignTestSend.objects.filter(pk=old.pk).update(created_at=yesterday)

    campaign_test_send(
        campaign=campaign, user=user, phones=["0912345678", "0987654321"], values=values
    )
    with pytest.raises(Refused) as refused:
        campaign_test_send(campaign=campaign, user=user, phones=["0912345678"], values=values)
    assert refused.value.code == "daily_limit" and "2" in refused.value.message
    assert len(responses.calls) == 2
    assert CampaignTestSend.objects.filter(user=user).count() == 3  # the refusal wrote nothing
    # Another user has a day of their own.
    campaign_test_send(campaign=campaign, user=other, phones=["0912345678"], values=values)
    assert len(responses.calls) == 3


@responses.activate
def test_a_provider_5xx_is_explained_never_raised_and_secrets_are_redacted():
    responses.add(responses.POST, ESMS_SEND, status=502, body="bad gateway")
    campaign = _esms_campaign()
    values = {"customer_name": "An", "order_code": "DH1"}
    row = campaign_test_send(
        campaign=campaign, user=UserFactory(), phones=["0912345678"], values=values
    )[0]
    assert row.outcome == Outcome.UNKNOWN and row.error_code == "http_502"
    text = explain_test_send(row)
    assert "server error (HTTP 502)" in text and "never sends a test again" in text

    # A refusal that echoes our key: stored and shown redacted, explained by the code's meaning.
    responses.replace(
        responses.POST,
        ESMS_SEND,
        json={"CodeResult": "101", "ErrorMessage": "ApiKey AK-TEST-0001 is not valid"},
    )
    row = campaign_test_send(
        campaign=campaign, user=UserFactory(), phones=["0912345678"], values=values
    )[0]
    assert row.outcome == Outcome.FAILED and row.error_code == "101"
    assert "AK-TEST-0001" not in row.error_message
    assert "101" in explain_test_send(row)


# ---- the review step's view ----------------------------------------------------------------------


def _sandbox_draft() -> Campaign:
    channel = ChannelFactory()  # a sandbox account
    template = TemplateFactory(account=channel.account)
    contact = ContactFactory(name="Phạm Minh", attributes={"order": "DH9"})
    return CampaignFactory(
        channel=channel, template=template, lists=[ContactListFactory(contacts=[contact])]
    )


def test_a_marketer_sends_a_test_from_the_review_step_and_sees_it(client, marketer):
    campaign = _sandbox_draft()
    contact = campaign.lists.get().memberships.get().contact
    url = reverse("admin:campaigns_campaign_test_send", args=[campaign.pk])
    response = client.post(
        url, {"phones": "0912 345 678\n0987 654 321", "contact": contact.pk, "source": "contact"}
    )
    assert response.status_code == 302
    rows = CampaignTestSend.objects.filter(campaign=campaign, user=marketer)
    assert sorted(rows.values_list("phone", flat=True)) == ["84912345678", "84987654321"]
    assert set(rows.values_list("outcome", flat=True)) == {Outcome.ACCEPTED}
    page = client.get(response["Location"]).content.decode()
    assert "0912 345 678" in page and 'id="test-send"' in page
    # The numbers are remembered for the next test.
    assert "0987 654 321" in page
    change = client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk]))
    assert 'id="test-sends"' in change.content.decode()
    assert "0912 345 678" in change.content.decode()


def test_someone_who_may_not_send_gets_403(client):
    campaign = _sandbox_draft()
    client.force_login(UserFactory(groups=["Contact staff"]))
    url = reverse("admin:campaigns_campaign_test_send", args=[campaign.pk])
    assert client.post(url, {"phones": "0912345678"}).status_code == 403
    assert not CampaignTestSend.objects.exists()


def test_contact_search_finds_by_name_and_phone(client, marketer):
    campaign = _sandbox_draft()
    url = reverse("admin:campaigns_campaign_test_send_contacts", args=[campaign.pk])
    found = client.get(url, {"q": "pham"}).json()["results"]
    assert len(found) == 1 and found[0]["text"].startswith("Phạm Minh")
    phone = campaign.lists.get().memberships.get().contact.phone
    assert client.get(url, {"q": "0" + phone[2:]}).json()["results"][0]["text"].startswith("Phạm")


def test_the_box_is_shown_only_to_who_may_send(client):
    from django.contrib.auth.models import Permission

    campaign = _sandbox_draft()
    user = UserFactory()
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="campaigns", codename__in=["view_campaign", "change_campaign"]
        )
    )
    client.force_login(user)
    review = reverse("admin:campaigns_campaign_wizard", args=[campaign.pk, 5])
    page = client.get(review).content.decode()
    assert 'id="wizard-step-5"' in page and 'id="test-send"' not in page
    user.user_permissions.add(Permission.objects.get(codename="send_campaign"))
    client.force_login(UserFactory._meta.model.objects.get(pk=user.pk))
    assert 'id="test-send"' in client.get(review).content.decode()
