"""eSMS's answers about one message: the GET callback (and GetCallback rows, the same fields) and
QueryZnsStatus data, turned into normalized statuses; `error_info`, Zalo's error JSON in whatever
wrapping eSMS gives it (providers.md §2.5, §2.6)."""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qsl, unquote

from providers import zalo
from providers.base import EventStatus, StatusEvent, WebhookRequest
from providers.errors import ESMS_CODES, classify_zalo

_SEND_STATUS_PENDING = {"1", "2", "7"}  # pending approval, waiting to send, sent awaiting report


_FORM = "application/x-www-form-urlencoded"
# TypeId 1 ads SMS, 2 CSKH SMS (providers.md §2.5). Loa sends only ZNS through eSMS, so an SMS
# callback is the SMS leg of a MultiChannelMessage (the provider's own fallback, issue 19): its
# RequestId is the one Loa gave Data[1] (assumed echoed per leg, as each leg has its own
# RequestId and CallbackUrl on eSMS's page).
SMS_TYPE_IDS = {"1", "2"}


def callback_fields(request: WebhookRequest) -> dict | None:
    """The fields of one callback: the query string of a GET (as eSMS documents, providers.md
    §2.5), or of a POST that carries them there, or a POST's form body (Content-Type
    application/x-www-form-urlencoded; the same fields, the way a form would post them). None
    for anything else (a JSON body, an empty POST)."""
    if request.method == "GET" or request.query:
        return dict(request.query)
    if request.method != "POST":
        return None
    content_type = str(request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if content_type != _FORM:
        return None
    try:
        text = (request.body or b"").decode("utf-8")
        fields = dict(parse_qsl(text, keep_blank_values=True, max_num_fields=200))
    except (UnicodeDecodeError, ValueError):
        return None
    return fields or None


def _ci(fields: dict) -> dict:
    """Callback query and GetCallback rows name the same fields differently (error_info vs
    ErrorInfo, phonenumber vs PhoneNumber): compare lower-cased, without underscores."""
    return {str(k).lower().replace("_", ""): v for k, v in fields.items()}


def status_from_fields(fields: dict) -> StatusEvent:
    """A callback (GET query) or a GetCallback row -> one normalized status.

    SendStatus 1 pending approval, 2 waiting, 4 rejected, 5 finished (check SendSuccess /
    SendFailed), 7 sent awaiting report (providers.md §2.5). Success <=> 5 and SendSuccess >= 1;
    failure <=> 4, or 5 and SendFailed >= 1, with the Zalo code in error_info.error.
    """
    f = _ci(fields)
    smsid = str(f.get("smsid") or "").strip()
    request_id = str(f.get("requestid") or "").strip()
    send_status = str(f.get("sendstatus") or "").strip()
    success = zalo.to_int(f.get("sendsuccess"), 0) or 0
    failed = zalo.to_int(f.get("sendfailed"), 0) or 0
    info = parse_error_info(str(f.get("errorinfo") or ""))
    zalo_code = info.get("error") if isinstance(info, dict) else None
    zalo_msg = info.get("message", "") if isinstance(info, dict) else ""
    if send_status == "5" and success >= 1:
        status = EventStatus.DELIVERED
        # Zalo's own status 1 = "on the user's device"; 0 = sent to Zalo, not yet on the device.
        data = info.get("data") if isinstance(info, dict) else None
        if isinstance(data, dict) and str(data.get("status")) == "0":
            status = EventStatus.SENT
    elif send_status == "4" or (send_status == "5" and failed >= 1):
        status = EventStatus.FAILED
    elif send_status in _SEND_STATUS_PENDING:
        status = EventStatus.SENT
    else:
        status = EventStatus.UNKNOWN
    code = ""
    message = ""
    if status == EventStatus.FAILED:
        code = (
            str(zalo_code) if zalo_code not in (None, 0, "0", "") else f"esms_status_{send_status}"
        )
        message = str(zalo_msg)[:500] or _explain_code(code)
    return StatusEvent(
        status=status,
        provider_message_id=smsid,
        idempotency_key=request_id,
        error_code=code,
        error_message=message,
        fee=zalo.to_decimal(f.get("totalprice")) if status != EventStatus.FAILED else None,
        raw=dict(fields),
        leg=1 if str(f.get("typeid") or "").strip() in SMS_TYPE_IDS else 0,
    )


def _explain_code(code: str) -> str:
    icode = zalo.to_int(code)
    if icode is None:
        return ""
    if icode < 0:
        return classify_zalo(icode)[1]
    if icode in ESMS_CODES:
        return str(ESMS_CODES[icode][1])
    return ""


_JSON_OBJ = re.compile(r"\{.*\}", re.S)


def parse_error_info(raw: str) -> dict:
    """eSMS `error_info` holds Zalo's error JSON, URL-encoded, sometimes quoted or double-encoded,
    sometimes with trailing text (providers.md §2.5). Peel layers until an object appears."""
    text = raw or ""
    for _attempt in range(4):
        text = text.strip()
        if not text:
            return {}
        try:
            value = json.loads(text)
        except ValueError:
            if "%" in text:
                text = unquote(text)
                continue
            m = _JSON_OBJ.search(text)
            if m and m.group(0) != text:
                text = m.group(0)
                continue
            return {}
        if isinstance(value, dict):
            return value
        if isinstance(value, str):
            text = value  # quoted JSON: decode again
            continue
        if isinstance(value, int):
            return {"error": value}  # QueryZnsStatus ErrorInfo is a bare code
        return {}
    return {}


def status_from_query(d: dict, sms_id: str) -> StatusEvent | None:
    """QueryZnsStatus Data: FinalStatus 1 final / 0 not final; ErrorInfo 0 ok, 1001 user
    not online in time, null not sent yet, else a Zalo code (providers.md §2.6)."""
    if not isinstance(d, dict) or not d:
        return None
    final = str(d.get("FinalStatus", "")).strip()
    success = zalo.to_int(d.get("SendSuccess"), 0) or 0
    failed = zalo.to_int(d.get("SendFailed"), 0) or 0
    raw_error = d.get("ErrorInfo")
    info = parse_error_info(str(raw_error)) if isinstance(raw_error, str) else {}
    error = info.get("error") if info else raw_error
    error_code = str(error).strip() if error not in (None, "", "null") else ""
    common = dict(provider_message_id=str(d.get("SMSID") or sms_id), raw=d)
    if final == "1" and success >= 1:
        return StatusEvent(
            EventStatus.DELIVERED, fee=zalo.to_decimal(d.get("TotalPrice")), **common
        )
    if final == "1" and (failed >= 1 or error_code not in ("", "0")):
        code = error_code if error_code not in ("", "0") else "esms_failed"
        return StatusEvent(
            EventStatus.FAILED,
            error_code=code,
            error_message=_explain_code(code),
            **common,
        )
    if final == "0" or str(d.get("SendStatus")) in _SEND_STATUS_PENDING:
        return StatusEvent(EventStatus.SENT, **common)
    return None
