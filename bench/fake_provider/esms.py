"""eSMS as the fake speaks it (providers.md §2): Zalo ZNS sends with their GET callback, the
status query, OA, quota and template reads, and the callback replay host (status-sms.esms.vn).
One handler per endpoint; handle() checks the API key and routes by endpoint name."""

from __future__ import annotations

import json
from collections.abc import Callable

from bench.fake_provider.shared import OA_ID, TEMPLATES, Reply, Request, msg_id
from bench.fake_provider.state import FakeState

PROVIDER = "esms"


def _ok(body: dict, key: str = "", status: int = 200) -> Reply:
    return Reply(status, body, PROVIDER, key)


def handle(fake: FakeState, request: Request) -> Reply:
    """A call under /esms/MainService.svc/json/: eSMS answers 200 with a CodeResult, even when
    the ApiKey/SecretKey pair is missing."""
    name = request.path.split("/json/", 1)[-1].strip("/")
    creds = request.body if request.method == "POST" else request.query
    if not creds.get("ApiKey") or not creds.get("SecretKey"):
        return _ok({"CodeResult": "101", "CountRegenerate": 0, "ErrorMessage": "Authorize Failed"})
    endpoint = ENDPOINTS.get(name)
    if endpoint is None:
        return _ok({"CodeResult": "99", "ErrorMessage": "no such eSMS route"}, status=404)
    return endpoint(fake, request)


def send(fake: FakeState, request: Request) -> Reply:
    """SendZaloMessage_V4_post_json and _V6: one ZNS message, its callback scheduled."""
    body = request.body
    key = str(body.get("RequestId") or "")
    if not body.get("OAID") or not body.get("TempID"):
        return _ok(
            {"CodeResult": "791", "CountRegenerate": 0, "ErrorMessage": "Missing OAID or TempID"},
            key,
        )
    with fake.lock:
        existing = fake.by_key.get((PROVIDER, key)) if key else None
    if existing:
        # RequestId seen within 24 h: duplicate (providers.md §2.2).
        return _ok(
            {"CodeResult": "124", "CountRegenerate": 0, "ErrorMessage": "Duplicate RequestId"}, key
        )
    smsid = msg_id()
    failed, code, text = fake.outcome()
    record = {
        "provider": PROVIDER,
        "SMSID": smsid,
        "RequestId": key,
        "phone": body.get("Phone"),
        "oaid": body.get("OAID"),
        "tempid": body.get("TempID"),
        "zalo_msg_id": msg_id(),
        "failed": failed,
        "error": code,
        "message": text,
    }
    with fake.lock:
        fake.messages[smsid] = record
        if key:
            fake.by_key[(PROVIDER, key)] = smsid
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


ENDPOINTS: dict[str, Callable[[FakeState, Request], Reply]] = {
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
