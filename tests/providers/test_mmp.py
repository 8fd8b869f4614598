"""VNA MMP and Metfone MMP: one module, two registry entries. Webhooks exactly as seeds 000/001;
request bodies as the documented assumptions, and every assumption overridable per account."""

from __future__ import annotations

import json

import pytest
import responses

from providers.base import (
    UNPROVEN,
    ErrorClass,
    EventStatus,
    ProviderError,
    SendOutcome,
    WebhookRejected,
)
from providers.mmp.adapter import MetfoneMmpProvider, MmpProvider, VnaMmpProvider
from providers.mmp.assumed import ASSUMED_API
from providers.mmp.bodies import deep_merge, pluck, render
from providers.mmp.callbacks import status_of
from providers.registry import PROVIDERS, get_provider_class

from .conftest import config, fixture_json, fixture_text, message, webhook

BASE = "https://mmp.example.test"
SECRETS = {"api_key": "MMP-KEY-1"}


def vna(settings=None, base_url=BASE, secrets=None, **kw) -> VnaMmpProvider:
    return VnaMmpProvider(
        config(
            "vna_mmp",
            base_url=base_url,
            secrets=secrets if secrets is not None else SECRETS,
            settings=settings,
            **kw,
        )
    )


def metfone(settings=None) -> MetfoneMmpProvider:
    return MetfoneMmpProvider(
        config("metfone_mmp", base_url=BASE, secrets=SECRETS, settings=settings)
    )


# A Viber message on a VNA channel; a test overrides what it is about.
VIBER = {
    "channel_kind": "viber",
    "channel_external_id": "917df4d0-7eb7-11ee-b9de-1727a5a284e5",
    "template_id": "tpl-public-1",
    "template_data": {"name": "Hòa", "code": "X1"},
    "param_order": ("name", "code"),
    "oa_id": "",
    "idempotency_key": "5833f6f3-4c2d-4cb2-82b3-848e9313ff10",
}


def viber(**kw):
    return message(**{**VIBER, **kw})


def sent_body(i: int = -1) -> dict:
    return json.loads(responses.calls[i].request.body)


# ---- registry and defaults ------------------------------------------------------------------------


def test_two_registry_entries_one_module():
    assert get_provider_class("vna_mmp") is VnaMmpProvider
    assert get_provider_class("metfone_mmp") is MetfoneMmpProvider
    assert issubclass(VnaMmpProvider, MmpProvider) and issubclass(MetfoneMmpProvider, MmpProvider)
    assert {"sandbox", "etelecom", "esms", "vna_mmp", "metfone_mmp"} <= set(PROVIDERS)
    assert VnaMmpProvider.label != MetfoneMmpProvider.label
    assert "zalo_zns" in VnaMmpProvider.channel_kinds and "email" in VnaMmpProvider.channel_kinds
    assert "zalo_zns" not in MetfoneMmpProvider.channel_kinds  # Cambodia: no Zalo
    assert metfone().send(message(channel_kind="zalo_zns")).error_code == "unsupported_channel"


def test_no_guessed_base_url_and_missing_key():
    result = vna(base_url="").send(viber())
    assert (
        result.error_class == ErrorClass.CONFIGURATION and result.error_code == "missing_base_url"
    )
    result = vna(secrets={}).send(viber())
    assert (
        result.error_class == ErrorClass.CONFIGURATION
        and result.error_code == "missing_credentials"
    )


# ---- payload builder --------------------------------------------------------------------------------


@responses.activate
def test_broadcast_template_body_and_auth_defaults():
    responses.add(
        responses.POST, f"{BASE}/api/v1/channel/broadcast", json={"messageId": "7f3b46e9"}
    )
    result = vna().send(viber())
    assert result.outcome == SendOutcome.ACCEPTED and result.provider_message_id == "7f3b46e9"
    req = responses.calls[0].request
    assert req.headers["Authorization"] == "Bearer MMP-KEY-1"
    assert sent_body() == {
        "publicId": "917df4d0-7eb7-11ee-b9de-1727a5a284e5",  # channel publicId
        "applicationId": 1,  # viber (seed 000)
        "clientMessageId": "5833f6f3-4c2d-4cb2-82b3-848e9313ff10",  # our idempotency key
        "message": {
            "type": "template",
            "template": {"publicId": "tpl-public-1", "params": {"name": "Hòa", "code": "X1"}},
        },
        "subscribers": [
            {"phone": "84901888484", "clientMessageId": "5833f6f3-4c2d-4cb2-82b3-848e9313ff10"}
        ],
    }


@responses.activate
def test_text_broadcast_and_unknown_application_id_dropped():
    responses.add(
        responses.POST, f"{BASE}/api/v1/channel/broadcast", json={"data": {"messageId": "m2"}}
    )
    msg = viber(channel_kind="rcs", template_id="", content="Xin chào!")
    assert vna().send(msg).provider_message_id == "m2"
    body = sent_body()
    assert body["message"] == {"type": "text", "text": "Xin chào!"}
    assert "applicationId" not in body  # rcs has no documented applicationId: the key is dropped


@responses.activate
def test_every_assumption_is_overridable_per_account():
    settings = {
        "auth_header": "x-api-key",
        "auth_prefix": "",
        "api": {"broadcast": {"path": "/v2/send/{channel_id}"}},
        "bodies": {
            "broadcast_template": {
                "to": "+{{phone}}",
                "ref": "{{client_message_id}}",
                "values": "{{template_params}}",
                "label": "Loa {{channel_kind}} {{template_id}}",
            }
        },
        "responses": {"message_id": ["result.uuid"]},
        "application_ids": {"rcs": 7},
    }
    responses.add(responses.POST, f"{BASE}/v2/send/chan%2F1", json={"result": {"uuid": "u-1"}})
    p = vna(settings)
    result = p.send(viber(channel_external_id="chan/1"))
    assert result.provider_message_id == "u-1"
    req = responses.calls[0].request
    assert req.headers["x-api-key"] == "MMP-KEY-1" and "Authorization" not in req.headers
    assert sent_body() == {
        "to": "+84901888484",
        "ref": "5833f6f3-4c2d-4cb2-82b3-848e9313ff10",
        "values": ["Hòa", "X1"],
        "label": "Loa viber tpl-public-1",
    }
    # the other operations keep their defaults (deep merge)
    assert p.settings["api"]["message_status"] == ASSUMED_API["message_status"]
    assert p.settings["application_ids"] == {"viber": 1, "viber_bot": 10, "sms": 3, "rcs": 7}


def test_unknown_placeholder_is_a_configuration_error():
    p = vna({"bodies": {"broadcast_template": {"x": "{{no_such_thing}}"}}})
    result = p.send(viber())
    assert result.error_class == ErrorClass.CONFIGURATION and result.error_code == "bad_settings"
    assert "no_such_thing" in result.error_message


def test_render_and_pluck_helpers():
    assert render(
        {"a": "{{x}}", "b": ["{{y}}"], "c": "n={{x}}", "d": "{{none}}"},
        {"x": 1, "y": {"k": 2}, "none": None},
    ) == {
        "a": 1,
        "b": [{"k": 2}],
        "c": "n=1",
    }
    data = {"data": [{"messageId": "m"}], "x": None}
    assert pluck(data, ["nope", "data.0.messageId"]) == "m"
    assert pluck(data, "x") is None and pluck(data, "data.5.messageId") is None
    assert deep_merge({"a": {"b": 1, "c": 2}}, {"a": {"b": 3}}) == {"a": {"b": 3, "c": 2}}


def test_missing_channel_id():
    result = vna().send(viber(channel_external_id=""))
    assert result.error_class == ErrorClass.CONFIGURATION and result.error_code == "missing_channel"


# ---- answers, every class --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "status,body,klass,code",
    [
        (401, {"errorCode": "UNAUTHORIZED"}, ErrorClass.CONFIGURATION, "http_401"),
        (404, {}, ErrorClass.CONFIGURATION, "http_404"),
        (400, {"errorMessage": "bad body"}, ErrorClass.CONFIGURATION, "http_400"),
        (409, {}, ErrorClass.AMBIGUOUS, "http_409"),
        (429, {}, ErrorClass.RETRYABLE, "http_429"),
        (500, {}, ErrorClass.AMBIGUOUS, "http_500"),
    ],
)
@responses.activate
def test_http_error_classes(status, body, klass, code):
    responses.add(responses.POST, f"{BASE}/api/v1/channel/broadcast", status=status, json=body)
    result = vna().send(viber())
    assert (result.error_class, result.error_code) == (klass, code)
    assert len(responses.calls) == 1


@responses.activate
def test_vendor_error_codes_and_status_classes_are_configurable():
    settings = {
        "error_codes": {"INVALID_PHONE": "permanent"},
        "http_error_classes": {"422": "deferred"},
    }
    responses.add(
        responses.POST,
        f"{BASE}/api/v1/channel/broadcast",
        status=400,
        json={"errorCode": "INVALID_PHONE", "errorMessage": "phone"},
    )
    result = vna(settings).send(viber())
    assert (result.error_class, result.error_code, result.error_message) == (
        ErrorClass.PERMANENT,
        "INVALID_PHONE",
        "phone",
    )
    responses.replace(responses.POST, f"{BASE}/api/v1/channel/broadcast", status=422, json={})
    assert vna(settings).send(viber()).error_class == ErrorClass.DEFERRED


@responses.activate
def test_2xx_answers_without_an_id():
    responses.add(
        responses.POST, f"{BASE}/api/v1/channel/broadcast", json={"code": 0, "message": "OK"}
    )
    result = vna().send(viber())
    assert result.outcome == SendOutcome.ACCEPTED and result.provider_message_id == ""
    responses.replace(
        responses.POST, f"{BASE}/api/v1/channel/broadcast", json={"code": "QUOTA", "message": "no"}
    )
    result = vna().send(viber())
    assert result.error_class == ErrorClass.CONFIGURATION and result.error_code == "QUOTA"
    responses.replace(responses.POST, f"{BASE}/api/v1/channel/broadcast", body="<html/>")
    assert vna().send(viber()).error_class == ErrorClass.AMBIGUOUS


# ---- webhooks: seeds 000 and 001, exactly ------------------------------------------------------------------


@pytest.mark.parametrize("make", [vna, metfone])
def test_broadcast_status_webhook_from_the_seed(make):
    text = fixture_text("mmp/webhook_broadcast.json")
    parsed = make().parse_webhook(webhook(body=text.encode()))
    (event,) = parsed.statuses
    assert event.status == EventStatus.READ  # status 5
    assert event.provider_message_id == "7f3b46e9-704c-4125-b7e7-ff31a90c2b79"
    assert event.idempotency_key == "5833f6f3-4c2d-4cb2-82b3-848e9313ff10"
    # 174911328000 fits no epoch unit (a truncated example): no invented time
    assert event.occurred_at is None
    assert parsed.dedupe_key.startswith(make().kind + ":")
    assert not parsed.inbound


@pytest.mark.parametrize("make", [vna, metfone])
def test_conversation_webhook_from_the_seed(make):
    text = fixture_text("mmp/webhook_conversation.json")
    parsed = make().parse_webhook(webhook(body=text.encode()))
    (inbound,) = parsed.inbound
    assert inbound.sender == "3d2ed575-f552-4b5d-8888-c33cb62f9f9c"
    assert inbound.text == "hoha"
    assert inbound.name == "Hà Phước Hòa"
    assert inbound.phone == ""
    assert inbound.channel_external_id == "917df4d0-7eb7-11ee-b9de-1727a5a284e5"
    assert inbound.provider_message_id == "f543ae0c-e802-413c-862d-f1dad79ec562"
    assert inbound.occurred_at.isoformat().startswith("2025-06-10")
    assert not parsed.statuses


@pytest.mark.parametrize(
    "status,cause,expected",
    [
        (1, "SEND", EventStatus.SENT),
        (2, "SEND", EventStatus.SENT),
        (3, "FAIL", EventStatus.FAILED),
        (4, "DELIVERED", EventStatus.DELIVERED),
        (5, "READ", EventStatus.READ),
        (None, "DELIVERED", EventStatus.DELIVERED),
        (None, "FAIL", EventStatus.FAILED),
        (9, "WHAT", EventStatus.UNKNOWN),
    ],
)
def test_status_and_cause_mapping(status, cause, expected):
    assert status_of(status, cause) == expected
    body = {**fixture_json("mmp/webhook_broadcast.json"), "status": status, "cause": cause}
    (event,) = vna().parse_webhook(webhook(body=body)).statuses
    assert event.status == expected
    if expected == EventStatus.FAILED:
        assert event.error_code == "mmp_fail" and event.error_message == cause


def test_webhook_edge_cases():
    seed = fixture_json("mmp/webhook_broadcast.json")
    # a list of events is accepted; each is parsed
    parsed = vna().parse_webhook(webhook(body=[seed, {**seed, "status": 4, "cause": "DELIVERED"}]))
    assert [e.status for e in parsed.statuses] == [EventStatus.READ, EventStatus.DELIVERED]
    # dedupe differs by status, is stable for the same event
    a = vna().parse_webhook(webhook(body=seed)).dedupe_key
    assert a == vna().parse_webhook(webhook(body=dict(seed))).dedupe_key
    assert a != vna().parse_webhook(webhook(body={**seed, "status": 4})).dedupe_key
    # a conversation EVENT (type 1) carries no reply
    conv = fixture_json("mmp/webhook_conversation.json")
    parsed = vna().parse_webhook(webhook(body={**conv, "type": 1}))
    assert not parsed.inbound and parsed.ignored_reason
    # a non-text message keeps a marker
    parsed = vna().parse_webhook(
        webhook(body={**conv, "message": {"type": "image", "extra": {"url": "u"}}})
    )
    assert parsed.inbound[0].text == "[image]"
    with pytest.raises(WebhookRejected):
        vna().parse_webhook(webhook(body={**seed, "messageId": "", "clientMessageId": ""}))
    with pytest.raises(WebhookRejected):
        vna().parse_webhook(webhook(body=b"{broken"))
    with pytest.raises(WebhookRejected):
        vna().parse_webhook(webhook(body=b'"a string"'))
    assert vna().parse_webhook(webhook(body={"hello": 1})).ignored_reason == "unknown MMP payload"
    assert vna().parse_webhook(webhook("GET")).ignored_reason


# ---- Get Message Status, email -----------------------------------------------------------------------


@responses.activate
def test_fetch_status():
    url = f"{BASE}/api/v1/message/status"
    responses.add(responses.GET, url, json={"messageId": "m1", "status": 4, "cause": "DELIVERED"})
    event = vna().fetch_status(provider_message_id="m1", idempotency_key="k1")
    assert event.status == EventStatus.DELIVERED and event.idempotency_key == "k1"
    assert responses.calls[0].request.url == f"{url}?messageId=m1&clientMessageId=k1"
    responses.replace(responses.GET, url, json={"data": {"status": 3, "cause": "FAIL"}})
    event = vna().fetch_status(provider_message_id="", idempotency_key="k1")
    assert event.status == EventStatus.FAILED and event.error_code == "mmp_fail"
    assert vna().fetch_status(provider_message_id="", idempotency_key="") is None


@responses.activate
def test_fetch_status_404_is_unproven_and_never_asks_the_email_api():
    """A 404 from Get Message Status (an assumed path) proves nothing; a channel message is never
    looked up through the email batch-status API."""
    responses.add(responses.GET, f"{BASE}/api/v1/message/status", status=404, json={})
    event = vna().fetch_status(provider_message_id="m1", idempotency_key="k", channel_kind="sms")
    assert event.status == EventStatus.UNKNOWN and event.error_code == UNPROVEN
    assert not event.proven_absent and "assumed" in event.error_message
    assert len(responses.calls) == 1  # no email/status call


@responses.activate
def test_email_status_comes_from_get_batch_email_status():
    responses.add(
        responses.POST,
        f"{BASE}/api/v1/email/status",
        json={"data": [{"messageId": "e1", "status": "OPENED"}]},
    )
    event = vna().fetch_status(provider_message_id="e1", idempotency_key="k", channel_kind="email")
    assert event.status == EventStatus.READ and event.idempotency_key == "k"
    assert sent_body() == {"ids": ["e1"]}
    responses.replace(responses.POST, f"{BASE}/api/v1/email/status", json={"data": []})
    event = vna().fetch_status(provider_message_id="e2", idempotency_key="k", channel_kind="email")
    assert event.status == EventStatus.UNKNOWN and event.error_code == UNPROVEN
    assert not event.proven_absent
    assert all("message/status" not in c.request.url for c in responses.calls)


@responses.activate
def test_email_is_a_channel_like_the_others():
    responses.add(responses.POST, f"{BASE}/api/v1/email/send", json={"messageId": "e-9"})
    msg = viber(
        channel_kind="email",
        template_id="",
        template_data={"email": "an@example.vn"},
        content="<p>Chào An</p>",
        subject="Đơn hàng",
    )
    result = vna({"email_from": "shop@loa.example"}).send(msg)
    assert result.provider_message_id == "e-9"
    assert sent_body() == {
        "from": "shop@loa.example",
        "to": ["an@example.vn"],
        "subject": "Đơn hàng",
        "html": "<p>Chào An</p>",
        "clientMessageId": "5833f6f3-4c2d-4cb2-82b3-848e9313ff10",
    }
    no_address = vna().send(viber(channel_kind="email", template_data={}))
    assert (
        no_address.error_class == ErrorClass.PERMANENT
        and no_address.error_code == "missing_recipient"
    )


# ---- conversation, consent, channels, templates, bulk ------------------------------------------------------


@responses.activate
def test_send_conversation_message_reply():
    responses.add(responses.POST, f"{BASE}/api/v1/channel/conversation", json={"messageId": "r-1"})
    assert (
        vna().send_conversation_message(
            channel_id="ch", conversation_id="3d2e", text="Dạ, em chào anh"
        )
        == "r-1"
    )
    body = sent_body()
    assert body["publicId"] == "ch" and body["to"] == "3d2e"
    assert body["message"] == {"type": "text", "text": "Dạ, em chào anh"}
    assert body["clientMessageId"].startswith("reply-")
    with pytest.raises(ProviderError):
        vna().send_conversation_message(channel_id="ch", conversation_id="3d2e", text="  ")
    responses.replace(responses.POST, f"{BASE}/api/v1/channel/conversation", status=401, json={})
    with pytest.raises(ProviderError) as err:
        vna().send_conversation_message(channel_id="ch", conversation_id="c", text="x")
    assert err.value.error_class == ErrorClass.CONFIGURATION


@responses.activate
def test_zalo_consent_and_channel_endpoints():
    responses.add(responses.GET, f"{BASE}/api/v1/channel/zalo/consent", json={"consent": True})
    responses.add(responses.POST, f"{BASE}/api/v1/channel/zalo/consent", json={"requested": True})
    responses.add(responses.GET, f"{BASE}/api/v1/channel/ch-1", json={"name": "OA"})
    responses.add(responses.GET, f"{BASE}/api/v1/channel/ch-1/status", json={"status": "ACTIVE"})
    responses.add(responses.GET, f"{BASE}/api/v1/summary/channel/ch-1", json={"sent": 10})
    p = vna()
    assert p.check_zalo_consent(channel_id="ch-1", phone="84901888484") == {"consent": True}
    assert responses.calls[-1].request.url.endswith("?publicId=ch-1&phone=84901888484")
    assert p.request_zalo_consent(channel_id="ch-1", phone="84901888484") == {"requested": True}
    assert sent_body() == {"publicId": "ch-1", "phone": "84901888484"}
    assert p.channel_info(channel_id="ch-1") == {"name": "OA"}
    assert p.channel_status(channel_id="ch-1") == {"status": "ACTIVE"}
    assert p.channel_summary(channel_id="ch-1") == {"sent": 10}


@responses.activate
def test_template_operations():
    responses.add(responses.POST, f"{BASE}/api/v1/template", json={"publicId": "t-new"})
    responses.add(responses.GET, f"{BASE}/api/v1/template/t-new", json={"publicId": "t-new"})
    responses.add(responses.POST, f"{BASE}/api/v1/template/t-new", json={"ok": True})
    responses.add(responses.DELETE, f"{BASE}/api/v1/template/t-new", json={})
    responses.add(
        responses.GET,
        f"{BASE}/api/v1/template/approved",
        json={
            "data": [
                {
                    "publicId": "t1",
                    "name": "Welcome",
                    "content": "Hi {{name}}, code {{code}} {{name}}",
                }
            ]
        },
    )
    p = vna()
    assert p.create_template(template={"name": "Welcome", "content": "Hi"}) == {"publicId": "t-new"}
    assert sent_body() == {"name": "Welcome", "content": "Hi"}  # the vendor body, as given
    assert p.get_template(template_id="t-new") == {"publicId": "t-new"}
    p.update_template(template_id="t-new", template={"content": "Hello"})
    assert sent_body() == {"content": "Hello"}
    assert p.delete_template(template_id="t-new") == {}
    (tpl,) = p.list_templates(oa_id="ch-1")
    assert responses.calls[-1].request.url.endswith("approved?publicId=ch-1")
    assert tpl["template_id"] == "t1" and tpl["status"] == "approved"
    assert [x["name"] for x in tpl["params"]] == ["name", "code"]
    assert tpl["body"] == "Hi {{name}}, code {{code}} {{name}}"
    assert tpl["channel_kind"] == ""  # the answer did not say
    kinds = [
        vna()._kind_of(row)
        for row in ({"channelType": "VIBER"}, {"applicationId": 10}, {"channel": "Zalo"}, {})
    ]
    assert kinds == ["viber", "viber_bot", "zalo_zns", ""]
    assert p.settings["bodies"].get("template_create") is None  # the one-off body did not stick


@responses.activate
def test_bulk_campaign_paths():
    responses.add(responses.GET, f"{BASE}/api/v1/bulk-campaign", json={"data": [{"id": "b1"}]})
    responses.add(
        responses.POST, f"{BASE}/api/v1/bulk-campaign/broadcast", json={"bulkCampaignId": "b2"}
    )
    responses.add(responses.POST, f"{BASE}/api/v1/bulk-campaign/contact", json={"ok": True})
    p = vna()
    assert p.list_bulk_campaigns() == [{"id": "b1"}]
    recipients = [viber(idempotency_key="k1"), viber(idempotency_key="k2", phone="84912345678")]
    assert (
        p.send_bulk_campaign_broadcast(
            name="Tết", channel_id="ch", template_id="t1", recipients=recipients
        )
        == "b2"
    )
    body = sent_body()
    assert body["name"] == "Tết" and body["publicId"] == "ch" and body["applicationId"] == 1
    assert body["contacts"] == [
        {"phone": "84901888484", "clientMessageId": "k1", "params": {"name": "Hòa", "code": "X1"}},
        {"phone": "84912345678", "clientMessageId": "k2", "params": {"name": "Hòa", "code": "X1"}},
    ]
    p.send_bulk_contact_message(bulk_campaign_id="b2", recipients=recipients[:1])
    assert sent_body() == {"bulkCampaignId": "b2", "contacts": body["contacts"][:1]}


@responses.activate
def test_test_connection():
    responses.add(responses.GET, f"{BASE}/api/v1/template/approved", json={"data": []})
    assert "0 approved template" in vna().test_connection()
    responses.add(responses.GET, f"{BASE}/api/v1/channel/ch-9", json={})
    assert "ch-9" in vna({"test_channel_id": "ch-9"}).test_connection()
    assert vna().list_official_accounts() == []


def test_phone_formats():
    assert vna({"phone_format": "plus"})._phone("84901888484") == "+84901888484"
    assert vna({"phone_format": "local"})._phone("84901888484") == "0901888484"
    assert vna()._phone("+855123456789") == "855123456789"
