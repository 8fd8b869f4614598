"""eTelecom adapter: Twirp endpoints and bodies against seeds 002/004 and providers.md §1, message
objects and webhooks from the documented shapes, every error class, reconciliation by tracking_id."""

from __future__ import annotations

import json

import pytest
import responses

from providers import zalo
from providers.base import ErrorClass, EventStatus, ProviderError, SendOutcome, WebhookRejected
from providers.errors import NOT_FOUND
from providers.etelecom import EtelecomProvider, find_messages, message_event

from .conftest import config, fixture_json, fixture_text, message, webhook

SHOP = "https://api.etelecom.vn/v1/shop"
OA = "4097311281936189049"


def provider(settings=None, secrets=None, base_url="", **kw) -> EtelecomProvider:
    return EtelecomProvider(
        config(
            "etelecom",
            base_url=base_url,
            secrets=secrets
            if secrets is not None
            else {"api_key": "SHOP-KEY", "shop_key": "PARTNER-SHOP-KEY"},
            settings=settings,
            **kw,
        )
    )


def sent_body(i: int = -1) -> dict:
    return json.loads(responses.calls[i].request.body)


def ok_message(**kw) -> dict:
    base = fixture_json("etelecom/get_message_response.json")
    base.update(
        {"error_code": 0, "error_message": "", "status": "Z", "msg_id": "zmsg-1", "id": "et-1"}
    )
    base.update(kw)
    return base


# ---- endpoints, modes, auth -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "settings,base_url,expected",
    [
        ({}, "", "https://api.etelecom.vn/v1/shop.Zalo/SendZNS"),
        ({"mode": "partner"}, "", "https://api.etelecom.vn/v1/partner.Zalo/SendZNS"),
        ({"environment": "sandbox"}, "", "https://api-sandbox.etelecom.vn/v1/shop.Zalo/SendZNS"),
        (
            {"mode": "partner", "environment": "sandbox"},
            "",
            "https://api-sandbox.etelecom.vn/v1/partner.Zalo/SendZNS",
        ),
        ({}, "https://proxy.example/v1/shop/", "https://proxy.example/v1/shop.Zalo/SendZNS"),
    ],
)
def test_twirp_endpoint_urls(settings, base_url, expected):
    # `$BASE_URL.Zalo/<Method>`: the service is appended with a dot (providers.md §1.1)
    assert provider(settings, base_url=base_url).endpoint("SendZNS") == expected


@responses.activate
def test_shop_mode_uses_api_key_partner_mode_uses_shop_key():
    responses.add(responses.POST, f"{SHOP}.Zalo/ListOA", json={"accounts": []})
    responses.add(
        responses.POST, "https://api.etelecom.vn/v1/partner.Zalo/ListOA", json={"accounts": []}
    )
    provider().list_official_accounts()
    provider({"mode": "partner"}).list_official_accounts()
    assert responses.calls[0].request.headers["Authorization"] == "Bearer SHOP-KEY"
    assert responses.calls[1].request.headers["Authorization"] == "Bearer PARTNER-SHOP-KEY"
    assert responses.calls[0].request.headers["Content-Type"] == "application/json"
    assert all(c.request.method == "POST" for c in responses.calls)


def test_missing_key_for_the_mode_is_configuration():
    result = provider({"mode": "partner"}, secrets={"api_key": "x"}).send(message())
    assert (
        result.error_class == ErrorClass.CONFIGURATION
        and result.error_code == "missing_credentials"
    )


# ---- SendZNS body (seed 004) ----------------------------------------------------------------------


def test_send_zns_body_field_by_field():
    seed = fixture_json("etelecom/seed004_send_zns_fields.json")
    method, body = provider().build_payload(message())
    assert method == "SendZNS"
    assert set(body) <= set(seed["request"])
    assert body["oa_id"] == OA and isinstance(body["oa_id"], str)  # "string · int64"
    assert body["phone"] == "84901888484"
    assert body["template_id"] == 205644 and isinstance(body["template_id"], int)  # "integer"
    assert body["template_data"] == {"customer_name": "Nguyễn Văn A", "order_code": "HD00001"}
    assert body["tracking_id"] == "loa12t1abcdc34"  # our idempotency key
    assert body["sending_mode"] == "default" and body["sending_mode"] in seed["sending_mode_values"]
    assert "mode" not in body  # omitted = unknown = a real send


def test_test_send_uses_development_mode_and_tag3_setting():
    seed = fixture_json("etelecom/seed004_send_zns_fields.json")
    _m, body = provider({"sending_mode": "tag3"}).build_payload(message(test_mode=True))
    assert body["mode"] == "development" and body["mode"] in seed["mode_values"]
    assert body["sending_mode"] == "tag3"


def test_local_phone_format_option():
    _m, body = provider({"phone_format": "local"}).build_payload(message())
    assert body["phone"] == "0901888484"


def test_template_id_must_be_a_number():
    result = provider().send(message(template_id="abc"))
    assert result.error_class == ErrorClass.CONFIGURATION and result.error_code == "bad_template_id"


def test_journey_body():
    msg = message(template_data={"customer_name": "A", "order_code": "B", "jid": "J-1"})
    method, body = provider({"journey": True, "journey_id_field": "jid"}).build_payload(msg)
    assert method == "SendZNSJourney"
    assert set(body) == {
        "oa_id",
        "journey_id",
        "phone",
        "template_id",
        "template_data",
        "tracking_id",
    }
    assert body["journey_id"] == "J-1"
    assert body["template_data"] == {"customer_name": "A", "order_code": "B"}
    method, body = provider({"journey": True, "journey_id": "J-acc"}).build_payload(message())
    assert body["journey_id"] == "J-acc"
    with pytest.raises(ProviderError) as err:
        provider({"journey": True}).build_payload(message())
    assert err.value.error_class == ErrorClass.PERMANENT


# ---- send answers, every class ----------------------------------------------------------------------


@responses.activate
def test_send_accepted_with_the_message_object():
    responses.add(responses.POST, f"{SHOP}.Zalo/SendZNS", json=ok_message())
    result = provider().send(message())
    assert result.outcome == SendOutcome.ACCEPTED
    assert result.provider_message_id == "zmsg-1"  # Zalo's msg_id: what receipts carry
    responses.replace(responses.POST, f"{SHOP}.Zalo/SendZNS", json=ok_message(msg_id=""))
    assert provider().send(message()).provider_message_id == "et-1"  # else eTelecom's id


@responses.activate
def test_send_refused_by_zalo_in_the_message_object():
    responses.add(
        responses.POST,
        f"{SHOP}.Zalo/SendZNS",
        json=ok_message(status="N", error_code=-118, error_message="Zalo account not existed"),
    )
    result = provider().send(message())
    assert result.error_class == ErrorClass.PERMANENT and result.error_code == "-118"
    responses.replace(responses.POST, f"{SHOP}.Zalo/SendZNS", json=ok_message(error_code=-133))
    assert provider().send(message()).error_class == ErrorClass.DEFERRED
    responses.replace(responses.POST, f"{SHOP}.Zalo/SendZNS", json=ok_message(status="N"))
    result = provider().send(message())
    assert result.error_class == ErrorClass.PERMANENT and result.error_code == "etelecom_N"


@pytest.mark.parametrize(
    "status,body,klass,code",
    [
        (
            401,
            fixture_json("etelecom/error_unauthenticated.json"),
            ErrorClass.CONFIGURATION,
            "unauthenticated",
        ),
        (
            400,
            fixture_json("etelecom/error_invalid_argument.json"),
            ErrorClass.CONFIGURATION,
            "invalid_argument",
        ),
        (404, fixture_json("etelecom/error_bad_route.json"), ErrorClass.CONFIGURATION, "bad_route"),
        (
            400,
            {"code": "invalid_argument", "msg": "zalo: -108 phone invalid"},
            ErrorClass.PERMANENT,
            "-108",  # Zalo's code, as when Zalo's refusal comes back in the message object
        ),
        (
            400,
            {"code": "failed_precondition", "msg": "zalo error -144: OA daily quota exceeded"},
            ErrorClass.DEFERRED,
            "-144",  # the engine waits for the quota's midnight by this code
        ),
        (
            429,
            {"code": "resource_exhausted", "msg": "slow down"},
            ErrorClass.RETRYABLE,
            "resource_exhausted",
        ),
        (500, {"code": "internal", "msg": "boom"}, ErrorClass.AMBIGUOUS, "internal"),
        (503, {"code": "unavailable", "msg": "later"}, ErrorClass.AMBIGUOUS, "unavailable"),
        (502, None, ErrorClass.AMBIGUOUS, "http_502"),
        (403, None, ErrorClass.CONFIGURATION, "http_403"),
    ],
)
@responses.activate
def test_error_envelope_classes(status, body, klass, code):
    if body is None:
        responses.add(
            responses.POST, f"{SHOP}.Zalo/SendZNS", status=status, body="<html>gateway</html>"
        )
    else:
        responses.add(responses.POST, f"{SHOP}.Zalo/SendZNS", status=status, json=body)
    result = provider().send(message())
    assert result.outcome == SendOutcome.FAILED
    assert (result.error_class, result.error_code) == (klass, code)
    assert len(responses.calls) == 1  # a send is never retried on these
    if klass == ErrorClass.RETRYABLE:
        assert result.retry_after


@responses.activate
def test_non_json_success_is_ambiguous():
    responses.add(responses.POST, f"{SHOP}.Zalo/SendZNS", status=200, body="ok")
    result = provider().send(message())
    assert result.error_class == ErrorClass.AMBIGUOUS and result.error_code == "bad_response"


# ---- message objects (seed 002) ----------------------------------------------------------------------


def test_get_message_fixture_maps_to_a_failure():
    # The documented example has error_code 1: a failure with that code.
    event = message_event(fixture_json("etelecom/get_message_response.json"))
    assert event.status == EventStatus.FAILED
    assert event.error_code == "1" and event.error_message == "text"
    assert event.provider_message_id == "text" and event.idempotency_key == "text"


@pytest.mark.parametrize(
    "status,delivery,expected",
    [
        ("Z", "unknown", EventStatus.SENT),
        ("P", "unknown", EventStatus.SENT),
        ("P", "received", EventStatus.DELIVERED),
        ("P", "seen", EventStatus.READ),
        ("N", "unknown", EventStatus.FAILED),
        ("X", "unknown", EventStatus.UNKNOWN),
    ],
)
def test_status_and_delivery_status(status, delivery, expected):
    event = message_event(ok_message(status=status, delivery_status=delivery))
    assert event.status == expected


def test_fee_only_when_charged():
    assert (
        message_event(ok_message(delivery_status="received", fee_main=300, fee_token=50)).fee == 350
    )
    assert message_event(ok_message(delivery_status="received", is_charged=False)).fee is None
    delivered = message_event(ok_message(delivery_status="received"))
    assert delivered.occurred_at.isoformat().startswith("2025-11-02T02:05:55")


# ---- reconciliation -------------------------------------------------------------------------------------


@responses.activate
def test_fetch_status_by_id_uses_get_message():
    responses.add(
        responses.POST,
        f"{SHOP}.Zalo/GetMessage",
        json=ok_message(status="P", delivery_status="seen"),
    )
    event = provider().fetch_status(provider_message_id="zmsg-1", idempotency_key="k1", oa_id=OA)
    assert event.status == EventStatus.READ
    request = fixture_json("etelecom/get_message_request.json")
    assert set(sent_body()) == set(request)  # {"oa_id", "msg_id"} (seed 002)
    assert sent_body() == {"oa_id": OA, "msg_id": "zmsg-1"}


@responses.activate
def test_fetch_status_without_id_reconciles_by_tracking_id():
    responses.add(
        responses.POST,
        f"{SHOP}.Zalo/ListMessages",
        json=fixture_json("etelecom/list_messages_response.json"),
    )
    event = provider().fetch_status(
        provider_message_id="", idempotency_key="loa12t1abcdc34", oa_id=OA
    )
    assert event.status == EventStatus.DELIVERED
    assert event.provider_message_id == "5c4ee6a1b2c3d4e5f6a7b8c9d0e1f2a3"  # now known
    assert event.fee == 300
    body = sent_body()
    assert body["filter"] == {"tracking_id": "loa12t1abcdc34", "oa_id": OA}
    assert body["paging"]["limit"] == 10


def get_message_fails(status: int, code: str, msg: str) -> None:
    """GetMessage answers with eTelecom's error body (Twirp: an HTTP status, a code, a msg)."""
    responses.add(
        responses.POST, f"{SHOP}.Zalo/GetMessage", status=status, json={"code": code, "msg": msg}
    )


@responses.activate
def test_fetch_status_unknown_id_falls_back_to_tracking_id_then_not_found():
    get_message_fails(404, "not_found", "no")
    responses.add(responses.POST, f"{SHOP}.Zalo/ListMessages", json={"messages": [], "paging": {}})
    event = provider().fetch_status(provider_message_id="x", idempotency_key="k9", oa_id=OA)
    assert event.status == EventStatus.UNKNOWN and event.error_code == NOT_FOUND
    assert provider().fetch_status(provider_message_id="", idempotency_key="", oa_id=OA) is None


@responses.activate
def test_duplicate_rows_report_the_furthest_status():
    rows = [
        ok_message(tracking_id="k", status="P"),
        ok_message(tracking_id="k", status="P", delivery_status="seen"),
    ]
    responses.add(responses.POST, f"{SHOP}.Zalo/ListMessages", json={"messages": rows})
    assert (
        provider().fetch_status(provider_message_id="", idempotency_key="k").status
        == EventStatus.READ
    )


@responses.activate
def test_fetch_status_other_errors_raise():
    get_message_fails(401, "unauthenticated", "x")
    with pytest.raises(ProviderError) as err:
        provider().fetch_status(provider_message_id="x", idempotency_key="k", oa_id=OA)
    assert err.value.error_class == ErrorClass.CONFIGURATION


# ---- templates, OAs, webhook registration -------------------------------------------------------------------


@responses.activate
def test_list_templates_with_params():
    responses.add(
        responses.POST,
        f"{SHOP}.Zalo/ListTemplates",
        json=fixture_json("etelecom/list_templates_response.json"),
    )
    first, second = provider().list_templates(oa_id=OA)
    assert sent_body() == {"filter": {"oa_id": OA}, "paging": {"limit": 100}}
    assert first["template_id"] == "231677" and first["status"] == "approved"
    assert first["tag"] == "transaction" and first["price"] == 300
    assert first["params"] == [
        {
            "name": "customer_name",
            "type": "CUSTOMER_NAME",
            "required": True,
            "min_length": 0,
            "max_length": 30,
            "position": 0,
        },
        {
            "name": "order_code",
            "type": "CODE",
            "required": True,
            "min_length": 0,
            "max_length": 30,
            "position": 1,
        },
    ]
    assert second["status"] == "disabled" and second["tag"] == "promotion"


@responses.activate
def test_list_templates_follows_the_cursor():
    page1 = {
        "templates": [{"template_id": 1, "template_name": "a", "template_status": "ENABLE"}],
        "paging": {"next": "c2"},
    }
    page2 = {
        "templates": [
            {"template_id": 2, "template_name": "b", "template_status": "PENDING_REVIEW"}
        ],
        "paging": {"next": ""},
    }
    responses.add(responses.POST, f"{SHOP}.Zalo/ListTemplates", json=page1)
    responses.add(responses.POST, f"{SHOP}.Zalo/ListTemplates", json=page2)
    items = provider().list_templates()
    assert [t["status"] for t in items] == ["approved", "pending"]
    assert sent_body()["paging"] == {"limit": 100, "after": "c2"}


@responses.activate
def test_list_official_accounts_with_quota_and_quality():
    responses.add(
        responses.POST, f"{SHOP}.Zalo/ListOA", json=fixture_json("etelecom/list_oa_response.json")
    )
    assert provider().list_official_accounts() == [
        {
            "oa_id": OA,
            "name": "Loa Shop OA",
            "quality": "HIGH",
            "daily_quota": 5000,
            "remaining_quota": 4321,
        }
    ]
    assert sent_body() == {}


@responses.activate
def test_register_webhook_with_update_shop_oa():
    responses.add(
        responses.POST,
        f"{SHOP}.Zalo/UpdateShopOA",
        json=fixture_json("etelecom/update_shop_oa_response.json"),
    )
    assert provider().register_webhooks(oa_ids=[OA]) == [OA]
    assert sent_body() == {"oa_id": OA, "webhook_url": "https://loa.example/webhooks/tok/"}


@responses.activate
def test_test_connection_reports_mode():
    responses.add(
        responses.POST, f"{SHOP}.Zalo/ListOA", json=fixture_json("etelecom/list_oa_response.json")
    )
    assert (
        "shop mode" in provider().test_connection() and "1 Official" in provider().test_connection()
    )


# ---- webhooks -------------------------------------------------------------------------------------------


def test_zl_oa_message_event_bare_and_wrapped():
    body = fixture_json("etelecom/zl_oa_message_event.json")
    for payload in (
        body,
        {"entity": "zl_oa_message", "data": body},
        {"changes": [{"object": body}]},
    ):
        parsed = provider().parse_webhook(webhook(body=payload))
        (event,) = parsed.statuses
        assert event.status == EventStatus.READ
        assert event.idempotency_key == "loa12t1abcdc34"
        assert event.provider_message_id == "5c4ee6a1b2c3d4e5f6a7b8c9d0e1f2a3"
        assert parsed.dedupe_key.startswith("etelecom:")
    assert len(find_messages([body, body])) == 2


def test_unrelated_etelecom_event_is_ignored():
    parsed = provider().parse_webhook(webhook(body={"entity": "call_log", "data": {"duration": 3}}))
    assert not parsed.statuses and parsed.ignored_reason


def _signed(data_text: str, secret: str) -> dict:
    data = json.loads(data_text)
    sig = zalo.event_signature(data["app_id"], data_text.encode(), data["timestamp"], secret)
    return {"x-zevent-signature": f"mac={sig}"}


def test_zalo_receipt_forwarded_unsigned_without_secret():
    text = fixture_text("zalo/user_received_message.json")
    parsed = provider().parse_webhook(webhook(body=text.encode()))
    (event,) = parsed.statuses
    assert event.status == EventStatus.DELIVERED
    assert event.provider_message_id == "5c4ee6a1b2c3d4e5f6a7b8c9d0e1f2a3"
    assert event.idempotency_key == "loa12t1abcdc34"
    assert event.occurred_at.year == 2024
    assert parsed.dedupe_key.startswith("zalo:")


def test_zalo_signature_checked_when_the_oa_secret_is_known():
    text = fixture_text("zalo/user_received_message.json")
    p = provider(oa_secrets={OA: "oa-secret-key"})
    parsed = p.parse_webhook(webhook(body=text.encode(), headers=_signed(text, "oa-secret-key")))
    assert parsed.statuses[0].status == EventStatus.DELIVERED
    # bare hex accepted too
    sig = _signed(text, "oa-secret-key")["x-zevent-signature"].removeprefix("mac=")
    assert p.parse_webhook(
        webhook(body=text.encode(), headers={"X-ZEvent-Signature": sig})
    ).statuses
    with pytest.raises(WebhookRejected) as err:
        p.parse_webhook(webhook(body=text.encode(), headers=_signed(text, "wrong-secret")))
    assert err.value.status == 403
    with pytest.raises(WebhookRejected) as err:
        p.parse_webhook(webhook(body=text.encode()))
    assert err.value.status == 403
    # a tampered body fails even with the right secret's old signature
    tampered = text.replace("1714529559833", "1714529559999")
    with pytest.raises(WebhookRejected):
        p.parse_webhook(webhook(body=tampered.encode(), headers=_signed(text, "oa-secret-key")))


def test_zalo_reply_becomes_inbound_and_signature_uses_the_recipient_oa():
    text = fixture_text("zalo/user_send_text.json")
    p = provider(oa_secrets={OA: "s3cret"})
    parsed = p.parse_webhook(webhook(body=text.encode(), headers=_signed(text, "s3cret")))
    (inbound,) = parsed.inbound
    assert inbound.text == "TU CHOI" and inbound.sender == "8471285721482958123"
    assert inbound.provider_message_id == "96d51cc0a4ad61f338bc"


def test_other_zalo_events_are_ignored_not_errors():
    for event in (
        {"app_id": "1", "event_name": "follow", "timestamp": "1714529560000"},
        {
            "app_id": "1",
            "event_name": "user_received_message",
            "message": {"msg_id": "m"},
            "timestamp": "1",
        },
    ):
        parsed = provider().parse_webhook(webhook(body=event))
        assert not parsed.statuses and not parsed.inbound and parsed.ignored_reason


def test_bad_webhook_bodies():
    with pytest.raises(WebhookRejected):
        provider().parse_webhook(webhook(body=b"not json"))
    assert provider().parse_webhook(webhook("GET")).ignored_reason
