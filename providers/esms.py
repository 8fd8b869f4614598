"""eSMS.vn (ViHAT) Zalo ZNS: V4 (positional Params) and V6 (named TempData) sends, GET callbacks.

Contract: seed 003 (SendZaloMessage_V4_post_json) and providers.md §2. Auth is ApiKey+SecretKey in
the body (no header auth). CodeResult 100 means "accepted by eSMS", not delivered: the final
status arrives later as an HTTP GET on CallbackUrl.
"""

from __future__ import annotations

import hashlib
import json
import re
from decimal import Decimal, InvalidOperation
from urllib.parse import unquote

from django.utils.translation import gettext_lazy as _

from providers.base import (
    BaseProvider,
    ErrorClass,
    EventStatus,
    OutboundMessage,
    ParsedWebhook,
    ProviderError,
    SendResult,
    StatusEvent,
    WebhookRejected,
    WebhookRequest,
)
from providers.phones import to_local

R, A, D, P, C = (
    ErrorClass.RETRYABLE,
    ErrorClass.AMBIGUOUS,
    ErrorClass.DEFERRED,
    ErrorClass.PERMANENT,
    ErrorClass.CONFIGURATION,
)

# CodeResult table: v2 esms-api/bang-ma-loi.md (providers.md §2.4).
ESMS_CODES: dict[int, tuple[ErrorClass, str]] = {
    99: (P, _("eSMS: the phone number is blocked.")),
    101: (C, _("eSMS: wrong ApiKey or SecretKey.")),
    102: (C, _("eSMS: the account has no price list.")),
    103: (C, _("eSMS: insufficient balance; top up the account.")),
    104: (C, _("eSMS: brandname not found.")),
    105: (R, _("eSMS: message id not found yet.")),
    107: (P, _("eSMS: at least 30 distinct numbers are required.")),
    108: (P, _("eSMS: the phone number format is invalid.")),
    110: (P, _("eSMS: the request data is invalid.")),
    115: (P, _("eSMS: the hashed phone is invalid.")),
    118: (C, _("eSMS: message type not supported.")),
    120: (P, _("eSMS: too many phones in one request.")),
    124: (A, _("eSMS: duplicate RequestId (already accepted).")),
    140: (C, _("eSMS: this server's IP address is not whitelisted at eSMS.")),
    143: (C, _("eSMS: the account is not activated or is locked.")),
    146: (C, _("eSMS: wrong customer-care template.")),
    160: (R, _("eSMS: request rate limit exceeded.")),
    163: (P, _("eSMS: only one phone per request.")),
    177: (C, _("eSMS: the telco is not registered.")),
    199: (R, _("eSMS: a request is already being processed.")),
    201: (P, _("eSMS: the content has a blocked keyword.")),
    204: (C, _("eSMS: this Official Account is not registered at eSMS.")),
    210: (P, _("eSMS: the payload is invalid.")),
    300: (C, _("eSMS: SmsType is missing.")),
    301: (C, _("eSMS: service type not supported.")),
    687: (P, _("eSMS: more than 500 phones in one request.")),
    789: (C, _("eSMS: the template is not configured for this Official Account.")),
    790: (C, _("eSMS: wrong ZNS template.")),
    791: (C, _("eSMS: OAID or TempID missing.")),
    799: (C, _("eSMS: the Official Account is inactive, wrong, or not added to the account.")),
    801: (C, _("eSMS: over-quota mode cannot be scheduled.")),
    802: (C, _("eSMS: this Official Account may not use over-quota mode.")),
    851: (P, _("eSMS: message id missing.")),
    852: (P, _("eSMS: Zalo UID invalid.")),
    853: (P, _("eSMS: Zalo UID missing.")),
    854: (R, _("eSMS: no data found yet.")),
}

_SEND_STATUS_PENDING = {"1", "2", "7"}  # pending approval, waiting to send, sent awaiting report


def classify_esms(code: int | str) -> tuple[ErrorClass, str]:
    try:
        icode = int(code)
    except (TypeError, ValueError):
        return P, f"eSMS code {code}"
    if icode in ESMS_CODES:
        klass, text = ESMS_CODES[icode]
        return klass, str(text)
    return P, f"eSMS code {icode}"


class EsmsProvider(BaseProvider):
    kind = "esms"
    label = "eSMS.vn (Zalo ZNS)"
    default_base_url = "https://rest.esms.vn/MainService.svc/json"
    secret_fields = ("api_key", "secret_key")
    channel_kinds = ("zalo_zns",)
    # RequestId is refused as a duplicate (CodeResult 124) for 24 h: a resend is safe.
    dedupes_idempotency_key = True
    default_settings = {
        "api_version": "v4",  # "v4" = SendZaloMessage_V4_post_json (positional), "v6" = named TempData
        "sandbox": False,  # Sandbox "1": validated, not stored, not delivered, not charged
        "sending_mode": "1",  # 1 default, 3 over-quota tag-3 (whitelisted OAs only)
        "campaign_name": "",
        "phone_format": "local",  # eSMS's examples send 0901888484
    }

    # ---- sending -------------------------------------------------------------------------------
    def build_payload(self, message: OutboundMessage) -> tuple[str, dict]:
        version = str(self.settings.get("api_version", "v4")).lower()
        phone = (
            to_local(message.phone)
            if self.settings.get("phone_format") == "local"
            else message.phone
        )
        payload: dict = {
            "ApiKey": self.config.secrets.get("api_key", ""),
            "SecretKey": self.config.secrets.get("secret_key", ""),
            "Phone": phone,
            "TempID": str(message.template_id),
            "OAID": str(message.oa_id),
            # RequestId: our idempotency key; eSMS refuses a repeat within 24 h. Max 50 chars.
            "RequestId": message.idempotency_key[:50],
            "Sandbox": "1" if (self.settings.get("sandbox") or message.test_mode) else "0",
            "SendingMode": str(self.settings.get("sending_mode") or "1"),
        }
        if self.config.webhook_url:
            payload["CallbackUrl"] = self.config.webhook_url
        if self.settings.get("campaign_name"):
            payload["campaignid"] = str(self.settings["campaign_name"])[:254]
        if version == "v6":
            payload["TempData"] = {k: str(v) for k, v in message.template_data.items()}
            return f"{self.base_url}/SendZaloMessage_V6/", payload
        # V4: "The input value have to put in the same of its order in your template. If it's
        # duplicated, just place it once." (seed 003)
        order = message.param_order or tuple(message.template_data)
        seen: set[str] = set()
        params = []
        for name in order:
            if name in seen:
                continue
            seen.add(name)
            params.append(str(message.template_data.get(name, "")))
        payload["Params"] = params
        return f"{self.base_url}/SendZaloMessage_V4_post_json/", payload

    def send(self, message: OutboundMessage) -> SendResult:
        url, payload = self.build_payload(message)
        try:
            resp = self.request("POST", url, json_body=payload)
        except ProviderError as exc:
            return SendResult.failed(exc.error_class, exc.code, exc.message)
        failure = self.http_status_failure(resp)
        if failure:
            return failure
        try:
            data = resp.json()
        except ValueError:
            # 2xx with a body we cannot read: it may have been accepted.
            return SendResult.failed(
                A, "bad_response", "eSMS answered with a body that is not JSON."
            )
        code = str(data.get("CodeResult", ""))
        if code == "100":
            return SendResult.accepted(str(data.get("SMSID") or ""), raw=data)
        if code == "124":
            # Duplicate RequestId: an earlier attempt was accepted. Success; never resend, the
            # callback (keyed by RequestId) or reconciliation will tell the outcome.
            return SendResult.accepted(str(data.get("SMSID") or ""), raw=data)
        klass, text = classify_esms(code)
        return SendResult.failed(klass, code, data.get("ErrorMessage") or text, raw=data)

    # ---- callbacks -----------------------------------------------------------------------------
    def parse_webhook(self, request: WebhookRequest) -> ParsedWebhook:
        q = request.query
        if request.method != "GET" and not q:
            # eSMS documents GET callbacks only; accept a form POST with the same fields too.
            raise WebhookRejected("eSMS callbacks are GET requests with query parameters")
        smsid = (q.get("SMSID") or "").strip()
        request_id = (q.get("RequestId") or "").strip()
        if not smsid and not request_id:
            raise WebhookRejected("Missing SMSID and RequestId")
        send_status = (q.get("SendStatus") or "").strip()
        success = _int(q.get("SendSuccess"))
        failed = _int(q.get("SendFailed"))
        zalo = parse_error_info(q.get("error_info", ""))
        zalo_code = zalo.get("error") if isinstance(zalo, dict) else None
        zalo_msg = zalo.get("message", "") if isinstance(zalo, dict) else ""
        fee = _decimal(q.get("TotalPrice"))
        if send_status == "5" and success >= 1:
            status = EventStatus.DELIVERED
            # Zalo's own status 1 = "on the user's device" (error_info.data.status)
            data = zalo.get("data") if isinstance(zalo, dict) else None
            if isinstance(data, dict) and str(data.get("status")) == "0":
                status = EventStatus.SENT
        elif send_status == "4" or (send_status == "5" and failed >= 1):
            status = EventStatus.FAILED
        elif send_status in _SEND_STATUS_PENDING:
            status = EventStatus.SENT
        else:
            status = EventStatus.UNKNOWN
        code = ""
        if status == EventStatus.FAILED:
            code = (
                str(zalo_code) if zalo_code not in (None, 0, "0") else f"esms_status_{send_status}"
            )
        event = StatusEvent(
            status=status,
            provider_message_id=smsid,
            idempotency_key=request_id,
            error_code=code,
            error_message=str(zalo_msg)[:500] if status == EventStatus.FAILED else "",
            fee=fee if status != EventStatus.FAILED else None,
            raw=dict(q),
        )
        key_src = "|".join([smsid, request_id, send_status, str(success), str(failed)])
        return ParsedWebhook(
            statuses=[event], dedupe_key="esms:" + hashlib.sha256(key_src.encode()).hexdigest()[:40]
        )

    # ---- admin helpers -------------------------------------------------------------------------
    def _post(self, path: str, body: dict) -> dict:
        body = {
            "ApiKey": self.config.secrets.get("api_key", ""),
            "SecretKey": self.config.secrets.get("secret_key", ""),
            **body,
        }
        resp = self.request("POST", f"{self.base_url}/{path}", json_body=body)
        failure = self.http_status_failure(resp)
        if failure:
            raise ProviderError(failure.error_class, failure.error_code, failure.error_message)
        try:
            data = resp.json()
        except ValueError as exc:
            raise ProviderError(
                A, "bad_response", "eSMS answered with a body that is not JSON."
            ) from exc
        code = str(data.get("CodeResult", data.get("CodeResponse", "100")))
        if code != "100":
            klass, text = classify_esms(code)
            raise ProviderError(klass, code, data.get("ErrorMessage") or text)
        return data

    def list_official_accounts(self) -> list[dict]:
        data = self._post("ZNS/GetListZOA/", {})
        return [
            {"oa_id": str(o.get("OAID")), "name": o.get("OAName", "")}
            for o in data.get("ZOAList") or []
        ]

    def test_connection(self) -> str:
        oas = self.list_official_accounts()
        return str(_("Connected to eSMS: {n} Official Account(s) visible.")).format(n=len(oas))


def _int(value) -> int:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return 0


def _decimal(value) -> Decimal | None:
    try:
        return Decimal(str(value).strip()) if value not in (None, "") else None
    except InvalidOperation:
        return None


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
        return {}
    return {}
