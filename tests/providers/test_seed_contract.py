"""Each adapter against the seed line it follows (issue 16): the bytes an adapter sends, checked
against the provider page in /work/shared/seeds/ that documents them. Every test's docstring
quotes the seed (file name and the line's text); where a seed is silent the adapter's choice is
"assumed" and the test checks that one setting changes it (docs/PROVIDERS.md, "The seeds,
endpoint by endpoint")."""

from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import urlencode

import pytest
import requests
import responses
from django.urls import reverse
from django.utils import timezone

from campaigns.engine.lifecycle import campaign_send_now
from campaigns.engine.reconcile import messages_reconcile
from campaigns.engine.send import campaign_send_plan
from campaigns.models import Message
from providers.base import UNPROVEN, EventStatus, ProviderError, SendOutcome
from providers.esms.adapter import CAMPAIGN_ID_MAX, EsmsProvider
from providers.etelecom import EtelecomProvider
from providers.mmp.adapter import MetfoneMmpProvider, VnaMmpProvider
from providers.mmp.assumed import DEFAULT_SETTINGS
from providers.models import Channel, ProviderAccount, channel_settings_errors
from providers.services import account_settings_errors
from tests.factories import (
    CampaignFactory,
    ChannelFactory,
    ContactListFactory,
    OfficialAccountFactory,
    ProviderAccountFactory,
    TemplateFactory,
)

from .conftest import config, message, webhook

ESMS = "https://rest.esms.vn/MainService.svc/json"
ESMS_V4 = f"{ESMS}/SendZaloMessage_V4_post_json/"
ESMS_SECRETS = {"api_key": "AK-0001", "secret_key": "SK-0002"}
ETEL_SHOP = "https://api.etelecom.vn/v1/shop"
ETEL_PARTNER = "https://api.etelecom.vn/v1/partner"
ETEL_KEYS = {"api_key": "SHOP-API-KEY", "shop_key": "THE-SHOP-KEY"}
MMP = "https://mmp.example.test"
MMP_BROADCAST = f"{MMP}/api/v1/channel/broadcast"
MMP_STATUS = f"{MMP}/api/v1/message/status"
MMP_EMAIL_STATUS = f"{MMP}/api/v1/email/status"


def esms(**settings) -> EsmsProvider:
    return EsmsProvider(config("esms", secrets=ESMS_SECRETS, settings=settings))


def etelecom(base_url: str = "", secrets=None, **settings) -> EtelecomProvider:
    return EtelecomProvider(
        config(
            "etelecom",
            base_url=base_url,
            secrets=ETEL_KEYS if secrets is None else secrets,
            settings=settings,
        )
    )


def sent(i: int = -1) -> dict:
    """The JSON body of the i-th request `responses` saw, decoded from the bytes sent."""
    return json.loads(responses.calls[i].request.body)


# ---- eSMS (seed 003) --------------------------------------------------------------------------


@responses.activate
def test_esms_is_journey_is_the_string_true():
    """003_dbb630b31be6e353.txt, lines 27-29: "IsJourney" / "string" / "True: it's the journey
    message. False: it's not the journey message. Normal ZNS message." The adapter sends the
    string "True", as written; the account setting journey_flag overrides it."""
    responses.add(responses.POST, ESMS_V4, json={"CodeResult": "100", "SMSID": "s-1"})
    assert esms(journey=True, journey_id="J-77").send(message()).outcome == SendOutcome.ACCEPTED
    raw = responses.calls[-1].request.body.decode()
    assert '"IsJourney": "True"' in raw
    assert sent()["OrderId"] == "J-77"
    assert esms(journey=True, journey_id="J-77", journey_flag=True).send(message())
    assert sent()["IsJourney"] is True  # the override, when eSMS asks for a JSON boolean
    esms().send(message())
    assert "IsJourney" not in sent()  # a normal ZNS message says nothing


@responses.activate
def test_esms_campaignid_is_the_campaign_name_trimmed():
    """003_dbb630b31be6e353.txt, lines 40-42: "campaignid" / "string" / "The campaign name of
    request". The campaign's name goes out by default, on one line, at most 254 characters
    (providers.md §2.2: "campaignid ≤254 chars"); the account setting campaign_name wins."""
    responses.add(responses.POST, ESMS_V4, json={"CodeResult": "100", "SMSID": "s-1"})
    esms().send(message(campaign_name="Khuyến mãi Tết 2026"))
    assert sent()["campaignid"] == "Khuyến mãi Tết 2026"
    esms().send(message(campaign_name="Tết\n2026\t " + "ư" * 400))
    campaign_id = sent()["campaignid"]
    assert campaign_id.startswith("Tết 2026 ư") and len(campaign_id) == CAMPAIGN_ID_MAX == 254
    esms(campaign_name="Báo cáo chung").send(message(campaign_name="Khuyến mãi"))
    assert sent()["campaignid"] == "Báo cáo chung"
    esms().send(message(campaign_name=""))
    assert "campaignid" not in sent()


@pytest.mark.django_db(transaction=True)
@responses.activate
def test_esms_campaign_send_carries_the_campaign_name():
    """003_dbb630b31be6e353.txt, lines 40-42: "campaignid" / "string" / "The campaign name of
    request": a campaign sent by the engine names itself in every request."""
    account = ProviderAccountFactory(kind="esms", secrets=ESMS_SECRETS)
    oa = OfficialAccountFactory(account=account, oa_id="4097311281936189049")
    channel = ChannelFactory(account=account, kind="zalo_zns", official_account=oa)
    template = TemplateFactory(account=account, provider_template_id="205644")
    campaign = CampaignFactory(
        name="Tri ân khách hàng tháng 12",
        channel=channel,
        template=template,
        lists=[ContactListFactory(size=2)],
    )
    responses.add(responses.POST, ESMS_V4, json={"CodeResult": "100", "SMSID": "s-1"})
    campaign_send_now(campaign_id=campaign.pk)
    bodies = [json.loads(c.request.body) for c in responses.calls if c.request.url == ESMS_V4]
    assert len(bodies) == 2
    assert {b["campaignid"] for b in bodies} == {"Tri ân khách hàng tháng 12"}


@responses.activate
def test_esms_sending_mode_only_when_the_account_asks():
    """003_dbb630b31be6e353.txt, lines 14-51, the request body: ApiKey, SecretKey, Phone, Params,
    IsJourney, OrderId, TempID, OAID, campaignid, RequestId, CallbackUrl, Sandbox, and no
    SendingMode. So it is not sent by default; eSMS's V4 page (providers.md §2.2: "SendingMode 1
    default / 3 over-quota for tag-3") is followed only when the account sets sending_mode."""
    responses.add(responses.POST, ESMS_V4, json={"CodeResult": "100", "SMSID": "s-1"})
    esms().send(message())
    assert "SendingMode" not in sent()
    assert b"SendingMode" not in responses.calls[-1].request.body
    esms(sending_mode="3").send(message())
    assert sent()["SendingMode"] == "3"
    assert account_settings_errors(kind="esms", settings={"sending_mode": ""}) == []
    assert account_settings_errors(kind="esms", settings={"sending_mode": "2"})


def test_esms_form_post_callback_is_read_like_the_get_one():
    """003_dbb630b31be6e353.txt, lines 46-48: "CallbackUrl" / "string" / "The webhook URL that
    will receive the status of message after it processed to the operator." eSMS calls it with
    GET (providers.md §2.5); the adapter's comment says a form POST of the same fields is read
    too, and it is: the same fields, form-encoded, give the same status."""
    fields = {
        "SMSID": "f665a1b2c3d4e5f60718293a4b5c6d92",
        "SendFailed": "0",
        "SendStatus": "5",
        "SendSuccess": "1",
        "TotalPrice": "300.0000",
        "RequestId": "loa12t1abcdc34",
    }
    by_get = esms().parse_webhook(webhook("GET", query=fields))
    by_form = esms().parse_webhook(
        webhook(
            "POST",
            body=urlencode(fields).encode(),
            headers={"content-type": "application/x-www-form-urlencoded; charset=UTF-8"},
        )
    )
    assert by_form.statuses[0].status == by_get.statuses[0].status == EventStatus.DELIVERED
    assert by_form.statuses[0].provider_message_id == fields["SMSID"]
    assert by_form.statuses[0].idempotency_key == "loa12t1abcdc34"
    assert by_form.dedupe_key == by_get.dedupe_key


@pytest.mark.django_db(transaction=True)
def test_esms_form_post_callback_through_the_webhook_url(client):
    """003_dbb630b31be6e353.txt, line 48: "The webhook URL that will receive the status of
    message after it processed to the operator": a form-encoded POST to the account's webhook
    URL is accepted (200) and applied to the message it names."""
    from tests.factories import ContactFactory, message_for

    account = ProviderAccountFactory(kind="esms", secrets=ESMS_SECRETS)
    campaign = CampaignFactory(channel=ChannelFactory(account=account, kind="zalo_zns"))
    msg = message_for(
        campaign,
        ContactFactory(phone="84901888484"),
        status=Message.Status.SENT,
        provider_message_id="smsid-form-1",
    )
    msg.save()
    url = reverse("webhooks:receive", args=[account.webhook_token])
    body = urlencode(
        {"SMSID": "smsid-form-1", "SendStatus": "5", "SendSuccess": "1", "SendFailed": "0"}
    )
    resp = client.post(url, body, content_type="application/x-www-form-urlencoded")
    assert resp.status_code == 200, resp.content
    msg.refresh_from_db()
    assert msg.status == Message.Status.DELIVERED


# ---- eTelecom (seeds 002 and 004) -------------------------------------------------------------


@responses.activate
@pytest.mark.parametrize(
    "base_url,settings",
    [(ETEL_PARTNER, {}), (ETEL_PARTNER + "/", {"mode": "shop"}), ("", {"mode": "partner"})],
)
def test_etelecom_partner_calls_use_the_shop_key(base_url, settings):
    """002_773202aa38bdd58b.txt, lines 5 and 7: "Đối với các API sử dụng cho Shop thì API_KEY:
    <api_key>" and "Đối với các API sử dụng cho Partner thì API_KEY: <shop_key>", with line 81
    "--header 'Authorization: Bearer $API_KEY'". A partner call (an explicit partner base URL,
    or partner mode) carries the shop_key, never the shop's api_key."""
    responses.add(responses.POST, f"{ETEL_PARTNER}.Zalo/SendZNS", json={"msg_id": "z-1"})
    assert etelecom(base_url, **settings).send(message()).outcome == SendOutcome.ACCEPTED
    assert responses.calls[-1].request.headers["Authorization"] == "Bearer THE-SHOP-KEY"
    # Without a shop_key a partner call is refused before anything leaves.
    result = etelecom(base_url, secrets={"api_key": "SHOP-API-KEY"}, **settings).send(message())
    assert result.error_code == "missing_credentials" and len(responses.calls) == 1


@responses.activate
def test_etelecom_shop_calls_use_the_api_key():
    """002_773202aa38bdd58b.txt, line 5: "Đối với các API sử dụng cho Shop thì API_KEY:
    <api_key>"."""
    responses.add(responses.POST, f"{ETEL_SHOP}.Zalo/SendZNS", json={"msg_id": "z-1"})
    etelecom(ETEL_SHOP).send(message())
    assert responses.calls[-1].request.headers["Authorization"] == "Bearer SHOP-API-KEY"


@responses.activate
def test_etelecom_path_prefix_switches_v1_and_api():
    """002_773202aa38bdd58b.txt, line 22: "/api/shop.Zalo/GetMessage" (its OpenAPI block) and
    line 79: "curl --location '$BASE_URL.Zalo/GetMessage'" (its curl); 004_dc3d50d9e39ffe1e.txt,
    line 57: "$BASE_URL.Zalo/SendZNS". Loa assumes /v1 (working code, providers.md §1.1); the
    setting path_prefix "api" switches every call to the seed's /api path."""
    responses.add(
        responses.POST, "https://api.etelecom.vn/v1/shop.Zalo/GetMessage", json={"status": "P"}
    )
    responses.add(
        responses.POST, "https://api.etelecom.vn/api/shop.Zalo/GetMessage", json={"status": "P"}
    )
    etelecom().get_message(oa_id="1", msg_id="m")
    assert responses.calls[-1].request.url == "https://api.etelecom.vn/v1/shop.Zalo/GetMessage"
    etelecom(path_prefix="api").get_message(oa_id="1", msg_id="m")
    assert responses.calls[-1].request.url == "https://api.etelecom.vn/api/shop.Zalo/GetMessage"
    assert sent() == {"oa_id": "1", "msg_id": "m"}  # seed 002's body: msg_id, oa_id
    assert (
        etelecom(mode="partner", path_prefix="api").endpoint("SendZNS")
        == "https://api.etelecom.vn/api/partner.Zalo/SendZNS"
    )
    assert account_settings_errors(kind="etelecom", settings={"path_prefix": "v2"})


def _etelecom_campaign_timed_out():
    account = ProviderAccountFactory(kind="etelecom", base_url=ETEL_SHOP, secrets=ETEL_KEYS)
    oa = OfficialAccountFactory(account=account, oa_id="4097311281936189049")
    channel = ChannelFactory(account=account, kind="zalo_zns", official_account=oa)
    template = TemplateFactory(account=account, provider_template_id="205644")
    campaign = CampaignFactory(
        channel=channel, template=template, lists=[ContactListFactory(size=1)]
    )

    def timeout(request):
        raise requests.exceptions.ReadTimeout("read timed out")

    responses.add_callback(responses.POST, f"{ETEL_SHOP}.Zalo/SendZNS", callback=timeout)
    campaign_send_now(campaign_id=campaign.pk)
    msg = Message.objects.get(campaign=campaign)
    assert msg.status == Message.Status.UNKNOWN and not msg.provider_message_id
    Message.objects.filter(pk=msg.pk).update(claimed_at=timezone.now() - timedelta(hours=1))
    return account, campaign, msg


@pytest.mark.django_db(transaction=True)
@responses.activate
def test_etelecom_reconciliation_without_message_id_is_unavailable_not_stranded(admin_client):
    """002_773202aa38bdd58b.txt documents GetMessage by "msg_id*" (line 141: "msg_id*"), and
    neither it nor 004_dc3d50d9e39ffe1e.txt documents ListMessages. A send that timed out has
    no msg_id, so only ListMessages (assumed path) can be asked; its 404 leaves the row
    unknown and visible (never resent, never a configuration pause), and the account page says
    "Reconciliation is unavailable", with the reason, until ListMessages answers again."""
    account, campaign, msg = _etelecom_campaign_timed_out()
    list_messages = f"{ETEL_SHOP}.Zalo/ListMessages"
    responses.add(responses.POST, list_messages, status=404, body="404 page not found")
    for _ in range(2):
        messages_reconcile()
        Message.objects.filter(pk=msg.pk).update(last_polled_at=None)

    sends = [c for c in responses.calls if c.request.url.endswith("SendZNS")]
    assert len(sends) == 1
    msg.refresh_from_db()
    assert msg.status == Message.Status.UNKNOWN and msg.error_code == UNPROVEN
    assert "ListMessages" in msg.error_message and "assumed" in msg.error_message
    campaign.refresh_from_db()
    assert campaign.status != campaign.Status.PAUSED and campaign.unknown_count == 1
    account.refresh_from_db()
    assert "ListMessages answered http_404" in account.reconciliation_unavailable
    page = admin_client.get(reverse("admin:providers_provideraccount_change", args=[account.pk]))
    html = page.content.decode()
    assert "Reconciliation is unavailable for this account" in html
    assert f"{ETEL_SHOP}.Zalo/ListMessages" in html
    # The message is listed as unknown on its campaign's messages, with the reason.
    listed = admin_client.get(
        reverse("admin:campaigns_message_changelist") + f"?campaign__id__exact={campaign.pk}"
    )
    assert listed.status_code == 200 and msg.phone[-4:] in listed.content.decode()

    # ListMessages answers in its documented shape again: the notice goes.
    responses.replace(responses.POST, list_messages, json={"paging": {"limit": 10}})
    messages_reconcile()
    account.refresh_from_db()
    assert account.reconciliation_unavailable == ""
    page = admin_client.get(reverse("admin:providers_provideraccount_change", args=[account.pk]))
    assert "Reconciliation is unavailable" not in page.content.decode()


def test_etelecom_twirp_bad_route_is_unavailable_too():
    """002_773202aa38bdd58b.txt, line 22: "/api/shop.Zalo/GetMessage": a Twirp route. An
    unknown route answers 404 `bad_route` (providers.md §1.1): for ListMessages, which no seed
    documents, that is "reconciliation unavailable", never "absent"."""
    with responses.RequestsMock() as rsps:
        rsps.add(
            responses.POST,
            f"{ETEL_SHOP}.Zalo/ListMessages",
            status=404,
            json={"code": "bad_route", "msg": "no handler for path"},
        )
        event = etelecom().fetch_status(provider_message_id="", idempotency_key="loa1k")
    assert event.status == EventStatus.UNKNOWN and not event.proven_absent
    assert event.lookup_note and "bad_route" in event.lookup_note


@responses.activate
def test_etelecom_get_message_404_is_unavailable_and_names_the_path_setting():
    """002_773202aa38bdd58b.txt, line 22: "/api/shop.Zalo/GetMessage", while Loa assumes /v1:
    a bare 404 from GetMessage says the route is not at our path, not that the message is
    absent. The message stays unknown; the reason names the setting path_prefix."""
    responses.add(responses.POST, f"{ETEL_SHOP}.Zalo/GetMessage", status=404, body="not found")
    event = etelecom().fetch_status(provider_message_id="z-1", idempotency_key="k", oa_id="1")
    assert event.status == EventStatus.UNKNOWN and not event.proven_absent
    assert event.error_code == UNPROVEN and "path_prefix" in event.lookup_note
    assert all("ListMessages" not in c.request.url for c in responses.calls)


# ---- MMP (seeds 000 and 001) -------------------------------------------------------------------


def _mmp(cls, settings=None):
    kind = "vna_mmp" if cls is VnaMmpProvider else "metfone_mmp"
    return cls(config(kind, base_url=MMP, secrets={"api_key": "K"}, settings=settings))


SMS = dict(
    channel_kind="sms",
    channel_external_id="chan-1",
    template_id="",
    content="Xin chào",
    template_data={},
    param_order=(),
    oa_id="",
)


@responses.activate
def test_mmp_vna_sms_application_id_is_3():
    """000_cc92006a93368c4d.txt, lines 185-187: "applicationIdNumber- 1: viber" / "- 10: viber
    bot" / "- 3: sms". A VNA SMS broadcast carries applicationId 3, as a number."""
    responses.add(responses.POST, MMP_BROADCAST, json={"messageId": "m-1"})
    _mmp(VnaMmpProvider).send(message(**SMS))
    assert sent()["applicationId"] == 3
    assert b'"applicationId": 3' in responses.calls[-1].request.body


@pytest.mark.django_db
@responses.activate
def test_mmp_metfone_application_id_is_a_channel_setting():
    """001_73c3a081064a3a3a.txt, lines 138-139: "applicationIdNumber- 1: viber" / "- 10: viber
    bot" (no sms: 3 = sms is seed 000's, so for Metfone it is inferred). The channel's settings
    {"application_id": n} decide what its broadcasts carry; without it, the inferred 3."""
    responses.add(responses.POST, MMP_BROADCAST, json={"messageId": "m-1"})
    _mmp(MetfoneMmpProvider).send(message(**SMS))
    assert sent()["applicationId"] == 3  # inferred default
    account = ProviderAccountFactory(kind="metfone_mmp", base_url=MMP, secrets={"api_key": "K"})
    channel = ChannelFactory(
        account=account,
        kind="sms",
        official_account=None,
        external_id="chan-kh",
        settings={"application_id": 7},
    )
    campaign = CampaignFactory(channel=channel, template=None, content="សួស្តី")
    plan = campaign_send_plan(campaign)
    assert plan.application_id == 7
    _mmp(MetfoneMmpProvider).send(message(**{**SMS, "application_id": plan.application_id}))
    assert sent()["applicationId"] == 7
    # The channel admin refuses what is not a named key or not a number.
    assert channel_settings_errors({"application_id": "3"})
    assert channel_settings_errors({"applicationId": 3})
    assert channel_settings_errors({"application_id": 3}) == []
    bad = Channel(name="x", account=account, kind="sms", settings={"application_id": True})
    with pytest.raises(Exception, match="application_id"):
        bad.full_clean()


@pytest.mark.django_db
def test_mmp_channel_admin_shows_the_settings_with_help(admin_client):
    """000_cc92006a93368c4d.txt, lines 185-187 ("- 1: viber", "- 10: viber bot", "- 3: sms"):
    the channel page offers the applicationId setting, and its help says where 3 comes from."""
    account = ProviderAccountFactory(kind="metfone_mmp", base_url=MMP, secrets={"api_key": "K"})
    channel = ChannelFactory(account=account, kind="sms", official_account=None, external_id="c")
    page = admin_client.get(reverse("admin:providers_channel_change", args=[channel.pk]))
    html = page.content.decode()
    assert 'name="settings"' in html and "application_id" in html and "inferred" in html
    assert ProviderAccount.objects.filter(pk=account.pk).exists()


@responses.activate
def test_mmp_email_statuses_are_an_overridable_assumption():
    """000_cc92006a93368c4d.txt, line 60: "• EmailStatus" (a schema name in the table of
    contents, without its values). The values Loa reads are assumed and live in the account
    settings (email_statuses), merged over assumed.py's table."""
    assert "email_statuses" in DEFAULT_SETTINGS
    responses.add(
        responses.POST,
        MMP_EMAIL_STATUS,
        json={"data": [{"messageId": "e-1", "status": "ZZ_OPENED"}]},
    )
    p = _mmp(VnaMmpProvider)
    assert p.email_batch_status(message_ids=["e-1"]) == []  # not a value Loa knows
    p = _mmp(VnaMmpProvider, {"email_statuses": {"ZZ_OPENED": "read"}})
    [event] = p.email_batch_status(message_ids=["e-1"])
    assert event.status == EventStatus.READ and sent() == {"ids": ["e-1"]}
    responses.replace(
        responses.POST, MMP_EMAIL_STATUS, json={"data": [{"messageId": "e-1", "status": "SENT"}]}
    )
    [event] = p.email_batch_status(message_ids=["e-1"])
    assert event.status == EventStatus.SENT  # the assumed defaults stay under the override
    assert account_settings_errors(kind="vna_mmp", settings={"email_statuses": {}}) == []


@responses.activate
def test_mmp_404_rule_is_an_overridable_assumption():
    """000_cc92006a93368c4d.txt, line 43: "• Get Message Status" and 001_73c3a081064a3a3a.txt,
    lines 10-11: "• Get Message Status" / "GET": named, with no path and no "not found" answer.
    Which HTTP statuses prove nothing about the message is assumed (404), in the account
    settings (unproven_http_statuses)."""
    assert DEFAULT_SETTINGS["unproven_http_statuses"] == [404]
    responses.add(responses.GET, MMP_STATUS, status=404, json={})
    event = _mmp(VnaMmpProvider).fetch_status(provider_message_id="m-1", idempotency_key="k-1")
    assert event.error_code == UNPROVEN and "404" in event.error_message
    responses.replace(responses.GET, MMP_STATUS, status=410, json={})
    event = _mmp(MetfoneMmpProvider, {"unproven_http_statuses": [404, 410]}).fetch_status(
        provider_message_id="m-1", idempotency_key="k-1"
    )
    assert event.error_code == UNPROVEN and "410" in event.error_message
    assert not event.proven_absent
    with pytest.raises(ProviderError):
        _mmp(VnaMmpProvider, {"unproven_http_statuses": []}).fetch_status(
            provider_message_id="m-1", idempotency_key="k-1"
        )
