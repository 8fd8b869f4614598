"""eTelecom as the fake speaks it (providers.md §1): ZNS sends (with the OA's daily quota and a
POST callback of the message object or of Zalo's user_received_message), message reads, template
and OA lists, and the webhook registration. One handler per endpoint; handle() checks the bearer
key and the JSON content type, then routes by the last path segment."""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial

from bench.fake_provider.shared import OA_ID, TEMPLATES, Reply, Request, msg_id, now_iso
from bench.fake_provider.state import FakeState

PROVIDER = "etelecom"


def _ok(body: dict, key: str = "", status: int = 200) -> Reply:
    return Reply(status, body, PROVIDER, key)


def handle(fake: FakeState, request: Request) -> Reply:
    """A call under /etelecom/v1/{shop,partner}/...: Twirp-style POSTs of JSON."""
    auth = request.headers.get("Authorization", "")
    if not auth.startswith("Bearer ") or len(auth) <= 7:
        return _ok({"code": "unauthenticated", "msg": "missing or invalid api key"}, status=401)
    if "application/json" not in (request.headers.get("Content-Type") or ""):
        return _ok({"code": "bad_route", "msg": 'unexpected Content-Type: ""'}, status=404)
    method = request.path.rsplit("/", 1)[-1]
    endpoint = ENDPOINTS.get(method)
    if endpoint is None:
        return _ok({"code": "bad_route", "msg": f"no handler for {method}"}, status=404)
    return endpoint(fake, request)


def send(fake: FakeState, request: Request, *, kind: str) -> Reply:
    """SendZNS (kind "template") and SendZNSJourney ("journey"): one message; past the daily
    quota it is Zalo's -144, and only a message that did not fail gets a callback."""
    body = request.body
    key = str(body.get("tracking_id") or "")
    if not body.get("oa_id") or not isinstance(body.get("template_id"), int):
        return _ok(
            {"code": "invalid_argument", "msg": "oa_id and template_id are required"},
            key,
            status=400,
        )
    with fake.lock:
        over_quota = fake.daily_quota is not None and fake.quota_used >= fake.daily_quota
        fake.quota_used += not over_quota
    if over_quota:
        # eTelecom relays Zalo's refusal as a failed message ([I] providers.md §1.3).
        failed, code, text = True, -144, "OA daily quota exceeded"
    else:
        failed, code, text = fake.outcome()
    message = _message(fake, body, key=key, kind=kind, failed=failed, code=code, text=text)
    with fake.lock:
        fake.messages[message["msg_id"]] = message
        if key:
            fake.by_key[(PROVIDER, key)] = message["msg_id"]
            fake.accepted_by_key[(PROVIDER, key)] += not over_quota
    if not failed:
        _schedule_callback(fake, message)
    return _ok(message, key)


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
    """GetMessage by msg_id."""
    message = fake.messages.get(str(request.body.get("msg_id")))
    if message is None:
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
