"""The eSMS adapter: V4/V6 and journey sends, reconciliation (QueryZnsStatus, GetCallback), OAs,
quotas and templates. What its callbacks and status answers mean is in providers/esms/callbacks.py;
its CodeResult table in providers/errors.py (ESMS_CODES)."""

from __future__ import annotations

import hashlib
import html
import re

from django.utils.translation import gettext as _g

from providers import reach as reach_
from providers import zalo
from providers.base import (
    BaseProvider,
    ErrorClass,
    OutboundMessage,
    ParsedWebhook,
    ProviderError,
    SendResult,
    StatusEvent,
    WebhookRejected,
    WebhookRequest,
)
from providers.errors import classify_esms
from providers.esms.callbacks import callback_fields, status_from_fields, status_from_query
from providers.shared.phones import to_local

A, P, C = ErrorClass.AMBIGUOUS, ErrorClass.PERMANENT, ErrorClass.CONFIGURATION

_NOT_FOUND_CODES = {"105", "854"}


def request_id_for(key: str) -> str:
    """RequestId is at most 50 characters (seed 003). Truncating could make two keys collide,
    and a collision would be refused as a duplicate (124): shorten with a hash instead."""
    if len(key) <= 50:
        return key
    return key[:34] + hashlib.sha256(key.encode()).hexdigest()[:16]


# campaignid: seed 003 gives no length; eSMS's page says at most 254 characters (providers.md
# §2.2 [F]). Control characters (a name pasted with a line break) are made spaces.
CAMPAIGN_ID_MAX = 254
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def campaign_id_for(name: str) -> str:
    """The campaign's name as eSMS's `campaignid`: one line, trimmed to CAMPAIGN_ID_MAX."""
    return " ".join(_CONTROL.sub(" ", name or "").split())[:CAMPAIGN_ID_MAX].strip()


class EsmsProvider(BaseProvider):
    kind = "esms"
    label = "eSMS.vn (Zalo ZNS)"
    default_base_url = "https://rest.esms.vn/MainService.svc/json"
    secret_fields = ("api_key", "secret_key")
    channel_kinds = ("zalo_zns",)
    reach = {"zalo_zns": reach_.ZALO}  # Vietnamese phones only (providers/reach.py)
    # Seed 003 (SendZaloMessage_V4_post_json), verbatim: "RequestId / string / The identification
    # value for the request to prevent the the request from duplicated. Max length: 50". The seed
    # names no window and no answer; both come from eSMS's own pages (providers.md §2.2 [F]:
    # "de-dup window 24h (dup -> CodeResult 124)"; §2.4: "124 duplicate RequestId"). So a send
    # whose outcome is unknown may be made again with the same RequestId inside 24 h (23 h here,
    # for clock margins): eSMS refuses the repeat if it had the first, and send() reads 124 as
    # "already accepted". After the window nothing proves a repeat would be refused: the message
    # stays `unknown` for a person.
    dedupes_idempotency_key = True
    dedupe_window_seconds = 23 * 3600
    default_settings = {
        "api_version": "v4",  # "v4" = SendZaloMessage_V4_post_json (positional), "v6" = TempData
        "sandbox": False,  # Sandbox "1": validated, not stored, not delivered, not charged
        # SendingMode is not a field of seed 003; eSMS's V4/V6 pages add it (providers.md §2.2
        # [F]: "SendingMode 1 default / 3 over-quota for tag-3 (whitelisted OAs)"). So it is
        # sent only when the account asks: "3" over quota, or "1" explicitly; "" = not sent.
        "sending_mode": "",
        # `campaignid`: seed 003 "campaignid / string / The campaign name of request". The
        # campaign's own name by default; a value here replaces it for every send.
        "campaign_name": "",
        "phone_format": "local",  # eSMS's examples send 0901888484; "international" = 84...
        # Journey ZNS (seed 003): IsJourney + OrderId on the V4 URL.
        "journey": False,
        "journey_id": "",  # OrderId for every message of this account ...
        "journey_id_field": "",  # ... or the template_data key holding it per message
        # Seed 003: "IsJourney / string / True: it's the journey message. False: it's not the
        # journey message." The string "True", as written there; an account may override it
        # (e.g. JSON true) if eSMS asks for another spelling.
        "journey_flag": "True",
        # Callbacks and reconciliation.
        "status_base_url": "https://status-sms.esms.vn",  # GetCallback host (providers.md §2.5)
        "zns_sms_type": "25",  # SmsType of ZNS for QueryZnsStatus/GetTemplate: 24 priority, 25 normal
        # Documented limits are 100 req/s (QueryZnsStatus) and 20 req/s (GetCallback); we stay at
        # 90% so clock differences never earn us CodeResult 160.
        "rate_limits": {"query_zns_status": 90, "get_callback": 18},
        # MultiChannelMessage's Brandname (the provider's own SMS fallback, _multichannel).
        "sms_brandname": "",
    }

    # ---- sending -------------------------------------------------------------------------------
    def _credentials(self) -> dict:
        api_key = self.config.secrets.get("api_key", "")
        secret_key = self.config.secrets.get("secret_key", "")
        if not api_key or not secret_key:
            raise ProviderError(
                C, "missing_credentials", "The eSMS ApiKey and SecretKey must both be set."
            )
        return {"ApiKey": api_key, "SecretKey": secret_key}

    def _journey_order_id(self, message: OutboundMessage) -> str:
        field = str(self.settings.get("journey_id_field") or "")
        if field and message.template_data.get(field):
            return str(message.template_data[field])
        return str(self.settings.get("journey_id") or "")

    def build_payload(self, message: OutboundMessage) -> tuple[str, dict]:
        version = str(self.settings.get("api_version", "v4")).lower()
        journey = bool(self.settings.get("journey"))
        phone = (
            to_local(message.phone)
            if self.settings.get("phone_format") == "local"
            else message.phone
        )
        template_data = dict(message.template_data)
        journey_field = str(self.settings.get("journey_id_field") or "")
        if journey_field and journey_field not in message.param_order:
            template_data.pop(journey_field, None)  # carried in OrderId, not a template param
        payload: dict = {
            **self._credentials(),
            "Phone": phone,
            "TempID": str(message.template_id),
            "OAID": str(message.oa_id),
            # Our idempotency key; eSMS refuses a repeat within 24 h (CodeResult 124).
            "RequestId": request_id_for(message.idempotency_key),
            "Sandbox": "1" if (self.settings.get("sandbox") or message.test_mode) else "0",
        }
        if self.settings.get("sending_mode"):
            payload["SendingMode"] = str(self.settings["sending_mode"])
        if self.config.webhook_url:
            payload["CallbackUrl"] = self.config.webhook_url
        campaign_id = campaign_id_for(
            str(self.settings.get("campaign_name") or "") or message.campaign_name
        )
        if campaign_id:
            payload["campaignid"] = campaign_id
        if journey:
            order_id = self._journey_order_id(message)
            if not order_id:
                raise ProviderError(
                    P, "missing_journey_id", "Journey sending is on but OrderId is empty."
                )
            # Seed 003: "IsJourney ... True: it's the journey message"; "OrderId: Id of the
            # journey ... required if sending the journey message". Same V4 URL.
            payload["IsJourney"] = self.settings.get("journey_flag", "True")
            payload["OrderId"] = order_id
        if message.fallback_sms is not None:
            return self._multichannel(message, payload, template_data)
        if version == "v6" and not journey:
            payload["TempData"] = {k: str(v) for k, v in template_data.items()}
            return f"{self.base_url}/SendZaloMessage_V6/", payload
        payload["Params"] = self._params(message, template_data)
        return f"{self.base_url}/SendZaloMessage_V4_post_json/", payload

    @staticmethod
    def _params(message: OutboundMessage, template_data: dict) -> list[str]:
        """V4's Params: "The input value have to put in the same of its order in your template.
        If it's duplicated, just place it once." (seed 003)"""
        order = message.param_order or tuple(template_data)
        seen: set[str] = set()
        params = []
        for name in order:
            if name in seen:
                continue
            seen.add(name)
            params.append(str(template_data.get(name, "")))
        return params

    def _multichannel(
        self, message: OutboundMessage, single: dict, template_data: dict
    ) -> tuple[str, dict]:
        """MultiChannelMessage (issue 19, the provider's own fallback): eSMS sends the ZNS and,
        when it fails, the SMS. Not a seed: eSMS's page "Tin nhắn đa kênh: Zalo => SMS
        OTP/CSKH" (providers.md §2.3, esms-api/ham-gui-tin/tin-mutichanel-zalo-greater-than-
        sms-otp-cskh.md): {ApiKey, SecretKey, Phone, Channels ["zalo","sms"] ("do not change
        the order, do not drop a channel"), Data [{TempID, Params, OAID, campaignid,
        CallbackUrl, RequestId, Sandbox}, {Content, IsUnicode, SmsType "2" (CSKH), Brandname,
        CallbackUrl, RequestId, Sandbox}]}; the answer is the V4 one (CodeResult, SMSID).
        Each Data item has its own RequestId and CallbackUrl, so each leg's callback names its
        own message: Data[1].RequestId is the chain step's key. The Brandname is the account's
        setting `sms_brandname` (required there)."""
        sms = message.fallback_sms
        brandname = str(self.settings.get("sms_brandname") or "").strip()
        if not brandname:
            raise ProviderError(
                C,
                "missing_brandname",
                _g(
                    "eSMS's own fallback to SMS needs a Brandname: set `sms_brandname` in the "
                    "account's settings."
                ),
            )
        common = {k: single[k] for k in ("CallbackUrl", "Sandbox") if k in single}
        zns = {
            "TempID": single["TempID"],
            "Params": self._params(message, template_data),
            "OAID": single["OAID"],
            **({"campaignid": single["campaignid"]} if "campaignid" in single else {}),
            "RequestId": single["RequestId"],
            **common,
        }
        text = {
            "Content": sms.content,
            "IsUnicode": "1" if sms.unicode else "0",
            "SmsType": "2",
            "Brandname": brandname,
            "RequestId": request_id_for(sms.idempotency_key),
            **common,
        }
        payload = {
            **self._credentials(),
            "Phone": single["Phone"],
            "Channels": ["zalo", "sms"],
            "Data": [zns, text],
        }
        return f"{self.base_url}/MultiChannelMessage/", payload

    def send(self, message: OutboundMessage) -> SendResult:
        if message.channel_kind not in self.channel_kinds:
            return SendResult.failed(
                C, "unsupported_channel", f"eSMS adapter cannot send {message.channel_kind}."
            )
        try:
            url, payload = self.build_payload(message)
            resp = self.request(
                "POST", url, json_body=payload, bucket="send", rate=self.config.rate_limit
            )
        except ProviderError as exc:
            return SendResult.failed(exc.error_class, exc.code, exc.message)
        failure = self.http_status_failure(resp)
        if failure:
            return failure
        try:
            data = resp.json()
            if not isinstance(data, dict):
                raise ValueError("not an object")
        except ValueError:
            # 2xx with a body we cannot read: it may have been accepted.
            return SendResult.failed(
                A, "bad_response", "eSMS answered with a body that is not JSON."
            )
        code = str(data.get("CodeResult", ""))
        if code == "100":
            return SendResult.accepted(str(data.get("SMSID") or ""), raw=data)
        if code == "124":
            # Duplicate RequestId: an earlier attempt was accepted. Success; never resend. The
            # callback (keyed by RequestId) or reconciliation will tell the outcome.
            return SendResult.accepted(str(data.get("SMSID") or ""), raw=data)
        if resp.status_code >= 400 and not code:
            return SendResult.failed(C, f"http_{resp.status_code}", "eSMS refused the request.")
        klass, text = classify_esms(code)
        retry_after = 1.0 if code == "160" else None
        return SendResult.failed(
            klass, code, data.get("ErrorMessage") or text, raw=data, retry_after=retry_after
        )

    # ---- callbacks -----------------------------------------------------------------------------
    def parse_webhook(self, request: WebhookRequest) -> ParsedWebhook:
        # eSMS documents GET callbacks (providers.md §2.5); a POST carrying the same fields in
        # its query string or as a form body (application/x-www-form-urlencoded) is read the
        # same way (callback_fields). Anything else is refused.
        q = callback_fields(request)
        if q is None:
            raise WebhookRejected(
                "eSMS callbacks are GET requests with query parameters (or a form POST)"
            )
        smsid = (q.get("SMSID") or "").strip()
        request_id = (q.get("RequestId") or "").strip()
        if not smsid and not request_id:
            raise WebhookRejected("Missing SMSID and RequestId")
        event = status_from_fields(q)
        key_src = "|".join(
            [
                smsid,
                request_id,
                str(q.get("SendStatus", "")),
                str(q.get("SendSuccess", "")),
                str(q.get("SendFailed", "")),
            ]
        )
        return ParsedWebhook(
            statuses=[event], dedupe_key="esms:" + hashlib.sha256(key_src.encode()).hexdigest()[:40]
        )

    # ---- plumbing for the read APIs --------------------------------------------------------------
    def _decode(self, resp, what: str) -> dict:
        failure = self.http_status_failure(resp)
        if failure:
            raise ProviderError(failure.error_class, failure.error_code, failure.error_message)
        try:
            data = resp.json()
        except ValueError as exc:
            raise ProviderError(A, "bad_response", f"eSMS {what}: the body is not JSON.") from exc
        if not isinstance(data, dict):
            raise ProviderError(A, "bad_response", f"eSMS {what}: the body is not an object.")
        # CodeResult on most APIs, CodeResponse on GetSendStatus, Code on GetCallback.
        code = str(data.get("CodeResult", data.get("CodeResponse", data.get("Code", "100"))))
        if code != "100":
            klass, text = classify_esms(code)
            raise ProviderError(
                klass, code, data.get("ErrorMessage") or data.get("Message") or text
            )
        return data

    def _post(self, path: str, body: dict, *, bucket: str | None = None, base: str = "") -> dict:
        rate = (self.settings.get("rate_limits") or {}).get(bucket) if bucket else None
        resp = self.request(
            "POST",
            f"{(base or self.base_url).rstrip('/')}/{path}",
            json_body={**self._credentials(), **body},
            bucket=bucket,
            rate=rate,
            idempotent=True,  # every _post caller reads; asking twice changes nothing
        )
        return self._decode(resp, path.strip("/"))

    def _get(self, path: str, params: dict) -> dict:
        resp = self.request(
            "GET",
            f"{self.base_url}/{path}",
            params={**params, **self._credentials()},
            idempotent=True,
        )
        return self._decode(resp, path.strip("/"))

    # ---- reconciliation --------------------------------------------------------------------------
    def fetch_status(
        self,
        *,
        provider_message_id: str,
        idempotency_key: str,
        oa_id: str = "",
        channel_kind: str = "",
    ) -> StatusEvent | None:
        """QueryZnsStatus by SMSID (100 req/s), then GetCallback (20 req/s) when that has no
        data. Nothing here proves a message absent: 105 means "SMSID not found (too early after
        sending)" (providers.md §2.4), and eSMS offers no lookup by RequestId. A resend rests on
        the RequestId dedupe window alone (dedupes_idempotency_key above)."""
        if not provider_message_id:
            return StatusEvent.unproven(
                _g(
                    "eSMS gave no SMSID, and it offers no lookup by RequestId: the outcome "
                    "cannot be asked."
                ),
                idempotency_key=idempotency_key,
            )
        try:
            data = self._post(
                "QueryZnsStatus/",
                {
                    "SmsId": provider_message_id,
                    "SmsType": str(self.settings.get("zns_sms_type") or "25"),
                },
                bucket="query_zns_status",
            )
        except ProviderError as exc:
            if exc.code not in _NOT_FOUND_CODES:
                raise
            data = None
        if data is not None:
            event = status_from_query(data.get("Data") or {}, provider_message_id)
            if event is not None:
                event.idempotency_key = event.idempotency_key or idempotency_key
                return event
        events = self.fetch_callbacks(sms_ids=[provider_message_id], oa_id=oa_id)
        if events:
            return events[0]
        return StatusEvent.unproven(
            _g("eSMS has no status for this SMSID yet (QueryZnsStatus and GetCallback)."),
            provider_message_id=provider_message_id,
            idempotency_key=idempotency_key,
        )

    def fetch_callbacks(self, *, sms_ids: list[str], oa_id: str = "") -> list[StatusEvent]:
        """GetCallback: the callbacks eSMS sent (or tried to) for up to 200 SMSIDs per call; only
        for sends that had a CallbackUrl; 20 req/s (providers.md §2.5)."""
        events: list[StatusEvent] = []
        base = str(self.settings.get("status_base_url") or "https://status-sms.esms.vn")
        for start in range(0, len(sms_ids), 200):
            body = {"ListRefid": sms_ids[start : start + 200]}
            if oa_id:
                body["OAId"] = oa_id
            try:
                data = self._post(
                    "ZaloCallback/GetCallback", body, bucket="get_callback", base=base
                )
            except ProviderError as exc:
                if exc.code in _NOT_FOUND_CODES:
                    continue
                raise
            for row in data.get("Data_callback") or []:
                if isinstance(row, dict):
                    events.append(status_from_fields(row))
        return events

    # ---- OAs, quotas, templates -------------------------------------------------------------------
    def get_quota(self, *, oa_id: str) -> dict:
        """GetQuota: DailyQuota, RemainingQuota and the promotion quotas of one OA."""
        return self._post("ZNS/GetQuota/", {"OAID": oa_id})

    def list_official_accounts(self) -> list[dict]:
        data = self._post("ZNS/GetListZOA/", {})
        out = []
        for o in data.get("ZOAList") or []:
            oa = {
                "oa_id": str(o.get("OAID")),
                "name": o.get("OAName", ""),
                "quality": None,  # eSMS does not report OA quality
                "daily_quota": None,
                "remaining_quota": None,
            }
            try:
                quota = self.get_quota(oa_id=oa["oa_id"])
            except ProviderError:
                quota = {}  # an OA without quota data is still worth listing
            oa["daily_quota"] = zalo.to_int(quota.get("DailyQuota"))
            oa["remaining_quota"] = zalo.to_int(quota.get("RemainingQuota"))
            out.append(oa)
        return out

    def template_info(self, *, template_id: str, oa_id: str) -> dict:
        """GetZnsTemplateInfo: Zalo's template detail relayed (status, tag, params, buttons)."""
        data = self._get("GetZnsTemplateInfo", {"TemplateId": template_id, "OAId": oa_id})
        inner = data.get("Data") or data.get("data")
        return inner if isinstance(inner, dict) else data

    def list_templates(self, *, oa_id: str = "") -> list[dict]:
        """GetTemplate (templates registered at eSMS, with eSMS's parameter order), completed by
        GetZnsTemplateInfo (Zalo's status, tag, price, limits, buttons) for each."""
        oa_ids = [oa_id] if oa_id else [o["oa_id"] for o in self.list_official_accounts()]
        out = []
        for oa in oa_ids:
            data = self._post(
                "GetTemplate/",
                {"OAId": oa, "SmsType": str(self.settings.get("zns_sms_type") or "25")},
            )
            for tpl in data.get("ZNSTemplates") or []:
                out.append(self._template(tpl, oa))
        return out

    def _template(self, tpl: dict, oa_id: str) -> dict:
        template_id = str(tpl.get("TempId") or tpl.get("TempID") or "")
        params: dict[str, dict] = {}
        for i, p in enumerate(tpl.get("ZNSTempDetail") or []):
            name = str(p.get("Param") or "").strip()
            if not name:
                continue
            params[name] = {
                "name": name,
                "type": str(p.get("RequireType") or "type_text"),
                "required": True,
                "min_length": 0,
                "max_length": zalo.to_int(p.get("Limit")),
                # ParamLevel is eSMS's order: V4 sends Params by this position.
                "position": zalo.to_int(p.get("ParamLevel"), i) or i,
            }
        result = {
            "template_id": template_id,
            "name": str(tpl.get("TempName") or template_id),
            "status": "pending",
            "status_reason": "",
            "tag": "transaction",
            "price": None,
            "preview_url": "",
            "body": _content_to_body(str(tpl.get("TempContent") or ""), list(params)),
            "buttons": [],
            "oa_id": oa_id,
            "params": [],
            "channel_kind": "zalo_zns",
        }
        try:
            info = self.template_info(template_id=template_id, oa_id=oa_id)
        except ProviderError as exc:
            # Listed at eSMS but Zalo's status is unknown: keep it unusable until a later sync.
            info = {}
            result["status_reason"] = _g("Status not confirmed by Zalo: {error}").format(
                error=exc.message
            )
        if info:
            ci = {str(k).lower(): v for k, v in info.items()}
            result["status"] = zalo.template_status(ci.get("status"))
            result["tag"] = zalo.template_tag(ci.get("templatetag") or ci.get("tag"))
            result["price"] = zalo.to_decimal(ci.get("price"))
            result["preview_url"] = str(ci.get("previewurl") or "")
            result["buttons"] = list(ci.get("listbuttons") or [])
            result["status_reason"] = str(ci.get("reason") or ci.get("rejectreason") or "")
            for i, p in enumerate(ci.get("listparams") or []):
                pi = {str(k).lower(): v for k, v in p.items()}
                name = str(pi.get("name") or "").strip()
                if not name:
                    continue
                entry = params.setdefault(
                    name,
                    {
                        "name": name,
                        "type": "",
                        "required": True,
                        "min_length": 0,
                        "max_length": None,
                        "position": len(params) + i,
                    },
                )
                # Zalo's own limits are authoritative (exceeding them is -1121).
                if pi.get("type"):
                    entry["type"] = str(pi["type"])
                if "require" in pi:
                    entry["required"] = bool(pi["require"])
                if pi.get("maxlength") not in (None, ""):
                    entry["max_length"] = zalo.to_int(pi["maxlength"])
                if pi.get("minlength") not in (None, ""):
                    entry["min_length"] = zalo.to_int(pi["minlength"], 0) or 0
        result["params"] = sorted(params.values(), key=lambda p: p["position"])
        return result

    def test_connection(self) -> str:
        oas = self.list_official_accounts()
        return _g("Connected to eSMS: {n} Official Account(s) visible.").format(n=len(oas))


_TAG = re.compile(r"<[^>]+>")


def _content_to_body(content: str, param_names: list[str]) -> str:
    """TempContent is HTML with <param> placeholders (Zalo's convention): keep the placeholders
    as {{param}}, drop the markup."""
    if not content:
        return ""
    text = content
    for name in param_names:
        placeholder = "{{" + name + "}}"
        text = text.replace(f"&lt;{name}&gt;", placeholder).replace(f"<{name}>", placeholder)
    text = re.sub(r"(?i)<br\s*/?>|</p>|</div>", "\n", text)
    text = _TAG.sub("", text)
    return html.unescape(text).strip()
