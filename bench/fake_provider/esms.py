"""eSMS as the fake speaks it (providers.md §2): Zalo ZNS sends with their GET callback, the
status query, OA, quota and template reads, and the callback replay host (status-sms.esms.vn).
One handler per endpoint; handle() checks the API key and routes by endpoint name. A send is
first checked against seed 003 (check_send): a request that breaks it gets eSMS's documented
CodeResult, or, where eSMS documents none for that violation, 110 "request data invalid" (the
table's generic "invalid request" code, marked assumed at each line that answers it)."""

from __future__ import annotations

import json
from collections.abc import Callable

from bench.fake_provider.shared import (
    DIGITS,
    OA_ID,
    TEMPLATES,
    Reply,
    Request,
    is_json,
    msg_id,
    not_strings,
    type_name,
)
from bench.fake_provider.state import FakeState

PROVIDER = "esms"

# Seed 003 types every field of SendZaloMessage_V4_post_json "string" except Params ("Array").
SEED_003_STRINGS = (
    "ApiKey",
    "SecretKey",
    "Phone",
    "IsJourney",
    "OrderId",
    "TempID",
    "OAID",
    "campaignid",
    "RequestId",
    "CallbackUrl",
    "Sandbox",
)
# Fields seed 003 does not list but eSMS's pages do, typed string there (providers.md §2.2 [F]:
# "SendDate":"yyyy-mm-dd hh:MM:ss", "SendingMode":"1"), and V6's TempData values (§2.3).
PAGE_STRINGS = ("SendDate", "SendingMode")


def _ok(body: dict, key: str = "", status: int = 200) -> Reply:
    return Reply(status, body, PROVIDER, key)


def _code(code: str, text: str, key: str = "") -> Reply:
    """eSMS's answer to a refused request: HTTP 200 with the CodeResult (providers.md §2.2: the
    documented error answers are 200s, e.g. {"CodeResult":"101",...,"ErrorMessage":"Authorize
    Failed"})."""
    return _ok({"CodeResult": code, "CountRegenerate": 0, "ErrorMessage": text}, key)


def _refuse(fake: FakeState, rule: str, code: str, text: str, key: str = "") -> Reply:
    fake.refuse(PROVIDER, rule)
    return _code(code, text, key)


def handle(fake: FakeState, request: Request) -> Reply:
    """A call under /esms/MainService.svc/json/: eSMS answers 200 with a CodeResult, even when
    the ApiKey/SecretKey pair is missing. Sends are checked whole first (check_send)."""
    name = request.path.split("/json/", 1)[-1].strip("/")
    endpoint = ENDPOINTS.get(name)
    if endpoint is send:
        refused = check_send(fake, request, v4=name.startswith("SendZaloMessage_V4"))
        if refused is not None:
            return refused
    if request.method == "POST" and (request.malformed or not is_json(request)):
        # assumed: eSMS's POST APIs take JSON (providers.md §2.1); no code is documented for a
        # body it cannot read: 110 "request data invalid".
        return _refuse(fake, "content_type", "110", "Request data invalid")
    creds = request.body if request.method == "POST" else request.query
    if not _credentials_ok(fake, creds):
        fake.refuse(PROVIDER, "credentials")
        return _ok({"CodeResult": "101", "CountRegenerate": 0, "ErrorMessage": "Authorize Failed"})
    if endpoint is None:
        return _ok({"CodeResult": "99", "ErrorMessage": "no such eSMS route"}, status=404)
    return endpoint(fake, request)


def _credentials_ok(fake: FakeState, creds: dict) -> bool:
    """ApiKey and SecretKey present (and equal to fake.keys["esms"] when the test set it)."""
    api_key, secret_key = creds.get("ApiKey"), creds.get("SecretKey")
    if not api_key or not secret_key:
        return False
    expected = fake.keys.get("esms")
    return expected is None or (api_key, secret_key) == tuple(expected)


def check_send(fake: FakeState, request: Request, *, v4: bool) -> Reply | None:
    """SendZaloMessage_V4_post_json as seed 003 states it (V6 by the same rules where
    providers.md §2.3 gives V6 the same fields): None when the request is acceptable, else
    eSMS's answer refusing it."""
    body = request.body
    # Seed 003: "Content Type: application/json". No CodeResult is documented for another
    # content type or an unreadable body: assumed 110 "request data invalid".
    if request.malformed or not is_json(request):
        return _refuse(fake, "content_type", "110", "Request data invalid")
    if not isinstance(body, dict):
        # assumed: 110 (the request body is an object of the fields seed 003 lists).
        return _refuse(fake, "body_not_object", "110", "Request data invalid")
    key = body.get("RequestId") if isinstance(body.get("RequestId"), str) else ""
    # Seed 003 types each of these "string" (Sandbox and IsJourney included: "True"/"False",
    # "1"/"0" as strings). No code is documented for a wrong JSON type: assumed 110.
    wrong = not_strings(body, SEED_003_STRINGS + PAGE_STRINGS)
    if wrong is not None:
        return _refuse(
            fake,
            f"type:{wrong}",
            "110",
            f"Request data invalid: {wrong} must be a string, not {type_name(body[wrong])}",
            key,
        )
    if v4:
        params = body.get("Params")
        # Seed 003: "Params / Array / The array values of parameters in your template".
        if "Params" in body and not isinstance(params, list):
            return _refuse(fake, "type:Params", "110", "Request data invalid: Params", key)
        # assumed: each value a string, as eSMS's example "Params":["v1","v2","v3"]
        # (providers.md §2.2); 110 as above.
        if isinstance(params, list) and any(not isinstance(p, str) for p in params):
            return _refuse(fake, "type:Params[]", "110", "Request data invalid: Params", key)
    else:
        data = body.get("TempData")
        # providers.md §2.3 [F]: TempData {"customer_name":"…",...}, values strings; assumed 110.
        if "TempData" in body and (
            not isinstance(data, dict) or any(not isinstance(v, str) for v in data.values())
        ):
            return _refuse(fake, "type:TempData", "110", "Request data invalid: TempData", key)
    # Seed 003: ApiKey "Your API Key", SecretKey "Your SecretKey"; providers.md §2.4: 101 wrong
    # ApiKey/SecretKey ("Authorize Failed", §2.2).
    if not _credentials_ok(fake, body):
        return _refuse(fake, "credentials", "101", "Authorize Failed", key)
    # Seed 003: "RequestId ... Max length: 50". No code is documented for a longer one:
    # assumed 110.
    if len(key) > 50:
        return _refuse(
            fake, "RequestId>50", "110", "Request data invalid: RequestId max length 50", key
        )
    # Seed 003: "Sandbox ... (default is 0): 1: For testing ... 0: Message will be processed".
    # assumed: 110 for another value.
    if "Sandbox" in body and body["Sandbox"] not in ("0", "1"):
        return _refuse(fake, "Sandbox_value", "110", "Request data invalid: Sandbox", key)
    # Seed 003: "IsJourney / string / True: it's the journey message. False: it's not the
    # journey message." -- exactly these two strings. assumed: 110 for another value.
    if "IsJourney" in body and body["IsJourney"] not in ("True", "False"):
        return _refuse(fake, "IsJourney_value", "110", "Request data invalid: IsJourney", key)
    # Seed 003: "OrderId ... required if sending the journey message". assumed: 110.
    if body.get("IsJourney") == "True" and not body.get("OrderId"):
        return _refuse(fake, "OrderId_missing", "110", "Request data invalid: OrderId", key)
    # providers.md §2.2 [F]: "campaignid <=254 chars" (seed 003 names no length). assumed: 110.
    if len(body.get("campaignid") or "") > 254:
        return _refuse(fake, "campaignid>254", "110", "Request data invalid: campaignid", key)
    # providers.md §2.2 [F]: "SendingMode 1 default / 3 over-quota". assumed: 110 otherwise.
    if "SendingMode" in body and body["SendingMode"] not in ("1", "3"):
        return _refuse(fake, "SendingMode_value", "110", "Request data invalid: SendingMode", key)
    # providers.md §2.4: 791 "missing OAID or TempID".
    if not body.get("OAID") or not body.get("TempID"):
        return _refuse(fake, "OAID/TempID_missing", "791", "Missing OAID or TempID", key)
    # providers.md §2.4: 108 "phone format invalid". assumed: what eSMS takes as a ZNS phone,
    # a Vietnamese mobile written 0xxxxxxxxx (eSMS's examples: 0901888484) or 84xxxxxxxxx.
    phone = body.get("Phone") or ""
    if not (
        DIGITS.fullmatch(phone)
        and (
            (phone.startswith("0") and len(phone) == 10)
            or (phone.startswith("84") and len(phone) == 11)
        )
    ):
        return _refuse(fake, "Phone_format", "108", "Phone number invalid", key)
    return None


def _duplicate(fake: FakeState, key: str) -> Reply | None:
    """eSMS's answer to a RequestId seen within 24 h (providers.md §2.2), else None."""
    with fake.lock:
        existing = fake.by_key.get((PROVIDER, key)) if key else None
    if not existing:
        return None
    return _ok(
        {"CodeResult": "124", "CountRegenerate": 0, "ErrorMessage": "Duplicate RequestId"}, key
    )


def _zns_record(fake: FakeState, key: str, phone, zns: dict) -> dict:
    """A ZNS message with its outcome (fail_phones, fail_rate), stored under a new SMSID and
    its RequestId; `zns` is the object carrying OAID and TempID."""
    failed, code, text = fake.outcome(str(phone or ""))
    smsid = msg_id()
    record = {
        "provider": PROVIDER,
        "SMSID": smsid,
        "RequestId": key,
        "phone": phone,
        "oaid": zns.get("OAID"),
        "tempid": zns.get("TempID"),
        "zalo_msg_id": msg_id(),
        "failed": failed,
        "error": code,
        "message": text,
    }
    with fake.lock:
        fake.messages[smsid] = record
        if key:
            fake.by_key[(PROVIDER, key)] = smsid
    return record


def send(fake: FakeState, request: Request) -> Reply:
    """SendZaloMessage_V4_post_json and _V6 (checked by check_send first): one ZNS message,
    its callback scheduled."""
    body = request.body
    key = str(body.get("RequestId") or "")
    duplicate = _duplicate(fake, key)
    if duplicate is not None:
        return duplicate
    # fail_phones by the phone as the request carries it (state.py), as for eTelecom.
    record = _zns_record(fake, key, body.get("Phone"), body)
    smsid = record["SMSID"]
    url = body.get("CallbackUrl") or fake.callback_urls.get(PROVIDER, "")
    fake.schedule(fake.callback_delay, "GET", url, callback(record))
    return _ok({"CodeResult": "100", "CountRegenerate": 0, "SMSID": smsid}, key)


def query_status(fake: FakeState, request: Request) -> Reply:
    """QueryZnsStatus: the final status of one SMSID."""
    record = fake.messages.get(str(request.body.get("SmsId")))
    if record is None:
        return _ok({"CodeResult": "854", "ErrorMessage": "No data found"})
    data = {
        "ErrorInfo": str(record["error"]),
        "FinalStatus": "1",
        "SMSID": record["SMSID"],
        "SendFailed": 1 if record["failed"] else 0,
        "SendStatus": 5,
        "SendSuccess": 0 if record["failed"] else 1,
        "TotalPrice": 0 if record["failed"] else 300,
        "TotalReceiver": 1,
        "TotalSent": 1,
        "ZaloMsgId": record["zalo_msg_id"],
    }
    return _ok({"CodeResult": "100", "Data": data})


def list_oas(fake: FakeState, request: Request) -> Reply:
    """ZNS/GetListZOA: the one OA."""
    return _ok({"CodeResult": "100", "ZOAList": [{"OAID": OA_ID, "OAName": "Loa Fake OA"}]})


def quota(fake: FakeState, request: Request) -> Reply:
    """ZNS/GetQuota."""
    return _ok({"CodeResult": "100", "DailyQuota": 5000, "RemainingQuota": 4990})


def list_templates(fake: FakeState, request: Request) -> Reply:
    """GetTemplate: every template with its parameters."""
    items = [
        {
            "TempId": tid,
            "TempName": t["name"],
            "TempContent": "<p>Xin chào &lt;customer_name&gt;, đơn &lt;order_code&gt;</p>",
            "ZNSTempDetail": [
                {"Param": p, "ParamLevel": i + 1, "Limit": lim, "RequireType": typ}
                for i, (p, typ, lim) in enumerate(t["params"])
            ],
        }
        for tid, t in TEMPLATES.items()
    ]
    return _ok({"CodeResult": "100", "ZNSTemplates": items})


def template_info(fake: FakeState, request: Request) -> Reply:
    """GetZnsTemplateInfo?TemplateId=: one template's details."""
    t = TEMPLATES.get(str(request.query.get("TemplateId")))
    if t is None:
        return _ok({"CodeResult": "790", "ErrorMessage": "Wrong template"})
    info = {
        "TemplateId": request.query.get("TemplateId"),
        "TemplateName": t["name"],
        "Status": "ENABLE",
        "TemplateTag": "TRANSACTION",
        "Price": "300",
        "PreviewUrl": "https://account.zalo.cloud/znspreview/x",
        "ListParams": [
            {"Name": p, "Require": True, "Type": "STRING", "MaxLength": lim, "MinLength": 0}
            for p, _typ, lim in t["params"]
        ],
        "ListButtons": [],
    }
    return _ok({"CodeResult": "100", "Data": info})


def check_multichannel(fake: FakeState, body: dict) -> Reply | None:
    """MultiChannelMessage as eSMS's page states it (providers.md §2.3, not a seed:
    esms-api/ham-gui-tin/tin-mutichanel-zalo-greater-than-sms-otp-cskh.md): Phone, Channels
    exactly ["zalo","sms"] ("Giá trị này không thay đổi. Không thay đổi thứ tự, không bỏ bớt
    kênh"), Data [ZNS {TempID, Params, OAID required; campaignid, CallbackUrl, RequestId,
    Sandbox}, SMS {Content, SmsType "2", Brandname required; IsUnicode, CallbackUrl, RequestId,
    Sandbox}], every field a string except Params (an array) and the lists. No code is
    documented for a violation: 110 (assumed), as for the single sends."""
    data = body.get("Data")
    key = ""
    if isinstance(data, list) and data and isinstance(data[0], dict):
        key = data[0].get("RequestId") if isinstance(data[0].get("RequestId"), str) else ""

    def bad(rule: str, text: str) -> Reply:
        return _refuse(fake, f"multichannel:{rule}", "110", f"Request data invalid: {text}", key)

    if not isinstance(body.get("Phone"), str) or not body.get("Phone"):
        return bad("Phone", "Phone must be a string")
    if body.get("Channels") != ["zalo", "sms"]:
        return bad("Channels", 'Channels must be ["zalo","sms"]')
    if not (isinstance(data, list) and len(data) == 2 and all(isinstance(d, dict) for d in data)):
        return bad("Data", "Data must hold the ZNS and the SMS objects")
    zns, sms = data
    wrong = not_strings(
        zns, ("TempID", "OAID", "campaignid", "CallbackUrl", "RequestId", "Sandbox")
    )
    if wrong is None:
        wrong = not_strings(
            sms,
            ("Content", "IsUnicode", "SmsType", "Brandname", "CallbackUrl", "RequestId", "Sandbox"),
        )
    if wrong is not None:
        return bad(f"type:{wrong}", f"{wrong} must be a string")
    if not isinstance(zns.get("Params"), list) or any(
        not isinstance(p, str) for p in zns["Params"]
    ):
        return bad("type:Params", "Params must be an array of strings")
    for obj, names in ((zns, ("TempID", "OAID")), (sms, ("Content", "SmsType", "Brandname"))):
        for name in names:
            if not obj.get(name):
                return bad(f"{name}_missing", f"{name} is required")
    if sms["SmsType"] != "2":
        return bad("SmsType", 'SmsType must be "2" (CSKH)')
    for obj in (zns, sms):
        if len(obj.get("RequestId") or "") > 50:
            return bad("RequestId_length", "RequestId is at most 50 characters")
    return None


def multichannel(fake: FakeState, request: Request) -> Reply:
    """MultiChannelMessage: the ZNS, and when it fails (fail_phones, fail_rate) the SMS; one
    SMSID answered (the page's answer is the V4 one). Each leg's callback goes to its own
    CallbackUrl with its own RequestId (each Data item has both); the SMS leg's is TypeId 2
    (CSKH SMS), its own SMSID and TotalPrice (assumed: the page shows no SMS callback)."""
    body = request.body
    refused = check_multichannel(fake, body)
    if refused is not None:
        return refused
    zns, sms = body["Data"]
    key = str(zns.get("RequestId") or "")
    duplicate = _duplicate(fake, key)
    if duplicate is not None:
        return duplicate
    phone = str(body.get("Phone") or "")
    record = _zns_record(fake, key, phone, zns)
    smsid, failed = record["SMSID"], record["failed"]
    fake.schedule(fake.callback_delay, "GET", zns.get("CallbackUrl") or "", callback(record))
    if failed:
        with fake.lock:
            fake.sms_fallbacks.append(
                {"provider": PROVIDER, "phone": phone, "message": sms.get("Content")}
            )
        if phone not in fake.silent_phones:
            leg = {
                "SMSID": msg_id(),
                "SendFailed": 0,
                "SendStatus": 5,
                "SendSuccess": 1,
                "TotalPrice": "750.0000",
                "TotalReceiver": 1,
                "TotalSent": 1,
                "RequestId": str(sms.get("RequestId") or ""),
                "TypeId": 2,
                "telcoid": 1,
                "phonenumber": phone,
            }
            fake.schedule(fake.callback_delay * 2, "GET", sms.get("CallbackUrl") or "", leg)
    return _ok({"CodeResult": "100", "CountRegenerate": 0, "SMSID": smsid}, key)


ENDPOINTS: dict[str, Callable[[FakeState, Request], Reply]] = {
    "MultiChannelMessage": multichannel,
    "SendZaloMessage_V4_post_json": send,
    "SendZaloMessage_V6": send,
    "QueryZnsStatus": query_status,
    "ZNS/GetListZOA": list_oas,
    "ZNS/GetQuota": quota,
    "GetTemplate": list_templates,
    "GetZnsTemplateInfo": template_info,
}


def handle_status(fake: FakeState, request: Request) -> Reply:
    """The replay host's ZaloCallback/GetCallback: the callbacks of the SMSIDs asked for."""
    if not request.body.get("ApiKey"):
        return _ok({"Code": 101, "Message": "Authorize Failed"})
    rows = []
    for smsid in request.body.get("ListRefid") or []:
        record = fake.messages.get(str(smsid))
        if record:
            cb = callback(record)
            rows.append(
                {
                    "SMSID": cb["SMSID"],
                    "SendFailed": cb["SendFailed"],
                    "SendSuccess": cb["SendSuccess"],
                    "SendStatus": cb["SendStatus"],
                    "TotalPrice": cb["TotalPrice"],
                    "RequestId": cb["RequestId"],
                    "Partnerids": cb["partnerids"],
                    "ErrorInfo": cb["error_info"],
                    "OAId": cb["oaid"],
                }
            )
    return _ok({"Code": 100, "Message": "Success", "Data_callback": rows})


def callback(record: dict) -> dict:
    """A callback in eSMS's documented query format (providers.md §2.5)."""
    if record["failed"]:
        info = {"error": record["error"], "message": record["message"]}
    else:
        info = {
            "error": 0,
            "message": "Success",
            "data": {
                "delivery_time": None,
                "message": "The message was delivered to the user's phone",
                "status": 1,
            },
        }
    return {
        "SMSID": record["SMSID"],
        "SendFailed": 1 if record["failed"] else 0,
        "SendStatus": 5,
        "SendSuccess": 0 if record["failed"] else 1,
        "TotalPrice": "0.0000" if record["failed"] else "300.0000",
        "TotalReceiver": 1,
        "TotalSent": 1,
        "RequestId": record["RequestId"],
        "TypeId": 25,
        "telcoid": 2,
        "phonenumber": record["phone"],
        "partnerids": record["zalo_msg_id"],
        "error_info": json.dumps(info, ensure_ascii=False),
        "oaid": record["oaid"],
        "tempid": record["tempid"],
    }
