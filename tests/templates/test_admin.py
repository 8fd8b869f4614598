"""The templates admin: sync, preview panel, test send, hand entry; and the campaign validation
views (campaigns/admin/validation.py) the wizard links to."""

import json

import pytest
import responses
from django.urls import reverse

from campaigns.engine.validation import campaign_validation_summary
from campaigns.models import Campaign
from providers.models import Channel, ChannelKind
from providers.shared.errors import Refused
from templates_app.models import Template, TemplateParam
from templates_app.testsend import template_test_send
from tests.factories import (
    CampaignFactory,
    ChannelFactory,
    ContactFactory,
    ContactListFactory,
    OfficialAccountFactory,
    ProviderAccountFactory,
    TemplateFactory,
    UserFactory,
)
from tests.templates.conftest import load_fixture

pytestmark = pytest.mark.django_db
T = TemplateParam.Type


def _zns_channel_and_template(kind: str, secrets: dict, *, channel_name: str):
    """A ZNS channel on a new account of this kind (with its OA), and a template of that OA."""
    account = ProviderAccountFactory(kind=kind, secrets=secrets)
    oa = OfficialAccountFactory(account=account)
    channel = Channel.objects.create(
        name=channel_name, account=account, kind="zalo_zns", official_account=oa
    )
    return channel, _zns_template(account=account, official_account=oa)


def _zns_template(account=None, **kwargs):
    account = account or ProviderAccountFactory()
    template = TemplateFactory(
        account=account,
        params=[],
        body="Xin chào <customer_name>, đơn <order_code> đã xác nhận.",
        **kwargs,
    )
    TemplateParam.objects.create(
        template=template,
        name="customer_name",
        param_type=T.CUSTOMER_NAME,
        max_length=30,
        position=0,
    )
    TemplateParam.objects.create(
        template=template, name="order_code", param_type=T.CODE, max_length=10, position=1
    )
    return template


def test_changelist_has_sync_link_and_sync_page_runs(admin_client, fake_templates):
    account = ProviderAccountFactory(name="Loa eTelecom")
    oa = OfficialAccountFactory(account=account, oa_id="4097311281936189049")
    fake_templates.answers[oa.oa_id] = load_fixture("etelecom_list_templates.json")["templates"]
    page = admin_client.get(reverse("admin:templates_app_template_changelist"))
    assert b'id="template-sync-link"' in page.content
    form = admin_client.get(reverse("admin:templates_app_template_sync"))
    assert b'id="template-sync-form"' in form.content and b"Loa eTelecom" in form.content
    resp = admin_client.post(
        reverse("admin:templates_app_template_sync"), {"account": [account.pk]}, follow=True
    )
    assert resp.status_code == 200
    assert Template.objects.filter(account=account).count() == 2
    text = resp.content.decode()
    assert "2 template(s) from the provider, 2 new" in text


def test_sync_page_without_choice_and_without_accounts(admin_client, fake_templates):
    resp = admin_client.post(reverse("admin:templates_app_template_sync"), {})
    assert resp.status_code == 200


def test_sync_action_on_selected_templates(admin_client, fake_templates):
    template = _zns_template()
    fake_templates.answers[""] = load_fixture("esms_zns_template_info.json")["templates"]
    resp = admin_client.post(
        reverse("admin:templates_app_template_changelist"),
        {"action": "sync_accounts", "_selected_action": [template.pk]},
        follow=True,
    )
    assert resp.status_code == 200
    assert Template.objects.filter(account=template.account, provider_template_id="267247").exists()


def test_change_page_preview_with_campaign_contacts(admin_client):
    template = _zns_template()
    good = ContactFactory(name="Lan", attributes={"order": "DH1"})
    bad = ContactFactory(
        name="Trần Thị Bích Ngọc Hoàng Anh Thư Phương", attributes={"order": "DH-0000000002"}
    )
    campaign = CampaignFactory(  # the factory's mapping: name and attribute "order"
        template=template,
        channel__account=template.account,
        lists=[ContactListFactory(name="preview list", contacts=[good, bad])],
    )
    url = reverse("admin:templates_app_template_change", args=[template.pk])

    page = admin_client.get(url).content.decode()
    assert 'id="template-preview"' in page
    assert "Xin chào Lan, đơn DH1 đã xác nhận." in page  # the first recipient

    page = admin_client.get(
        url, {"preview_campaign": campaign.pk, "preview_pick": "failing"}
    ).content.decode()
    assert "Trần Thị Bích Ngọc" in page
    assert "loa-param-bad" in page and "too long" in page

    page = admin_client.get(url, {"preview_pick": "longest"}).content.decode()
    assert "DH-0000000002" in page

    page = admin_client.get(url, {"preview_phone": good.phone}).content.decode()
    assert "Xin chào Lan" in page
    page = admin_client.get(url, {"preview_phone": "0999999999"}).content.decode()
    assert 'id="template-preview-error"' in page


def test_change_page_without_contacts_or_campaigns(admin_client):
    template = _zns_template()
    resp = admin_client.get(reverse("admin:templates_app_template_change", args=[template.pk]))
    assert resp.status_code == 200
    assert b'id="template-preview"' in resp.content


def test_hand_entered_sms_template_gets_params_and_sms_preview(admin_client):
    account = ProviderAccountFactory()
    resp = admin_client.post(
        reverse("admin:templates_app_template_add"),
        {
            "account": account.pk,
            "channel_kind": ChannelKind.SMS,
            "provider_template_id": "sms-1",
            "name": "SMS giao hàng",
            "tag": "customer_care",
            "price": "800",
            "status": "approved",
            "status_reason": "",
            "subject": "",
            "body": "Chào {{name}}, đơn {{code}} đang giao.",
            "strip_diacritics": "on",
            "preview_url": "",
            "buttons": "[]",
            "params-TOTAL_FORMS": "0",
            "params-INITIAL_FORMS": "0",
            "params-MIN_NUM_FORMS": "0",
            "params-MAX_NUM_FORMS": "1000",
        },
        follow=True,
    )
    assert resp.status_code == 200, resp.content
    template = Template.objects.get(provider_template_id="sms-1")
    assert template.ordered_param_names() == ("name", "code")
    ContactFactory(name="Ánh", attributes={"code": "D9"})
    page = admin_client.get(
        reverse("admin:templates_app_template_change", args=[template.pk])
    ).content.decode()
    assert "Chao Anh, don D9 dang giao." in page
    assert 'id="preview-sms"' in page and "GSM-7" in page


def test_test_send_page_prefilled_and_sent_through_sandbox(admin_client):
    template = _zns_template()
    channel = ChannelFactory(account=template.account, name="ZNS chính")
    ContactFactory(name="Lan", attributes={"order_code": "DH7"})
    url = reverse("admin:templates_app_template_test_send", args=[template.pk])

    page = admin_client.get(url).content.decode()
    assert 'id="test-send-form"' in page
    assert 'value="Lan"' in page and 'value="DH7"' in page  # prefilled from the preview
    assert "ZNS chính" in page

    page = admin_client.get(url, {"p_customer_name": "Hoa", "p_order_code": "X1"}).content.decode()
    assert 'value="Hoa"' in page and 'value="X1"' in page

    resp = admin_client.post(
        url, {"channel": channel.pk, "phone": "0901888484", "p_0": "Lan", "p_1": "DH7"}
    )
    text = resp.content.decode()
    assert 'id="test-send-result"' in text and "loa-result-ok" in text
    assert "Accepted by the provider in test mode" in text


def test_test_send_refuses_invalid_values_and_phone(admin_client):
    template = _zns_template()
    channel = ChannelFactory(account=template.account)
    url = reverse("admin:templates_app_template_test_send", args=[template.pk])
    resp = admin_client.post(
        url, {"channel": channel.pk, "phone": "0901888484", "p_0": "Lan", "p_1": "X" * 11}
    )
    text = resp.content.decode()
    assert "loa-result-bad" in text and "order_code" in text and "too long" in text
    resp = admin_client.post(
        url, {"channel": channel.pk, "phone": "12345", "p_0": "Lan", "p_1": "X"}
    )
    assert 'id="test-send-result"' not in resp.content.decode()
    assert resp.status_code == 200


def test_test_send_forbidden_without_change_permission(client):
    template = _zns_template()
    user = UserFactory(groups=["Marketer"])
    client.force_login(user)
    url = reverse("admin:templates_app_template_test_send", args=[template.pk])
    assert client.get(url).status_code == 403
    # the marketer still sees the preview (view permission)
    page = client.get(reverse("admin:templates_app_template_change", args=[template.pk]))
    assert page.status_code == 200 and b'id="template-preview"' in page.content
    assert b'id="test-send-link"' not in page.content


@responses.activate
def test_test_send_esms_uses_sandbox_and_shows_answer():
    channel, template = _zns_channel_and_template(
        "esms", {"api_key": "KEY123", "secret_key": "SECRET456"}, channel_name="esms zns"
    )
    calls = []

    def answer(request):
        calls.append(json.loads(request.body))
        return 200, {}, json.dumps({"CodeResult": "100", "CountRegenerate": 0, "SMSID": "d8e0-sbx"})

    responses.add_callback(
        responses.POST, url=__import__("re").compile(r".*esms\.vn.*"), callback=answer
    )
    text = template_test_send(
        template=template,
        channel=channel,
        phone="0901888484",
        data={"customer_name": "Lan", "order_code": "DH1"},
    )
    assert calls[0]["Sandbox"] == "1"
    assert calls[0]["TempID"] == template.provider_template_id
    assert "d8e0-sbx" in text and "CodeResult" in text
    assert "SECRET456" not in text and "KEY123" not in text


@responses.activate
def test_test_send_shows_provider_refusal():
    account = ProviderAccountFactory(kind="esms", secrets={"api_key": "K", "secret_key": "S"})
    channel = Channel.objects.create(
        name="esms2",
        account=account,
        kind="zalo_zns",
        official_account=OfficialAccountFactory(account=account),
    )
    template = _zns_template(account=account)
    responses.add(
        responses.POST,
        url=__import__("re").compile(r".*esms\.vn.*"),
        json={
            "CodeResult": "789",
            "CountRegenerate": 0,
            "ErrorMessage": "TemplateId is not config",
        },
    )
    with pytest.raises(Refused) as refused:
        template_test_send(
            template=template,
            channel=channel,
            phone="0901888484",
            data={"customer_name": "Lan", "order_code": "DH1"},
        )
    text = str(refused.value.message)
    assert refused.value.code == "provider_refused"
    assert "789" in text and "TemplateId is not config" in text


def test_test_send_checks_channel(admin_client):
    template = _zns_template()
    other = ChannelFactory()  # another account
    with pytest.raises(Refused) as refused:
        template_test_send(template=template, channel=other, phone="0901888484", data={})
    assert "another provider account" in str(refused.value.message)
    sms = ChannelFactory(account=template.account, kind="sms", official_account=None)
    with pytest.raises(Refused) as refused:
        template_test_send(template=template, channel=sms, phone="0901888484", data={})
    assert "Zalo ZNS" in str(refused.value.message)
    with pytest.raises(Refused):
        template_test_send(template=template, channel=sms, phone="abc", data={})


def test_validation_views(admin_client):
    template = _zns_template()
    audience = ContactListFactory(
        name="v list",
        contacts=[
            ContactFactory(name="A", attributes={"order": "1"}),
            ContactFactory(name="", attributes={}),
        ],
    )
    campaign = CampaignFactory(  # the factory's mapping: name and attribute "order"
        template=template, channel__account=template.account, lists=[audience]
    )
    summary = admin_client.get(
        reverse("admin:templates_app_campaign_validation_summary", args=[campaign.pk])
    ).json()
    assert (summary["ok"], summary["failing"]) == (1, 1)
    resp = admin_client.get(
        reverse("admin:templates_app_campaign_validation_report", args=[campaign.pk])
    )
    assert resp["Content-Type"].startswith("text/csv")
    body = b"".join(resp.streaming_content).decode("utf-8-sig")
    assert body.count("\n") == 3  # header + customer_name and order_code of the failing contact
    assert Campaign.objects.count() == 1


def test_validation_summary_partial_renders():
    from django.template.loader import render_to_string

    template = _zns_template()
    audience = ContactListFactory(name="p list", contacts=[ContactFactory(name="", attributes={})])
    campaign = CampaignFactory(
        template=template, channel__account=template.account, lists=[audience]
    )
    html = render_to_string(
        "admin/campaigns/_validation_summary.html",
        {"summary": campaign_validation_summary(campaign=campaign), "campaign": campaign},
    )
    assert 'id="validation-summary"' in html and 'id="validation-failing-rows"' in html
    assert 'id="validation-report-link"' in html


def test_validation_views_need_campaign_permission(client):
    campaign = CampaignFactory()
    user = UserFactory(groups=["Contact staff"])
    client.force_login(user)
    resp = client.get(
        reverse("admin:templates_app_campaign_validation_summary", args=[campaign.pk])
    )
    assert resp.status_code in (302, 403)


@responses.activate
def test_test_send_etelecom_uses_development_mode():
    import re

    channel, template = _zns_channel_and_template(
        "etelecom", {"api_key": "ETKEY-1"}, channel_name="et zns"
    )
    sent = []

    def answer(request):
        sent.append(json.loads(request.body))
        return (
            200,
            {},
            json.dumps({"id": "1001", "msg_id": "zmsg-dev-1", "status": "Z", "error_code": 0}),
        )

    responses.add_callback(responses.POST, url=re.compile(r".*etelecom.*SendZNS$"), callback=answer)
    text = template_test_send(
        template=template,
        channel=channel,
        phone="0901888484",
        data={"customer_name": "Lan", "order_code": "DH1"},
    )
    assert sent[0]["mode"] == "development"
    assert sent[0]["template_data"] == {"customer_name": "Lan", "order_code": "DH1"}
    assert "zmsg-dev-1" in text and "ETKEY-1" not in text
