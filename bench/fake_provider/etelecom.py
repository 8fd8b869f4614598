"""eTelecom as the fake speaks it (providers.md §1): ZNS sends (with the OA's daily quota and a
POST callback of the message object or of Zalo's user_received_message), message reads, template
and OA lists, and the webhook registration. One handler per endpoint; handle() checks the bearer
key and the JSON content type, then routes by the last path segment."""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial

from bench.fake_provider.shared import (
    DIGITS,
    OA_ID,
    TEMPLATES,
    Reply,
    Request,
    is_integer,
    is_json,
    msg_id,
    not_strings,
    now_iso,
    type_name,
)
from bench.fake_provider.state import FakeState

PROVIDER = "etelecom"

# Seed 004, SendZNS: "mode string · enum ... Enum: "unknown" "development"" (omitted = unknown).
MODES = ("unknown", "development")
# Seed 004: the request's "sending_mode string · enum" lists its values only in the answer's
# field table: "unknown", "default", "tag3".
SENDING_MODES = ("unknown", "default", "tag3")


def _ok(body: dict, key: str = "", status: int = 200) -> Reply:
    return Reply(status, body, PROVIDER, key)


def _twirp(fake: FakeState, rule: str, code: str, msg: str, key: str = "") -> Reply:
    """A refusal in eTelecom's documented error envelope (providers.md §1.1 [F]): {"code","msg"},
    invalid_argument 400, unauthenticated 401, bad_route (a Twirp route error: 404)."""
    fake.refuse(PROVIDER, rule)
    status = {"invalid_argument": 400, "unauthenticated": 401, "bad_route": 404}[code]
    return _ok({"code": code, "msg": msg}, key, status=status)


def handle(fake: FakeState, request: Request) -> Reply:
    """A call under /etelecom/{v1,api}/{shop,partner}.Zalo/...: Twirp-style POSTs of JSON,
    authenticated by the bearer key of the mode the path names."""
    refused = check_auth(fake, request)
    if refused is not None:
        return refused
    if not is_json(request):
        # providers.md §1.1 [F]: {"code":"bad_route","msg":"unexpected Content-Type: \"\""} when
        # Content-Type is missing (seeds 002/004 send --header 'Content-Type: application/json').
        ctype = request.headers.get("Content-Type") or ""
        return _twirp(fake, "content_type", "bad_route", f'unexpected Content-Type: "{ctype}"')
    if request.malformed or not isinstance(request.body, dict):
        # assumed: a body that is not a JSON object is refused as invalid_argument (the
        # documented 400; Twirp itself would say "malformed", which providers.md does not show).
        return _twirp(
            fake, "body_not_object", "invalid_argument", "the json request could not be decoded"
        )
    method = request.path.rsplit("/", 1)[-1]
    endpoint = ENDPOINTS.get(method)
    if endpoint is None:
        return _ok({"code": "bad_route", "msg": f"no handler for {method}"}, status=404)
    return endpoint(fake, request)


def check_auth(fake: FakeState, request: Request) -> Reply | None:
    """Seed 002: "Đối với các API sử dụng cho Shop thì API_KEY: <api_key> ... cho Partner thì
    API_KEY: <shop_key>", sent as "--header 'Authorization: Bearer $API_KEY'" (the same on every
    Zalo page: providers.md §1.1 [F]). 401 unauthenticated otherwise (§1.1 [F])."""
    auth = request.headers.get("Authorization") or ""
    scheme, _, key = auth.partition(" ")
    if scheme != "Bearer" or not key.strip():
        return _twirp(fake, "bearer", "unauthenticated", "missing or invalid api key")
    # The mode is in the path the account calls: $BASE_URL = .../shop or .../partner.
    mode = "partner" if "/partner." in request.path else "shop"
    expected = fake.keys.get(f"etelecom:{mode}")
    if expected is not None and key != expected:
        name = "shop_key" if mode == "partner" else "api_key"
        return _twirp(
            fake, f"key:{mode}", "unauthenticated", f"invalid api key ({mode} APIs take the {name})"
        )
    return None


def check_send(fake: FakeState, body: dict, *, journey: bool) -> Reply | None:
    """SendZNS as seed 004 states it (SendZNSJourney by the same fields, providers.md §1.4):
    None when acceptable, else eTelecom's invalid_argument."""
    key = body.get("tracking_id") if isinstance(body.get("tracking_id"), str) else ""

    def bad(rule: str, msg: str) -> Reply:
        return _twirp(fake, rule, "invalid_argument", msg, key)

    # Seed 004: "oa_id string · int64": an int64 written as a JSON string.
    oa_id = body.get("oa_id")
    if "oa_id" in body and not (isinstance(oa_id, str) and DIGITS.fullmatch(oa_id)):
        return bad("type:oa_id", f"oa_id must be an int64 string, not {type_name(oa_id)}")
    # Seed 004: "phone string", "tracking_id string" (and journey_id, providers.md §1.4).
    wrong = not_strings(body, ("phone", "tracking_id", "mode", "sending_mode", "journey_id"))
    if wrong is not None:
        return bad(f"type:{wrong}", f"{wrong} must be a string, not {type_name(body[wrong])}")
    # Seed 004: "template_id integer": a JSON integer, not "205644".
    if "template_id" in body and not is_integer(body["template_id"]):
        return bad(
            "type:template_id",
            f"template_id must be an integer, not {type_name(body['template_id'])}",
        )
    # Seed 004: "template_data object"; its values strings: seed 002's schema of the same
    # field, "template_data": {"ANY_ADDITIONAL_PROPERTY": "text"} (providers.md §1.2 [F]:
    # {"<param>":"<string>"}).
    data = body.get("template_data")
    if "template_data" in body and not isinstance(data, dict):
        return bad("type:template_data", "template_data must be an object")
    if isinstance(data, dict):
        for name, value in data.items():
            if not isinstance(value, str):
                return bad(
                    "type:template_data[]",
                    f"template_data.{name} must be a string, not {type_name(value)}",
                )
    if "mode" in body and body["mode"] not in MODES:
        return bad("mode_value", f"mode must be one of {', '.join(MODES)}")
    if "sending_mode" in body and body["sending_mode"] not in SENDING_MODES:
        return bad("sending_mode_value", f"sending_mode must be one of {', '.join(SENDING_MODES)}")
    # The provider's own SMS fallback (providers.md §1.2, not a seed: the answer "adds
    # enable_sms_on_zns_failure (bool) and sms{brandname,...,message,...,unicode}"). How the
    # request carries it is assumed: the flag, a JSON boolean, and an `sms` object with the
    # answer block's names, `message` a non-empty string, `brandname` a string, `unicode` a bool.
    if "enable_sms_on_zns_failure" in body and not isinstance(
        body["enable_sms_on_zns_failure"], bool
    ):
        return bad("type:enable_sms_on_zns_failure", "enable_sms_on_zns_failure must be a bool")
    if body.get("enable_sms_on_zns_failure"):
        sms = body.get("sms")
        if not isinstance(sms, dict):
            return bad("type:sms", "sms must be an object")
        if not (isinstance(sms.get("message"), str) and sms["message"].strip()):
            return bad("sms.message", "sms.message must be a non-empty string")
        if "brandname" in sms and not isinstance(sms["brandname"], str):
            return bad("type:sms.brandname", "sms.brandname must be a string")
        if "unicode" in sms and not isinstance(sms["unicode"], bool):
            return bad("type:sms.unicode", "sms.unicode must be a bool")
    # assumed: seed 004 marks every field "Optional", but no message can be sent without an
    # OA, a recipient and a template: invalid_argument when one is missing.
    for name in ("oa_id", "phone", "template_id") + (("journey_id",) if journey else ()):
        if body.get(name) in (None, ""):
            return bad(f"{name}_missing", f"{name} is required")
    return None


def send(fake: FakeState, request: Request, *, kind: str) -> Reply:
    """SendZNS (kind "template") and SendZNSJourney ("journey"), checked by check_send: one
    message; past the daily quota it is Zalo's -144, and only a message that did not fail gets a
    callback."""
    body = request.body
    refused = check_send(fake, body, journey=kind == "journey")
    if refused is not None:
        return refused
    key = str(body.get("tracking_id") or "")
    with fake.lock:
        over_quota = fake.daily_quota is not None and fake.quota_used >= fake.daily_quota
        fake.quota_used += not over_quota
    if over_quota:
        # eTelecom relays Zalo's refusal as a failed message ([I] providers.md §1.3).
        failed, code, text = True, -144, "OA daily quota exceeded"
    else:
        failed, code, text = fake.outcome(str(body.get("phone") or ""))
    message = _message(fake, body, key=key, kind=kind, failed=failed, code=code, text=text)
    sms_sent = _sms_fallback(fake, body, message, failed=failed and not over_quota)
    with fake.lock:
        fake.messages[message["msg_id"]] = message
        if key:
            fake.by_key[(PROVIDER, key)] = message["msg_id"]
            fake.accepted_by_key[(PROVIDER, key)] += not over_quota
    silent = str(body.get("phone") or "") in fake.silent_phones
    if not failed and not silent:
        _schedule_callback(fake, message)
    if sms_sent and not silent:
        # The SMS leg's receipt: the message object again, its sms block now "P" (assumed).
        fake.schedule(
            fake.callback_delay,
            "POST",
            fake.callback_urls.get(PROVIDER, ""),
            {
                **message,
                "sms": {**message["sms"], "status": "P", "status_description": "Delivered"},
            },
        )
    return _ok(message, key)


def _sms_fallback(fake: FakeState, body: dict, message: dict, *, failed: bool) -> bool:
    """enable_sms_on_zns_failure: when the ZNS failed for this recipient (a Zalo refusal, not a
    quota), eTelecom sends the SMS and the answer carries its `sms{...}` block, status "Z" (sent;
    assumed the message's Z/P/N); the message is then charged for the SMS (is_charged, fee_main
    750: assumed, the block has no fee). Returns whether an SMS was sent."""
    if not body.get("enable_sms_on_zns_failure"):
        return False
    message["enable_sms_on_zns_failure"] = True
    if not failed:
        return False
    sms = body.get("sms") or {}
    now = now_iso()
    message["sms"] = {
        "brandname": sms.get("brandname") or "LOA",
        "code": 0,
        "description": "",
        "message": sms.get("message") or "",
        "request_time": now,
        "send_time": now,
        "status": "Z",
        "status_description": "Sent",
        "unicode": bool(sms.get("unicode")),
    }
    message["is_charged"] = True
    message["fee_main"] = 750
    with fake.lock:
        fake.sms_fallbacks.append(
            {"provider": PROVIDER, "phone": body.get("phone"), "message": sms.get("message")}
        )
    return True


def _message(
    fake: FakeState, body: dict, *, key: str, kind: str, failed: bool, code: int, text: str
) -> dict:
    """The message object eTelecom answers a send with (and GetMessage returns)."""
    now = now_iso()
    return {
        "id": str(fake.next_number() + 1_000_000),
        "msg_id": msg_id(),
        "oa_id": str(body["oa_id"]),
        "phone": body.get("phone"),
        "template_id": body["template_id"],
        "template_data": body.get("template_data") or {},
        "tracking_id": key,
        "type": kind,
        "status": "N" if failed else "P",
        "delivery_status": "unknown",
        "error_code": code,
        "error_message": text if failed else "",
        "fee_main": 0,
        "fee_token": 0,
        "is_charged": False,
        "is_development": body.get("mode") == "development",
        "sending_mode": body.get("sending_mode", "unknown"),
        "created_at": now,
        "updated_at": now,
        "sent_time": now,
    }


def _schedule_callback(fake: FakeState, message: dict) -> None:
    """The delivery callback, in the format chosen by fake.etelecom_callback."""
    url = fake.callback_urls.get(PROVIDER, "")
    if fake.etelecom_callback == "zalo":
        ts = str(int(time.time() * 1000))
        payload = {
            "app_id": "1234567890",
            "event_name": "user_received_message",
            "sender": {"id": message["oa_id"]},
            "recipient": {"id": "8471285721482"},
            "message": {
                "msg_id": message["msg_id"],
                "delivery_time": ts,
                "tracking_id": message["tracking_id"],
            },
            "timestamp": ts,
        }
    else:
        payload = {
            **message,
            "delivery_status": "received",
            "delivery_time": now_iso(),
            "is_charged": True,
            "fee_main": 300,
        }
    fake.schedule(fake.callback_delay, "POST", url, payload)


def get_message(fake: FakeState, request: Request) -> Reply:
    """GetMessage by msg_id, as seed 002 states it: "oa_id* int64 ID của OA", "msg_id* string ID
    tin nhắn" (the * marks both required; the OpenAPI block types oa_id "string · int64", the curl
    writes "oa_id": "<int64>")."""
    body = request.body
    oa_id, wanted = body.get("oa_id"), body.get("msg_id")
    if not (isinstance(oa_id, str) and DIGITS.fullmatch(oa_id)):
        return _twirp(fake, "type:oa_id", "invalid_argument", "oa_id must be an int64 string")
    if not (isinstance(wanted, str) and wanted):
        return _twirp(fake, "type:msg_id", "invalid_argument", "msg_id must be a non-empty string")
    message = fake.messages.get(wanted)
    # assumed: Twirp's not_found (HTTP 404) for an id eTelecom does not know, or one of another
    # OA (no "not found" answer is documented).
    if (
        message is None
        or message.get("provider", PROVIDER) != PROVIDER
        or message.get("oa_id") != oa_id
    ):
        return _ok({"code": "not_found", "msg": "message not found"}, status=404)
    return _ok(message)


def list_messages(fake: FakeState, request: Request) -> Reply:
    """ListMessages filtered by tracking_id, oa_id or msg_id, one page."""
    flt = request.body.get("filter") or {}
    with fake.lock:
        found = [
            m
            for m in fake.messages.values()
            if m.get("type") in ("template", "journey")
            and all(
                str(m.get(k)) == str(v)
                for k, v in flt.items()
                if k in ("tracking_id", "oa_id", "msg_id")
            )
        ]
    limit = int((request.body.get("paging") or {}).get("limit") or 100)
    return _ok({"messages": found[:limit], "paging": {"limit": limit, "next": ""}})


def list_templates(fake: FakeState, request: Request) -> Reply:
    """ListTemplates: every template with its parameters."""
    templates = [
        {
            "template_id": int(tid),
            "template_name": t["name"],
            "template_status": "ENABLE",
            "template_tag": "TRANSACTION",
            "template_quality": "HIGH",
            "preview_url": "https://account.zalo.cloud/znspreview/x",
            "price": 300,
            "oa_id": OA_ID,
            "template_params": [
                {
                    "name": p,
                    "type": "STRING",
                    "require": True,
                    "max_length": lim,
                    "min_length": 0,
                    "accept_null": False,
                }
                for p, _typ, lim in t["params"]
            ],
        }
        for tid, t in TEMPLATES.items()
    ]
    return _ok({"templates": templates, "paging": {"next": ""}})


def list_oas(fake: FakeState, request: Request) -> Reply:
    """ListOA: the one OA, with the webhook URL registered for it."""
    account = {
        "oa_id": OA_ID,
        "name": "Loa Fake OA",
        "current_quality": "HIGH",
        "daily_quota": 5000,
        "remaining_quota": 4990,
        "webhook_url": fake.callback_urls.get(PROVIDER, ""),
    }
    return _ok({"accounts": [account]})


def update_oa(fake: FakeState, request: Request) -> Reply:
    """UpdateShopOA: registers the webhook URL the callbacks go to."""
    body = request.body
    fake.callback_urls[PROVIDER] = str(body.get("webhook_url") or "")
    return _ok({"oa_id": body.get("oa_id"), "webhook_url": body.get("webhook_url"), "status": "P"})


ENDPOINTS: dict[str, Callable[[FakeState, Request], Reply]] = {
    "SendZNS": partial(send, kind="template"),
    "SendZNSJourney": partial(send, kind="journey"),
    "GetMessage": get_message,
    "ListMessages": list_messages,
    "ListTemplates": list_templates,
    "ListOA": list_oas,
    "UpdateShopOA": update_oa,
}
