"""Provider account admin and services: each action reports what it did, or the provider's error
in words a marketer can act on."""

from __future__ import annotations

import pytest
import responses
from django.urls import reverse

from providers import services
from providers.models import Channel, OfficialAccount, ProviderAccount
from providers.shared.errors import Refused
from tests.factories import OfficialAccountFactory, ProviderAccountFactory

from .conftest import esms_oas_answer, fixture_json

pytestmark = pytest.mark.django_db

ESMS = "https://rest.esms.vn/MainService.svc/json"
ET = "https://api.etelecom.vn/v1/shop"


def esms_account(**kw):
    return ProviderAccountFactory(
        kind="esms", secrets={"api_key": "AK-1", "secret_key": "SK-1"}, **kw
    )


def etelecom_account(**kw):
    return ProviderAccountFactory(kind="etelecom", secrets={"api_key": "ET-KEY-1"}, **kw)


# ---- services ----------------------------------------------------------------------------------------


@responses.activate
def test_test_connection_success_and_refused_credentials():
    account = esms_account()
    esms_oas_answer(ESMS)
    text = services.account_test_connection(account=account)
    assert "1 Official Account" in text
    responses.replace(
        responses.POST,
        f"{ESMS}/ZNS/GetListZOA/",
        json={"CodeResult": "101", "ErrorMessage": "Authorize Failed"},
    )
    with pytest.raises(Refused) as refused:
        services.account_test_connection(account=account)
    text = str(refused.value.message)
    assert "refused the credentials" in text and "AK-1" not in text


def test_test_connection_unreachable_names_the_host(settings):
    settings.LOA = {**settings.LOA, "HTTP_CONNECT_TIMEOUT": 0.5}
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    account = etelecom_account(base_url=f"http://127.0.0.1:{port}/v1/shop")
    with pytest.raises(Refused) as refused:
        services.account_test_connection(account=account)
    text = str(refused.value.message)
    assert f"127.0.0.1:{port}" in text and "base URL" in text


def test_missing_credentials_and_base_url_in_words():
    with pytest.raises(Refused) as refused:
        services.account_test_connection(account=ProviderAccountFactory(kind="etelecom"))
    assert "API key" in str(refused.value.message)
    with pytest.raises(Refused) as refused:
        services.account_test_connection(
            account=ProviderAccountFactory(kind="vna_mmp", secrets={"api_key": "k"})
        )
    assert "base URL" in str(refused.value.message)


@responses.activate
def test_sync_official_accounts_creates_then_updates():
    account = etelecom_account()
    responses.add(
        responses.POST, f"{ET}.Zalo/ListOA", json=fixture_json("etelecom/list_oa_response.json")
    )
    text = services.account_sync_official_accounts(account=account)
    assert "1 new" in text
    oa = OfficialAccount.objects.get(account=account)
    assert (oa.oa_id, oa.name, oa.quality, oa.daily_quota, oa.remaining_quota) == (
        "4097311281936189049",
        "Loa Shop OA",
        "HIGH",
        5000,
        4321,
    )
    assert oa.quota_updated_at is not None
    text = services.account_sync_official_accounts(account=account)
    assert "1 updated" in text
    assert OfficialAccount.objects.filter(account=account).count() == 1


def test_sync_official_accounts_on_mmp_explains_channels():
    account = ProviderAccountFactory(
        kind="vna_mmp", base_url="https://mmp.example", secrets={"api_key": "k"}
    )
    text = services.account_sync_official_accounts(account=account)
    assert "Channels" in text


@responses.activate
def test_sync_templates_action_is_offered_by_templates_app(admin_client):
    """Template sync is templates_app's job: it adds "Sync templates" to the account list."""
    account = etelecom_account(name="eTelecom main")
    OfficialAccountFactory(account=account, oa_id="4097311281936189049")
    responses.add(
        responses.POST,
        f"{ET}.Zalo/ListTemplates",
        json=fixture_json("etelecom/list_templates_response.json"),
    )
    resp = admin_client.post(
        reverse("admin:providers_provideraccount_changelist"),
        {"action": "sync_templates", "_selected_action": [account.pk]},
        follow=True,
    )
    (message,) = resp.context["messages"]
    text = str(message)
    # templates_app's report, as its own sync shows it: a warning, one template is disabled.
    assert message.level_tag == "warning", text
    assert text.startswith("eTelecom main: ") and "2 template(s)" in text
    from templates_app.models import Template

    assert set(
        Template.objects.filter(account=account).values_list("provider_template_id", flat=True)
    ) == {
        "231677",
        "231700",
    }


@responses.activate
def test_register_webhooks():
    account = etelecom_account()
    with pytest.raises(Refused) as refused:
        services.account_register_webhooks(account=account)
    assert "Sync the Official Accounts first" in str(refused.value.message)
    OfficialAccountFactory(account=account, oa_id="4097311281936189049")
    responses.add(
        responses.POST,
        f"{ET}.Zalo/UpdateShopOA",
        json=fixture_json("etelecom/update_shop_oa_response.json"),
    )
    text = services.account_register_webhooks(account=account)
    assert "1 Official Account" in text
    import json

    assert json.loads(responses.calls[0].request.body)["webhook_url"] == account.webhook_url()
    text = services.account_register_webhooks(account=esms_account())
    assert "per message" in text


def test_oa_secrets_reach_the_provider_config():
    account = etelecom_account()
    oa = OfficialAccountFactory(account=account, oa_id="111")
    oa.set_secret("oa-secret-xyz")
    oa.save()
    OfficialAccountFactory(account=account, oa_id="222")  # no secret: not listed
    assert account.config().oa_secrets == {"111": "oa-secret-xyz"}
    assert ProviderAccount(kind="etelecom").config().oa_secrets == {}
    # and never in a call record
    assert "oa-secret-xyz" in account.get_provider().secret_values()


def test_settings_validation():
    errors = services.account_settings_errors(
        kind="etelecom", settings={"mode": "shopp", "journey": "yes"}
    )
    assert any("mode" in e for e in errors) and any("journey" in e for e in errors)
    assert services.account_settings_errors(kind="esms", settings=[]) != []
    assert any(
        "Unknown setting" in e
        for e in services.account_settings_errors(kind="esms", settings={"apiversion": "v6"})
    )
    assert (
        services.account_settings_errors(
            kind="esms", settings={"api_version": "v6", "http": {"read_timeout": 5}}
        )
        == []
    )
    assert (
        services.account_settings_errors(
            kind="vna_mmp", settings={"api": {"broadcast": {"path": "/x"}}}
        )
        == []
    )
    assert services.account_settings_errors(kind="vna_mmp", settings={"api": "x"})


@responses.activate
def test_channel_check_and_reply_and_consent():
    account = ProviderAccountFactory(
        kind="vna_mmp", base_url="https://mmp.example", secrets={"api_key": "k-123"}
    )
    channel = Channel.objects.create(
        name="viber", account=account, kind="viber", external_id="ch-1"
    )
    responses.add(
        responses.GET,
        "https://mmp.example/api/v1/channel/ch-1/status",
        json={"status": "ACTIVE", "echo": "k-123"},
    )
    text = services.channel_check(channel=channel)
    assert "ACTIVE" in text and "k-123" not in text
    responses.add(
        responses.POST, "https://mmp.example/api/v1/channel/conversation", json={"messageId": "r-1"}
    )
    text = services.inbound_reply(
        account=account, channel_external_id="ch-1", conversation_id="c-1", text="Hi"
    )
    assert "r-1" in text
    with pytest.raises(Refused) as refused:
        services.inbound_reply(
            account=esms_account(), channel_external_id="x", conversation_id="y", text="z"
        )
    assert "cannot send conversation replies" in str(refused.value.message)


# ---- admin -------------------------------------------------------------------------------------------


@responses.activate
def test_admin_actions_show_messages(admin_client):
    account = esms_account(name="eSMS main")
    responses.add(responses.POST, f"{ESMS}/ZNS/GetListZOA/", json={"CodeResult": "140"})
    url = reverse("admin:providers_provideraccount_changelist")
    for action in (
        "test_connection",
        "sync_official_accounts",
        "sync_templates",
        "register_webhooks",
    ):
        resp = admin_client.post(
            url, {"action": action, "_selected_action": [account.pk]}, follow=True
        )
        assert resp.status_code == 200
        texts = [str(m) for m in resp.context["messages"]]
        assert texts and all(t.startswith("eSMS main: ") for t in texts), (action, texts)
    resp = admin_client.post(
        url, {"action": "test_connection", "_selected_action": [account.pk]}, follow=True
    )
    assert "whitelist" in " ".join(str(m) for m in resp.context["messages"])


def test_admin_change_page_and_reply_view(admin_client):
    account = ProviderAccountFactory(
        kind="vna_mmp", base_url="https://mmp.example", secrets={"api_key": "k-999"}
    )
    change = reverse("admin:providers_provideraccount_change", args=[account.pk])
    page = admin_client.get(change)
    assert page.status_code == 200
    assert b"k-999" not in page.content
    reply_url = reverse("admin:providers_provideraccount_reply", args=[account.pk])
    assert reply_url.encode() in page.content
    form = admin_client.get(reply_url + "?channel=ch-1&conversation=c-9")
    assert form.status_code == 200 and b"c-9" in form.content
    with responses.RequestsMock() as rsps:
        rsps.add(
            responses.POST,
            "https://mmp.example/api/v1/channel/conversation",
            json={"messageId": "m"},
        )
        resp = admin_client.post(
            reply_url, {"channel_id": "ch-1", "conversation_id": "c-9", "text": "Xin chào"}
        )
    assert resp.status_code == 302
    bad = admin_client.post(reply_url, {"channel_id": "", "conversation_id": "", "text": ""})
    assert bad.status_code == 200 and b"errorlist" in bad.content


def test_admin_rejects_bad_settings_with_a_message(admin_client):
    resp = admin_client.post(
        reverse("admin:providers_provideraccount_add"),
        {
            "name": "bad",
            "kind": "etelecom",
            "base_url": "",
            "settings": '{"mode": "boss"}',
            "rate_limit": "",
            "is_active": "on",
        },
    )
    assert resp.status_code == 200
    assert b"mode must be one of" in resp.content
    assert not ProviderAccount.objects.filter(name="bad").exists()


@responses.activate
def test_channel_admin_action_and_consent_view(admin_client):
    account = ProviderAccountFactory(
        kind="vna_mmp", base_url="https://mmp.example", secrets={"api_key": "k"}
    )
    channel = Channel.objects.create(
        name="zalo-mmp", account=account, kind="zalo_zns", external_id="ch-2"
    )
    responses.add(
        responses.GET, "https://mmp.example/api/v1/channel/ch-2/status", status=401, json={}
    )
    resp = admin_client.post(
        reverse("admin:providers_channel_changelist"),
        {"action": "check_channel", "_selected_action": [channel.pk]},
        follow=True,
    )
    assert "refused the credentials" in " ".join(str(m) for m in resp.context["messages"])
    url = reverse("admin:providers_channel_zalo_consent", args=[channel.pk])
    assert admin_client.get(url).status_code == 200
    bad = admin_client.post(url, {"phone": "12"})
    assert bad.status_code == 200 and b"errorlist" in bad.content
    responses.add(
        responses.GET, "https://mmp.example/api/v1/channel/zalo/consent", json={"consent": True}
    )
    resp = admin_client.post(url, {"phone": "0901888484"}, follow=True)
    assert "Consent status for 84901888484" in " ".join(str(m) for m in resp.context["messages"])
