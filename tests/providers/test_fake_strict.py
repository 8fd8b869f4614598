"""The fake provider server (bench/fake_provider/) refuses what the seeds forbid, as the real
provider would, with the provider's documented error: a test against the fake then fails for the
right reason (a wrong type, a long RequestId, a missing header), not by luck.

Each case is real HTTP to the fake, started in-process as tests/providers/test_fake_server.py
does. For every endpoint a valid request built from the seed's own field list is accepted; then
each check gets a request that breaks it, and the answer is the documented error (eSMS's
CodeResult, eTelecom's Twirp envelope) or, where the seed is silent, the one the fake assumes
(the fake's code says "assumed" at that line; MMP's bodies are all ours).
"""

from __future__ import annotations

import json

import pytest
import requests

from bench.fake_provider import FakeProviders
from bench.fake_provider.shared import OA_ID


@pytest.fixture(scope="module")
def server():
    with FakeProviders(callbacks=False) as fake:
        yield fake


@pytest.fixture
def fake(server):
    server.reset()
    server.keys = {}
    yield server
    server.keys = {}


@pytest.fixture
def http():
    with requests.Session() as session:
        session.trust_env = False
        yield session


def _post(http, url: str, body, headers: dict | None = None, raw: bytes | None = None):
    """POST `body` as JSON (Content-Type application/json) unless `raw` bytes are given, which
    go with only the headers named."""
    if raw is not None:
        return http.post(url, data=raw, headers=headers or {}, timeout=5)
    return http.post(url, json=body, headers=headers or {}, timeout=5)


# ---- eSMS: SendZaloMessage_V4_post_json (seed 003) ---------------------------------------------
def _esms_body(**changes) -> dict:
    """Every field seed 003 lists, each typed as it says: all "string", Params "Array"."""
    body = {
        "ApiKey": "esms-api",
        "SecretKey": "esms-secret",
        "Phone": "0901888484",
        "Params": ["Nguyễn Văn A", "HD00001"],
        "IsJourney": "True",
        "OrderId": "journey-1",
        "TempID": "205644",
        "OAID": OA_ID,
        "campaignid": "Tết 2026",
        "RequestId": "strict-esms-1",
        "CallbackUrl": "https://loa.example/webhooks/tok/",
        "Sandbox": "0",
    }
    for name, value in changes.items():
        if value is _DROP:
            body.pop(name, None)
        else:
            body[name] = value
    return body


_DROP = object()


def _esms_url(fake) -> str:
    return f"{fake.url('esms')}/SendZaloMessage_V4_post_json/"


def test_esms_valid_v4_requests_are_accepted(fake, http):
    """Seed 003's fields as it types them, a journey message and a normal one."""
    resp = _post(http, _esms_url(fake), _esms_body())
    assert resp.status_code == 200
    assert resp.json()["CodeResult"] == "100" and resp.json()["SMSID"]
    # "IsJourney ... False: it's not the journey message. Normal ZNS message." (no OrderId)
    normal = _esms_body(IsJourney="False", OrderId=_DROP, RequestId="strict-esms-2")
    assert _post(http, _esms_url(fake), normal).json()["CodeResult"] == "100"
    # "RequestId ... Max length: 50": exactly 50 is allowed.
    assert (
        _post(http, _esms_url(fake), _esms_body(RequestId="r" * 50)).json()["CodeResult"] == "100"
    )
    assert not fake.refusals


# (change to the valid body, CodeResult, rule the fake counts). 101, 108, 124, 791 are documented
# (providers.md §2.4); 110 "request data invalid" is the fake's assumption where eSMS documents
# no code for the violation.
ESMS_VIOLATIONS = [
    # seed 003: "Sandbox / string" (not the number 0)
    pytest.param({"Sandbox": 0}, "110", "type:Sandbox", id="Sandbox-number"),
    # seed 003: "IsJourney / string / True: it's the journey message" (not the JSON true)
    pytest.param({"IsJourney": True}, "110", "type:IsJourney", id="IsJourney-boolean"),
    pytest.param({"TempID": 205644}, "110", "type:TempID", id="TempID-number"),
    pytest.param({"OAID": int(OA_ID)}, "110", "type:OAID", id="OAID-number"),
    pytest.param({"Phone": 901888484}, "110", "type:Phone", id="Phone-number"),
    pytest.param({"RequestId": 12345}, "110", "type:RequestId", id="RequestId-number"),
    pytest.param({"campaignid": 7}, "110", "type:campaignid", id="campaignid-number"),
    # seed 003: "Params / Array"
    pytest.param({"Params": "Nguyễn Văn A,HD00001"}, "110", "type:Params", id="Params-string"),
    # providers.md §2.2's example "Params":["v1","v2","v3"]: values strings (assumed)
    pytest.param({"Params": ["Nguyễn Văn A", 1001]}, "110", "type:Params[]", id="Params-number"),
    # seed 003: "RequestId ... Max length: 50"
    pytest.param({"RequestId": "r" * 51}, "110", "RequestId>50", id="RequestId-51"),
    # seed 003: "Sandbox option value (default is 0): 1: ... 0: ..."
    pytest.param({"Sandbox": "true"}, "110", "Sandbox_value", id="Sandbox-true"),
    # seed 003: "True: it's the journey message. False: it's not the journey message."
    pytest.param({"IsJourney": "true"}, "110", "IsJourney_value", id="IsJourney-lowercase"),
    pytest.param({"IsJourney": "1"}, "110", "IsJourney_value", id="IsJourney-1"),
    # seed 003: "OrderId ... required if sending the journey message"
    pytest.param({"OrderId": _DROP}, "110", "OrderId_missing", id="journey-without-OrderId"),
    pytest.param({"OrderId": ""}, "110", "OrderId_missing", id="journey-empty-OrderId"),
    # providers.md §2.2 [F]: campaignid <= 254 characters
    pytest.param({"campaignid": "c" * 255}, "110", "campaignid>254", id="campaignid-255"),
    # providers.md §2.2 [F]: SendingMode 1 default / 3 over quota
    pytest.param({"SendingMode": "default"}, "110", "SendingMode_value", id="SendingMode-word"),
    # seed 003: ApiKey "Your API Key", SecretKey "Your SecretKey"; §2.4: 101
    pytest.param({"SecretKey": _DROP}, "101", "credentials", id="no-SecretKey"),
    pytest.param({"ApiKey": ""}, "101", "credentials", id="empty-ApiKey"),
    # providers.md §2.4: 791 missing OAID or TempID
    pytest.param({"OAID": _DROP}, "791", "OAID/TempID_missing", id="no-OAID"),
    pytest.param({"TempID": ""}, "791", "OAID/TempID_missing", id="empty-TempID"),
    # providers.md §2.4: 108 phone format invalid (what is valid: assumed, a Vietnamese mobile)
    pytest.param({"Phone": "+84 901 888 484"}, "108", "Phone_format", id="Phone-spaced"),
    pytest.param({"Phone": "85512345678"}, "108", "Phone_format", id="Phone-Cambodian"),
    pytest.param({"Phone": _DROP}, "108", "Phone_format", id="no-Phone"),
]


@pytest.mark.parametrize(("changes", "code", "rule"), ESMS_VIOLATIONS)
def test_esms_refuses_what_seed_003_forbids(fake, http, changes, code, rule):
    resp = _post(http, _esms_url(fake), _esms_body(**changes))
    assert resp.status_code == 200  # eSMS answers its errors as 200 + CodeResult (§2.2)
    answer = resp.json()
    assert answer["CodeResult"] == code, answer
    assert "SMSID" not in answer and answer["ErrorMessage"]
    assert dict(fake.refusals) == {("esms", rule): 1}
    assert not fake.messages  # refused: nothing stored, no callback owed


def test_esms_wrong_keys_get_101(fake, http):
    """Seed 003: "ApiKey ... Your API Key / SecretKey ... Your SecretKey"; a pair the account
    does not hold is 101 "Authorize Failed" (providers.md §2.2, §2.4)."""
    fake.keys = {"esms": ("esms-api", "esms-secret")}
    assert _post(http, _esms_url(fake), _esms_body()).json()["CodeResult"] == "100"
    answer = _post(http, _esms_url(fake), _esms_body(SecretKey="guess", RequestId="x")).json()
    assert answer == {"CodeResult": "101", "CountRegenerate": 0, "ErrorMessage": "Authorize Failed"}


def test_esms_content_type_must_be_json(fake, http):
    """Seed 003: "Content Type: application/json". eSMS documents no code for another one:
    the fake answers 110 (assumed)."""
    raw = json.dumps(_esms_body()).encode()
    plain = _post(http, _esms_url(fake), None, {"Content-Type": "text/plain"}, raw=raw)
    assert plain.json()["CodeResult"] == "110"
    form = http.post(_esms_url(fake), data={"ApiKey": "esms-api"}, timeout=5)
    assert form.json()["CodeResult"] == "110"
    broken = _post(http, _esms_url(fake), None, {"Content-Type": "application/json"}, raw=b"{")
    assert broken.json()["CodeResult"] == "110"
    assert fake.refusals[("esms", "content_type")] == 3 and not fake.messages


def test_esms_repeated_request_id_is_124(fake, http):
    """Seed 003: RequestId is "to prevent the the request from duplicated"; the answer to a
    repeat is 124 (providers.md §2.2, §2.4)."""
    assert _post(http, _esms_url(fake), _esms_body()).json()["CodeResult"] == "100"
    assert _post(http, _esms_url(fake), _esms_body()).json()["CodeResult"] == "124"
    assert len(fake.messages) == 1


# ---- eTelecom: SendZNS (seed 004), GetMessage (seed 002) ----------------------------------------
def _zns_body(**changes) -> dict:
    """Seed 004's request fields, each typed as it says."""
    body = {
        "mode": "development",
        "oa_id": OA_ID,  # "string · int64"
        "phone": "84901888484",
        "sending_mode": "default",
        "template_id": 205644,  # "integer"
        "template_data": {"customer_name": "Nguyễn Văn A", "order_code": "1001"},
        "tracking_id": "strict-et-1",
    }
    for name, value in changes.items():
        if value is _DROP:
            body.pop(name, None)
        else:
            body[name] = value
    return body


def _et_url(fake, method: str, mode: str = "shop") -> str:
    return f"{fake.url('etelecom', mode)}.Zalo/{method}"


BEARER = {"Authorization": "Bearer shop-api-key"}


def test_etelecom_valid_sendzns_and_getmessage_are_accepted(fake, http):
    sent = _post(http, _et_url(fake, "SendZNS"), _zns_body(), BEARER)
    assert sent.status_code == 200, sent.text
    message = sent.json()
    assert message["template_id"] == 205644 and message["is_development"] is True
    # Seed 004: "Nếu tham số mode không được truyền, mặc định mode = unknown"; each sending_mode.
    for n, mode in enumerate(("unknown", "default", "tag3")):
        body = _zns_body(mode=_DROP, sending_mode=mode, tracking_id=f"strict-et-m{n}")
        assert _post(http, _et_url(fake, "SendZNS"), body, BEARER).status_code == 200
    assert _post(http, _et_url(fake, "SendZNS"), _zns_body(mode="unknown"), BEARER).ok
    # Seed 002: GetMessage {"oa_id": "<int64>", "msg_id": "<string>"}.
    got = _post(
        http, _et_url(fake, "GetMessage"), {"oa_id": OA_ID, "msg_id": message["msg_id"]}, BEARER
    )
    assert got.status_code == 200 and got.json()["tracking_id"] == "strict-et-1"
    assert not fake.refusals


ZNS_VIOLATIONS = [
    # seed 004: "oa_id string · int64"
    pytest.param({"oa_id": int(OA_ID)}, "type:oa_id", id="oa_id-number"),
    pytest.param({"oa_id": "OA-1"}, "type:oa_id", id="oa_id-not-digits"),
    # seed 004: "template_id integer"
    pytest.param({"template_id": "205644"}, "type:template_id", id="template_id-string"),
    pytest.param({"template_id": True}, "type:template_id", id="template_id-boolean"),
    pytest.param({"template_id": 205644.5}, "type:template_id", id="template_id-float"),
    # seed 004: "template_data object"; seed 002: {"ANY_ADDITIONAL_PROPERTY": "text"}
    pytest.param(
        {"template_data": {"customer_name": "A", "order_code": 1001}},
        "type:template_data[]",
        id="template_data-number-value",
    ),
    pytest.param({"template_data": ["A", "1001"]}, "type:template_data", id="template_data-list"),
    # seed 004: "phone string", "tracking_id string"
    pytest.param({"phone": 84901888484}, "type:phone", id="phone-number"),
    pytest.param({"tracking_id": 1}, "type:tracking_id", id="tracking_id-number"),
    # seed 004: mode Enum: "unknown" "development"
    pytest.param({"mode": "production"}, "mode_value", id="mode-production"),
    pytest.param({"mode": True}, "type:mode", id="mode-boolean"),
    # seed 004: sending_mode "unknown" / "default" / "tag3" (eSMS's "1" is not one)
    pytest.param({"sending_mode": "1"}, "sending_mode_value", id="sending_mode-1"),
    pytest.param({"sending_mode": "TAG3"}, "sending_mode_value", id="sending_mode-case"),
    # assumed: the seed marks them Optional, but nothing can be sent without them
    pytest.param({"oa_id": _DROP}, "oa_id_missing", id="no-oa_id"),
    pytest.param({"phone": ""}, "phone_missing", id="empty-phone"),
    pytest.param({"template_id": _DROP}, "template_id_missing", id="no-template_id"),
]


@pytest.mark.parametrize(("changes", "rule"), ZNS_VIOLATIONS)
def test_etelecom_sendzns_refuses_what_seed_004_forbids(fake, http, changes, rule):
    resp = _post(http, _et_url(fake, "SendZNS"), _zns_body(**changes), BEARER)
    # providers.md §1.1 [F]: {"code":"invalid_argument","msg":"..."} (400)
    assert resp.status_code == 400, resp.text
    assert resp.json()["code"] == "invalid_argument" and resp.json()["msg"]
    assert dict(fake.refusals) == {("etelecom", rule): 1}
    assert not fake.messages


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-Authorization"),
        pytest.param({"Authorization": "shop-api-key"}, id="no-scheme"),
        pytest.param({"Authorization": "Token shop-api-key"}, id="Token-scheme"),
        pytest.param({"Authorization": "Bearer "}, id="empty-key"),
    ],
)
def test_etelecom_wants_a_bearer_key(fake, http, headers):
    """Seed 002's request: "--header 'Authorization: Bearer $API_KEY'"; without it eTelecom
    answers {"code":"unauthenticated",...} with 401 (providers.md §1.1 [F])."""
    for method, body in (("SendZNS", _zns_body()), ("GetMessage", {"oa_id": OA_ID, "msg_id": "x"})):
        resp = _post(http, _et_url(fake, method), body, headers)
        assert resp.status_code == 401 and resp.json()["code"] == "unauthenticated", method
    assert fake.refusals[("etelecom", "bearer")] == 2


def test_etelecom_shop_apis_take_the_api_key_partner_apis_the_shop_key(fake, http):
    """Seed 002: "Đối với các API sử dụng cho Shop thì API_KEY: <api_key> ... Đối với các API
    sử dụng cho Partner thì API_KEY: <shop_key>"."""
    fake.keys = {"etelecom:shop": "the-api-key", "etelecom:partner": "the-shop-key"}
    api_key = {"Authorization": "Bearer the-api-key"}
    shop_key = {"Authorization": "Bearer the-shop-key"}
    shop, partner = _et_url(fake, "SendZNS", "shop"), _et_url(fake, "SendZNS", "partner")
    assert _post(http, shop, _zns_body(tracking_id="k1"), api_key).status_code == 200
    assert _post(http, partner, _zns_body(tracking_id="k2"), shop_key).status_code == 200
    wrong_partner = _post(http, partner, _zns_body(tracking_id="k3"), api_key)
    assert wrong_partner.status_code == 401
    assert wrong_partner.json()["code"] == "unauthenticated"
    assert "shop_key" in wrong_partner.json()["msg"]
    assert _post(http, shop, _zns_body(tracking_id="k4"), shop_key).status_code == 401
    assert dict(fake.refusals) == {("etelecom", "key:partner"): 1, ("etelecom", "key:shop"): 1}


def test_etelecom_content_type_must_be_json(fake, http):
    """Seed 004/002 send 'Content-Type: application/json'; without it eTelecom answers
    {"code":"bad_route","msg":"unexpected Content-Type: \\"\\""} (providers.md §1.1 [F])."""
    raw = json.dumps(_zns_body()).encode()
    missing = _post(http, _et_url(fake, "SendZNS"), None, BEARER, raw=raw)
    assert missing.status_code == 404
    assert missing.json() == {"code": "bad_route", "msg": 'unexpected Content-Type: ""'}
    form = _post(
        http,
        _et_url(fake, "SendZNS"),
        None,
        {**BEARER, "Content-Type": "application/x-www-form-urlencoded"},
        raw=b"oa_id=1",
    )
    assert form.status_code == 404 and form.json()["code"] == "bad_route"
    assert not fake.messages


@pytest.mark.parametrize(
    ("body", "rule"),
    [
        # seed 002: "oa_id* int64" ("string · int64"; the curl writes "oa_id": "<int64>")
        pytest.param({"oa_id": int(OA_ID), "msg_id": "m"}, "type:oa_id", id="oa_id-number"),
        pytest.param({"msg_id": "m"}, "type:oa_id", id="no-oa_id"),
        # seed 002: "msg_id* string"
        pytest.param({"oa_id": OA_ID}, "type:msg_id", id="no-msg_id"),
        pytest.param({"oa_id": OA_ID, "msg_id": 12}, "type:msg_id", id="msg_id-number"),
    ],
)
def test_etelecom_getmessage_refuses_what_seed_002_forbids(fake, http, body, rule):
    resp = _post(http, _et_url(fake, "GetMessage"), body, BEARER)
    assert resp.status_code == 400 and resp.json()["code"] == "invalid_argument"
    assert dict(fake.refusals) == {("etelecom", rule): 1}


def test_etelecom_getmessage_of_an_unknown_message_is_not_found(fake, http):
    """assumed: Twirp's not_found (404) — eTelecom documents no "not found" answer."""
    sent = _post(http, _et_url(fake, "SendZNS"), _zns_body(), BEARER).json()
    unknown = _post(http, _et_url(fake, "GetMessage"), {"oa_id": OA_ID, "msg_id": "nope"}, BEARER)
    assert unknown.status_code == 404 and unknown.json()["code"] == "not_found"
    other_oa = {"oa_id": "1", "msg_id": sent["msg_id"]}
    assert _post(http, _et_url(fake, "GetMessage"), other_oa, BEARER).status_code == 404


# ---- MMP: Broadcast Message and Get Message Status (seeds 000/001 name them; shapes ours) --------
MMP_AUTH = {"Authorization": "Bearer mmp-key"}


def _broadcast_body(**changes) -> dict:
    """docs/PROVIDERS.md "Assumed bodies" broadcast_template (every field assumed)."""
    body = {
        "publicId": "pub-sms",
        "applicationId": 3,  # seed 000: "- 3: sms"
        "clientMessageId": "strict-mmp-1",
        "message": {
            "type": "template",
            "template": {"publicId": "tpl-1", "params": {"name": "Sok Dara", "code": "A1"}},
        },
        "subscribers": [{"phone": "85512345678", "clientMessageId": "strict-mmp-1"}],
    }
    for name, value in changes.items():
        if value is _DROP:
            body.pop(name, None)
        else:
            body[name] = value
    return body


def _mmp(fake, path: str) -> str:
    return f"{fake.url('metfone_mmp')}/api/v1/{path}"


def test_mmp_valid_broadcasts_and_status_are_accepted(fake, http):
    sent = _post(http, _mmp(fake, "channel/broadcast"), _broadcast_body(), MMP_AUTH)
    assert sent.status_code == 200, sent.text
    text = _broadcast_body(
        message={"type": "text", "text": "Loa: mã A1"}, applicationId=_DROP, clientMessageId="t2"
    )
    assert _post(http, _mmp(fake, "channel/broadcast"), text, MMP_AUTH).status_code == 200
    # the documented override's example header (docs/PROVIDERS.md): x-api-key
    keyed = _broadcast_body(clientMessageId="t3")
    assert _post(http, _mmp(fake, "channel/broadcast"), keyed, {"x-api-key": "k"}).ok
    status = http.get(
        _mmp(fake, "message/status"),
        params={"messageId": sent.json()["messageId"], "clientMessageId": ""},
        headers=MMP_AUTH,
        timeout=5,
    )
    assert status.status_code == 200 and status.json()["clientMessageId"] == "strict-mmp-1"
    assert not fake.refusals


MMP_VIOLATIONS = [
    pytest.param({"publicId": _DROP}, "publicId", id="no-publicId"),
    pytest.param({"clientMessageId": 5}, "clientMessageId", id="clientMessageId-number"),
    # seed 000's webhook: "applicationIdNumber" (assumed the same in the request)
    pytest.param({"applicationId": "3"}, "type:applicationId", id="applicationId-string"),
    pytest.param({"message": {"type": "image"}}, "message_type", id="message-type"),
    pytest.param({"message": {"type": "text", "text": ""}}, "text", id="empty-text"),
    pytest.param(
        {"message": {"type": "template", "template": {"publicId": "t", "params": {"n": 1}}}},
        "type:params[]",
        id="params-number-value",
    ),
    pytest.param({"subscribers": []}, "subscribers", id="no-subscribers"),
    pytest.param(
        {"subscribers": [{"phone": "+855 12 345 678"}]}, "subscriber_phone", id="phone-spaced"
    ),
]


@pytest.mark.parametrize(("changes", "rule"), MMP_VIOLATIONS)
def test_mmp_broadcast_refuses_what_our_assumed_body_forbids(fake, http, changes, rule):
    resp = _post(http, _mmp(fake, "channel/broadcast"), _broadcast_body(**changes), MMP_AUTH)
    assert resp.status_code == 400, resp.text
    assert resp.json()["errorCode"] == "INVALID_REQUEST"  # assumed envelope
    assert dict(fake.refusals) == {("mmp", rule): 1}
    assert not fake.messages


def test_mmp_auth_content_type_and_status_query(fake, http):
    url = _mmp(fake, "channel/broadcast")
    for headers, rule in (
        ({}, "api_key"),
        ({"Authorization": "Basic bW1wOmtleQ=="}, "bearer"),
        ({"Authorization": "Bearer "}, "bearer"),
    ):
        resp = _post(http, url, _broadcast_body(), headers)
        assert resp.status_code == 401 and resp.json()["errorCode"] == "UNAUTHORIZED", rule
    fake.keys = {"mmp": "mmp-key"}
    assert _post(http, url, _broadcast_body(), {"Authorization": "Bearer other"}).status_code == 401
    assert _post(http, url, _broadcast_body(), MMP_AUTH).status_code == 200
    raw = json.dumps(_broadcast_body(clientMessageId="c2")).encode()
    assert _post(http, url, None, MMP_AUTH, raw=raw).status_code == 400
    no_id = http.get(_mmp(fake, "message/status"), headers=MMP_AUTH, timeout=5)
    assert no_id.status_code == 400
    assert dict(fake.refusals) == {
        ("mmp", "api_key"): 1,
        ("mmp", "bearer"): 2,
        ("mmp", "key"): 1,
        ("mmp", "content_type"): 1,
        ("mmp", "status_id"): 1,
    }


# ---- the providers' own SMS fallback (providers.md §1.2, §2.3: the notes, not the seeds) --------
def _multichannel(**changes) -> dict:
    """eSMS's page's own example (MultiChannelMessage, providers.md §2.3)."""
    body = {
        "ApiKey": "esms-api",
        "SecretKey": "esms-secret",
        "Phone": "0901888484",
        "Channels": ["zalo", "sms"],
        "Data": [
            {
                "TempID": "205644",
                "Params": ["686868"],
                "OAID": OA_ID,
                "campaignid": "Gửi OTP",
                "CallbackUrl": "https://loa.example/webhooks/tok/",
                "RequestId": "mc-1",
                "Sandbox": "0",
            },
            {
                "Content": "686868 la ma xac minh",
                "IsUnicode": "0",
                "SmsType": "2",
                "Brandname": "Baotrixemay",
                "CallbackUrl": "https://loa.example/webhooks/tok/",
                "RequestId": "mc-1s1",
                "Sandbox": "0",
            },
        ],
    }
    body.update(changes)
    return body


def test_esms_multichannel_takes_its_pages_example_and_refuses_a_changed_channel_list(fake, http):
    url = fake.url("esms") + "/MultiChannelMessage/"
    ok = _post(http, url, _multichannel()).json()
    assert ok["CodeResult"] == "100" and ok["SMSID"]
    # "Giá trị này không thay đổi. Không thay đổi thứ tự, không bỏ bớt kênh."
    for channels in (["sms", "zalo"], ["zalo"]):
        body = _multichannel(Channels=channels)
        body["Data"][0]["RequestId"] = f"mc-{len(channels)}-{channels[0]}"
        assert _post(http, url, body).json()["CodeResult"] == "110"
    body = _multichannel()
    body["Data"][0]["RequestId"] = "mc-2"
    body["Data"][1]["SmsType"] = 2  # a number, not the string "2"
    assert _post(http, url, body).json()["CodeResult"] == "110"
    assert fake.refusals[("esms", "multichannel:Channels")] == 2
    assert fake.refusals[("esms", "multichannel:type:SmsType")] == 1


def test_etelecom_sms_fallback_fields_are_checked(fake, http):
    url = fake.url("etelecom") + ".Zalo/SendZNS"
    headers = {"Authorization": "Bearer k"}
    body = {
        "oa_id": OA_ID,
        "phone": "84901888484",
        "template_id": 205644,
        "template_data": {"otp": "686868"},
        "tracking_id": "tk-1",
        "enable_sms_on_zns_failure": True,
        "sms": {"message": "686868 la ma", "brandname": "LOA", "unicode": False},
    }
    fake.fail_phones = {"84901888484": (-118, "Zalo account not existed")}
    try:
        answer = _post(http, url, body, headers).json()
        assert answer["status"] == "N" and answer["sms"]["status"] == "Z"
        assert answer["enable_sms_on_zns_failure"] is True
        bad = {**body, "tracking_id": "tk-2", "enable_sms_on_zns_failure": "true"}
        assert _post(http, url, bad, headers).json()["code"] == "invalid_argument"
        bad = {**body, "tracking_id": "tk-3", "sms": {"brandname": "LOA"}}
        assert _post(http, url, bad, headers).json()["code"] == "invalid_argument"
    finally:
        fake.fail_phones = {}
