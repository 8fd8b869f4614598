"""eSMS adapter: request bodies against seed 003 and providers.md §2, answers and callbacks from the
documented examples (tests/fixtures/esms/), every error class, reconciliation within rate limits."""

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
from providers.esms.adapter import EsmsProvider, request_id_for
from providers.esms.callbacks import parse_error_info, status_from_fields

from .conftest import config, esms_oas_answer, fixture_json, fixture_query, message, webhook

BASE = "https://rest.esms.vn/MainService.svc/json"
V4 = f"{BASE}/SendZaloMessage_V4_post_json/"
V6 = f"{BASE}/SendZaloMessage_V6/"
STATUS = "https://status-sms.esms.vn/ZaloCallback/GetCallback"
SECRETS = {"api_key": "AK-0001", "secret_key": "SK-0002"}


def provider(**settings) -> EsmsProvider:
    return EsmsProvider(config("esms", secrets=SECRETS, settings=settings))


def sent_body(i: int = -1) -> dict:
    return json.loads(responses.calls[i].request.body)


# ---- request bodies ---------------------------------------------------------------------------


def test_v4_body_field_by_field_against_the_docs():
    url, body = provider(campaign_name="Tết 2026").build_payload(message())
    documented = fixture_json("esms/send_v4_request.json")  # providers.md §2.2
    seed = fixture_json("esms/seed003_journey_request_fields.json")
    assert url == seed["url"]
    # Every field we send is a documented one (seed 003 / §2.2), with its documented type.
    assert set(body) <= set(documented) | set(seed["request"])
    assert body["ApiKey"] == "AK-0001" and body["SecretKey"] == "SK-0002"
    assert body["Phone"] == "0901888484"  # local format, as eSMS's examples
    # Params: "the same of its order in your template" (seed 003)
    assert body["Params"] == ["Nguyễn Văn A", "HD00001"]
    assert body["TempID"] == "205644" and isinstance(body["TempID"], str)
    assert body["OAID"] == "4097311281936189049"
    assert body["RequestId"] == "loa12t1abcdc34"
    assert body["CallbackUrl"] == "https://loa.example/webhooks/tok/"
    assert body["Sandbox"] == "0"
    # SendingMode is not a field of seed 003: sent only when the account asks for it.
    assert "SendingMode" not in body
    assert provider(sending_mode="3").build_payload(message())[1]["SendingMode"] == "3"
    assert body["campaignid"] == "Tết 2026"
    assert "IsJourney" not in body and "SendDate" not in body  # SendDate omitted = send now
    for key in ("Phone", "TempID", "OAID", "RequestId", "Sandbox"):
        assert isinstance(body[key], str)  # every field is typed string in the docs


def test_v4_params_follow_template_order_and_duplicates_once():
    msg = message(template_data={"b": "2", "a": "1", "c": "3"}, param_order=("a", "b", "a", "c"))
    _url, body = provider().build_payload(msg)
    assert body["Params"] == ["1", "2", "3"]


def test_v6_sends_named_tempdata():
    url, body = provider(api_version="v6").build_payload(message())
    documented = fixture_json("esms/send_v6_request.json")
    assert url == V6
    assert set(body) <= set(documented)
    assert body["TempData"] == {"customer_name": "Nguyễn Văn A", "order_code": "HD00001"}
    assert "Params" not in body


def test_journey_send_per_account_and_per_message():
    seed = fixture_json("esms/seed003_journey_request_fields.json")
    url, body = provider(journey=True, journey_id="J-77").build_payload(message())
    assert url == seed["url"]  # journey uses the V4 URL
    # Seed 003: "IsJourney string True: it's the journey message." The string, as written.
    assert body["IsJourney"] == "True" and isinstance(body["IsJourney"], str)
    assert body["OrderId"] == "J-77"
    assert set(body) <= set(seed["request"])  # nothing the seed does not list
    # per message: the OrderId comes from template_data and is not sent as a template param
    msg = message(template_data={"customer_name": "A", "order_code": "B", "journey": "ORD-9"})
    _url, body = provider(journey=True, journey_id_field="journey", api_version="v6").build_payload(
        msg
    )
    assert body["OrderId"] == "ORD-9"
    assert body["Params"] == ["A", "B"]  # journey forces V4
    with pytest.raises(ProviderError) as err:
        provider(journey=True).build_payload(message())
    assert err.value.error_class == ErrorClass.PERMANENT


def test_sandbox_for_test_sends_and_setting():
    assert provider().build_payload(message(test_mode=True))[1]["Sandbox"] == "1"
    assert provider(sandbox=True).build_payload(message())[1]["Sandbox"] == "1"


def test_request_id_is_at_most_50_and_never_collides():
    seed = fixture_json("esms/seed003_journey_request_fields.json")
    short = "loa1t2c3"
    assert request_id_for(short) == short
    a, b = "x" * 60 + "a", "x" * 60 + "b"
    assert len(request_id_for(a)) == seed["request_id_max_length"]
    assert request_id_for(a) != request_id_for(b)  # truncation would have made them equal
    assert request_id_for(a) == request_id_for(a)


def test_missing_credentials_is_configuration():
    p = EsmsProvider(config("esms", secrets={"api_key": "only"}))
    result = p.send(message())
    assert (
        result.error_class == ErrorClass.CONFIGURATION
        and result.error_code == "missing_credentials"
    )


# ---- send answers, every class -------------------------------------------------------------------


@responses.activate
def test_accepted_answer_from_the_docs():
    responses.add(responses.POST, V4, json=fixture_json("esms/send_response_accepted.json"))
    result = provider().send(message())
    assert result.outcome == SendOutcome.ACCEPTED
    assert result.provider_message_id == "d8e0…250"


@responses.activate
def test_duplicate_request_id_is_success_and_never_resent():
    responses.add(
        responses.POST, V4, json={"CodeResult": "124", "CountRegenerate": 0, "ErrorMessage": "dup"}
    )
    result = provider().send(message())
    assert result.outcome == SendOutcome.ACCEPTED
    assert len(responses.calls) == 1


@pytest.mark.parametrize(
    "fixture_or_body,klass,code",
    [
        ("esms/send_response_authorize_failed.json", ErrorClass.CONFIGURATION, "101"),
        ("esms/send_response_template_not_config.json", ErrorClass.CONFIGURATION, "789"),
        ({"CodeResult": "108", "ErrorMessage": "Phone invalid"}, ErrorClass.PERMANENT, "108"),
        ({"CodeResult": "99"}, ErrorClass.PERMANENT, "99"),
        ({"CodeResult": "160"}, ErrorClass.RETRYABLE, "160"),
        ({"CodeResult": "103"}, ErrorClass.CONFIGURATION, "103"),
        ({"CodeResult": "4242"}, ErrorClass.CONFIGURATION, "4242"),
    ],
)
@responses.activate
def test_send_error_classes(fixture_or_body, klass, code):
    body = fixture_json(fixture_or_body) if isinstance(fixture_or_body, str) else fixture_or_body
    responses.add(responses.POST, V4, json=body)
    result = provider().send(message())
    assert result.outcome == SendOutcome.FAILED
    assert result.error_class == klass and result.error_code == code
    assert result.error_message
    if code == "160":
        assert result.retry_after == 1.0


@responses.activate
def test_http_failures_of_a_send():
    responses.add(responses.POST, V4, status=502, body="bad gateway")
    assert provider().send(message()).error_class == ErrorClass.AMBIGUOUS
    responses.replace(responses.POST, V4, status=200, body="<html>oops</html>")
    result = provider().send(message())
    assert result.error_class == ErrorClass.AMBIGUOUS and result.error_code == "bad_response"


def test_only_zalo_zns_channels():
    result = provider().send(message(channel_kind="sms"))
    assert result.error_class == ErrorClass.CONFIGURATION


# ---- callbacks (GET query strings) ------------------------------------------------------------------


def test_failed_callback_from_the_docs():
    q = fixture_query("esms/callback_zns_failed.query")
    parsed = provider().parse_webhook(webhook("GET", query=q))
    (event,) = parsed.statuses
    assert event.status == EventStatus.FAILED
    assert event.provider_message_id == "f665…92"
    assert event.error_code == "-114"
    assert event.error_message.startswith("User is inactive")
    assert event.fee is None
    assert parsed.dedupe_key.startswith("esms:")


def test_success_callback_with_zalo_delivery():
    q = fixture_query("esms/callback_zns_success.query")
    (event,) = provider().parse_webhook(webhook("GET", query=q)).statuses
    assert event.status == EventStatus.DELIVERED
    assert event.idempotency_key == "loa12t1abcdc34"
    assert str(event.fee) == "300.0000"


def test_callback_statuses():
    base = {"SMSID": "s1", "RequestId": "k1"}
    assert status_from_fields({**base, "SendStatus": "2"}).status == EventStatus.SENT
    assert status_from_fields({**base, "SendStatus": "7"}).status == EventStatus.SENT
    rejected = status_from_fields({**base, "SendStatus": "4"})
    assert rejected.status == EventStatus.FAILED and rejected.error_code == "esms_status_4"
    on_zalo = status_from_fields(
        {
            **base,
            "SendStatus": "5",
            "SendSuccess": "1",
            "error_info": '{"error":0,"data":{"status":0}}',
        }
    )
    assert on_zalo.status == EventStatus.SENT  # at Zalo, not yet on the device
    assert status_from_fields({**base, "SendStatus": "9"}).status == EventStatus.UNKNOWN


def test_callback_dedupe_key_is_stable_and_distinct():
    q = fixture_query("esms/callback_zns_failed.query")
    a = provider().parse_webhook(webhook("GET", query=q)).dedupe_key
    assert a == provider().parse_webhook(webhook("GET", query=dict(q))).dedupe_key
    other = dict(q, SendStatus="2")
    assert a != provider().parse_webhook(webhook("GET", query=other)).dedupe_key


def test_bad_callbacks_are_rejected():
    with pytest.raises(WebhookRejected):
        provider().parse_webhook(webhook("GET", query={"SendStatus": "5"}))
    with pytest.raises(WebhookRejected):
        provider().parse_webhook(webhook("POST", body=b"{}"))


@pytest.mark.parametrize(
    "raw,expected",
    [
        ('"{\\"error\\":-114,\\"message\\":\\"x\\"}"', -114),
        ("%7B%22error%22%3A-118%7D", -118),
        ('{"error":-139} trailing words', -139),
        ("0", 0),
        ("", None),
        ("garbage", None),
    ],
)
def test_error_info_layers(raw, expected):
    assert parse_error_info(raw).get("error") == expected


# ---- reconciliation ----------------------------------------------------------------------------------


@responses.activate
def test_fetch_status_uses_query_zns_status_from_the_docs():
    responses.add(
        responses.POST,
        f"{BASE}/QueryZnsStatus/",
        json=fixture_json("esms/query_zns_status_response.json"),
    )
    event = provider().fetch_status(provider_message_id="d8e0…250", idempotency_key="k1")
    assert event.status == EventStatus.DELIVERED
    assert event.idempotency_key == "k1"
    assert str(event.fee) == "300"
    body = sent_body()
    assert body["SmsId"] == "d8e0…250" and body["SmsType"] == "25"
    assert body["ApiKey"] == "AK-0001"


@responses.activate
def test_fetch_status_failure_and_not_final():
    data = fixture_json("esms/query_zns_status_response.json")
    failed = {
        **data,
        "Data": {**data["Data"], "ErrorInfo": "-118", "SendSuccess": "0", "SendFailed": "1"},
    }
    responses.add(responses.POST, f"{BASE}/QueryZnsStatus/", json=failed)
    event = provider().fetch_status(provider_message_id="s", idempotency_key="k")
    assert event.status == EventStatus.FAILED and event.error_code == "-118"
    assert "no Zalo account" in event.error_message
    pending = {
        **data,
        "Data": {**data["Data"], "FinalStatus": "0", "ErrorInfo": None, "SendSuccess": "0"},
    }
    responses.replace(responses.POST, f"{BASE}/QueryZnsStatus/", json=pending)
    assert (
        provider().fetch_status(provider_message_id="s", idempotency_key="k").status
        == EventStatus.SENT
    )


@responses.activate
def test_fetch_status_falls_back_to_get_callback_then_unproven():
    responses.add(responses.POST, f"{BASE}/QueryZnsStatus/", json={"CodeResult": "854"})
    responses.add(responses.POST, STATUS, json=fixture_json("esms/get_callback_response.json"))
    event = provider().fetch_status(provider_message_id="d8e0…250", idempotency_key="", oa_id="409")
    assert event.status == EventStatus.FAILED and event.error_code == "-118"
    assert event.idempotency_key == "loa12t1abcdc34"
    assert sent_body()["ListRefid"] == ["d8e0…250"] and sent_body()["OAId"] == "409"
    responses.replace(responses.POST, STATUS, json={"Code": 100, "Data_callback": []})
    event = provider().fetch_status(provider_message_id="zz", idempotency_key="k")
    # 105/854 mean "not found yet" (providers.md §2.4): never proof that eSMS has no message.
    assert event.status == EventStatus.UNKNOWN and event.error_code == UNPROVEN
    assert not event.proven_absent and not provider().can_prove_absence


def test_fetch_status_without_smsid_asks_nothing():
    event = provider().fetch_status(provider_message_id="", idempotency_key="k")
    assert event.error_code == UNPROVEN and "RequestId" in event.error_message
    assert not event.proven_absent


@responses.activate
def test_fetch_status_errors_raise_in_words():
    responses.add(responses.POST, f"{BASE}/QueryZnsStatus/", json={"CodeResult": "101"})
    with pytest.raises(ProviderError) as err:
        provider().fetch_status(provider_message_id="s", idempotency_key="k")
    assert err.value.error_class == ErrorClass.CONFIGURATION


@responses.activate
def test_get_callback_batches_of_200_within_its_bucket(monkeypatch):
    calls = []
    from providers import ratelimit

    real = ratelimit.acquire

    def spy(key, rate, burst=1):
        calls.append((key, rate))
        return real(key, rate, burst)

    monkeypatch.setattr(ratelimit, "acquire", spy)
    responses.add(responses.POST, STATUS, json={"Code": 100, "Data_callback": []})
    provider().fetch_callbacks(sms_ids=[str(i) for i in range(450)])
    sizes = [len(json.loads(c.request.body)["ListRefid"]) for c in responses.calls]
    assert sizes == [200, 200, 50]
    assert calls == [("esms-7-get_callback", 18)] * 3  # 20 req/s documented, 90% used
    responses.add(responses.POST, f"{BASE}/QueryZnsStatus/", json={"CodeResult": "854"})
    calls.clear()
    provider().fetch_status(provider_message_id="s", idempotency_key="k")
    assert calls[0] == ("esms-7-query_zns_status", 90)


# ---- OAs, quotas, templates ---------------------------------------------------------------------------


@responses.activate
def test_official_accounts_with_quota():
    esms_oas_answer(BASE)
    (oa,) = provider().list_official_accounts()
    assert oa == {
        "oa_id": "4097311281936189049",
        "name": "Loa Shop OA",
        "quality": None,
        "daily_quota": 5000,
        "remaining_quota": 4321,
    }
    assert sent_body()["OAID"] == "4097311281936189049"


@responses.activate
def test_list_templates_merges_get_template_and_template_info():
    responses.add(
        responses.POST, f"{BASE}/GetTemplate/", json=fixture_json("esms/get_template_response.json")
    )
    responses.add(
        responses.GET,
        f"{BASE}/GetZnsTemplateInfo",
        json=fixture_json("esms/get_zns_template_info_response.json"),
    )
    (tpl,) = provider().list_templates(oa_id="4097311281936189049")
    assert tpl["template_id"] == "205644"
    assert tpl["status"] == "approved" and tpl["tag"] == "transaction"
    assert str(tpl["price"]) == "300"
    assert tpl["preview_url"].startswith("https://")
    assert tpl["buttons"][0]["title"] == "Xem đơn"
    assert tpl["body"] == "Xin chào {{customer_name}},\nđơn hàng {{order_code}} đã được xác nhận."
    # ordered by eSMS's ParamLevel (V4 positions), Zalo's own types and limits
    assert [p["name"] for p in tpl["params"]] == ["customer_name", "order_code"]
    assert tpl["params"][0] == {
        "name": "customer_name",
        "type": "CUSTOMER_NAME",
        "required": True,
        "min_length": 0,
        "max_length": 30,
        "position": 1,
    }
    assert set(tpl) == {
        "template_id",
        "name",
        "status",
        "status_reason",
        "tag",
        "price",
        "preview_url",
        "body",
        "buttons",
        "oa_id",
        "params",
        "channel_kind",
    }
    query = responses.calls[1].request.url
    assert "TemplateId=205644" in query and "OAId=4097311281936189049" in query


@responses.activate
def test_template_without_zalo_status_stays_pending():
    responses.add(
        responses.POST, f"{BASE}/GetTemplate/", json=fixture_json("esms/get_template_response.json")
    )
    responses.add(
        responses.GET,
        f"{BASE}/GetZnsTemplateInfo",
        json={"CodeResult": "790", "ErrorMessage": "Wrong"},
    )
    (tpl,) = provider().list_templates(oa_id="1")
    assert tpl["status"] == "pending" and "Wrong" in tpl["status_reason"]
    assert tpl["params"][0]["type"] == "type_text"


@responses.activate
def test_test_connection():
    responses.add(
        responses.POST, f"{BASE}/ZNS/GetListZOA/", json={"CodeResult": "100", "ZOAList": []}
    )
    assert "0 Official Account" in provider().test_connection()
    responses.replace(responses.POST, f"{BASE}/ZNS/GetListZOA/", json={"CodeResult": "101"})
    with pytest.raises(ProviderError) as err:
        provider().test_connection()
    assert err.value.error_class == ErrorClass.CONFIGURATION and err.value.code == "101"
