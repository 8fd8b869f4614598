"""eTelecom Zalo Cloud API: ZNS sends (plain and journey), message status, reconciliation by
tracking_id, templates, OAs, webhook registration, and the webhooks eTelecom forwards.

Contract: seeds 002 (GetMessage) and 004 (SendZNS), providers.md §1. Every call is an HTTPS POST of
JSON to a Twirp-style endpoint `$BASE_URL.Zalo/<Method>` (note the dot: the service name is
appended to the base URL, e.g. https://api.etelecom.vn/v1/shop.Zalo/SendZNS), with
`Authorization: Bearer <key>`. Shop mode uses the shop's api_key with the /v1/shop base; partner
mode uses the shop_key (issued per shop to the partner) with the /v1/partner base. Errors come
back as Twirp's envelope {"code": "...", "msg": "..."} with a 4xx/5xx status.
"""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from django.utils.translation import gettext as _g

from providers import reach as reach_
from providers import zalo
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
from providers.errors import (
    TWIRP_CODES,
    classify_twirp,
    classify_zalo,
    zalo_code_in_text,
)
from providers.shared.phones import to_local

A, P, C = ErrorClass.AMBIGUOUS, ErrorClass.PERMANENT, ErrorClass.CONFIGURATION

# Answers that say a route is not there: a bare HTTP 404, or Twirp's `bad_route` / `not_found`
# (Twirp answers an unknown route with 404 bad_route).
_ROUTE_MISSING = {"http_404", "bad_route", "not_found"}

# Hosts: prod api.etelecom.vn, sandbox api-sandbox.etelecom.vn (Zalo-Cloud connection guide), dev
# api-dev.etelecom.vn (a Go client) — providers.md §1.1.
HOSTS = {
    "production": "https://api.etelecom.vn",
    "sandbox": "https://api-sandbox.etelecom.vn",
    "dev": "https://api-dev.etelecom.vn",
}
MODES = ("shop", "partner")
# The path before <mode>: the seeds disagree with each other and with working code.
# - seed 002 (GetMessage), its OpenAPI block: "POST /api/shop.Zalo/GetMessage HTTP/1.1";
# - seed 002, its curl, and seed 004 (SendZNS): "$BASE_URL.Zalo/GetMessage", "$BASE_URL.Zalo/SendZNS"
#   (the base URL is not given);
# - working public code calls https://api.etelecom.vn/v1/shop.Zalo/... (providers.md §1.1 [F]).
# [I] /v1 by default; the setting `path_prefix` ("v1" / "api") switches every call to the other.
PATH_PREFIXES = ("v1", "api")

# Message `status` (seeds 002/004: "Z: Mới tạo, P: Enable, N: Disable"): [I] eTop's tri-state —
# Z new/pending, P done/positive, N failed/negative (providers.md §1.3).
_RANK = {
    EventStatus.UNKNOWN: 0,
    EventStatus.SENT: 1,
    EventStatus.DELIVERED: 2,
    EventStatus.READ: 3,
    EventStatus.FAILED: 4,
}


def message_event(msg: dict) -> StatusEvent:
    """An eTelecom message object (SendZNS / GetMessage / ListMessages / [I] zl_oa_message
    webhook) -> one normalized status."""
    status = str(msg.get("status") or "").upper()
    delivery = str(msg.get("delivery_status") or "").lower()
    error_code = zalo.to_int(msg.get("error_code"), 0) or 0
    fee = message_fee(msg)
    common = dict(
        provider_message_id=str(msg.get("msg_id") or msg.get("id") or ""),
        idempotency_key=str(msg.get("tracking_id") or ""),
        raw=msg,
    )
    if error_code != 0 or status == "N":
        code = str(error_code) if error_code else "etelecom_N"
        text = str(msg.get("error_message") or "") or (
            classify_zalo(error_code)[1] if error_code else ""
        )
        return StatusEvent(
            EventStatus.FAILED,
            error_code=code,
            error_message=text[:500],
            occurred_at=zalo.iso_to_datetime(msg.get("updated_at")),
            **common,
        )
    # delivery_status: unknown / received / seen (seed 004).
    if delivery == "seen":
        return StatusEvent(
            EventStatus.READ,
            fee=fee,
            occurred_at=zalo.iso_to_datetime(msg.get("updated_at")),
            **common,
        )
    if delivery == "received":
        return StatusEvent(
            EventStatus.DELIVERED,
            fee=fee,
            occurred_at=zalo.iso_to_datetime(msg.get("delivery_time")),
            **common,
        )
    if status in ("P", "Z"):
        return StatusEvent(
            EventStatus.SENT,
            fee=fee,
            occurred_at=zalo.iso_to_datetime(msg.get("sent_time")),
            **common,
        )
    return StatusEvent(EventStatus.UNKNOWN, **common)


def message_fee(msg: dict) -> Decimal | None:
    """fee_main + fee_token (journey token fee) when `is_charged` (seed 002)."""
    if not msg.get("is_charged"):
        return None
    total = (zalo.to_decimal(msg.get("fee_main")) or Decimal(0)) + (
        zalo.to_decimal(msg.get("fee_token")) or Decimal(0)
    )
    return total if total else None


# The provider's own fallback (issue 19; providers.md §1.2, not a seed): the SendZNS answer
# "adds `enable_sms_on_zns_failure` (bool) and `sms{brandname,code,description,message,
# request_time,send_time,status,status_description,unicode}` (SMS fallback info)". Nothing says
# what `status` holds: assumed the message's own tri-state (Z new, P done, N failed, seed 002),
# read as Z = handed to the SMS network (sent), P = delivered, N = failed with `code`.
SMS_LEG_SUFFIX = ":sms"  # the leg's provider message id: the ZNS msg_id + this (assumed: no id)


def sms_leg_event(msg: dict) -> StatusEvent | None:
    """The `sms{...}` block of a message object -> the status of its SMS leg (leg=1), or None
    when the object has no such block (no fallback was asked, or none happened yet)."""
    block = msg.get("sms") if isinstance(msg, dict) else None
    if not isinstance(block, dict) or not block:
        return None
    status = str(block.get("status") or "").upper()
    code = zalo.to_int(block.get("code"), 0) or 0
    common = dict(
        provider_message_id=str(msg.get("msg_id") or msg.get("id") or "") + SMS_LEG_SUFFIX,
        idempotency_key=str(msg.get("tracking_id") or ""),  # step 0's key: legs finds the step
        raw=block,
        leg=1,
    )
    if status == "N" or code:
        text = str(block.get("status_description") or block.get("description") or "")
        return StatusEvent(
            EventStatus.FAILED,
            error_code=str(code) if code else "etelecom_sms_N",
            error_message=text[:500],
            occurred_at=zalo.iso_to_datetime(block.get("send_time") or block.get("request_time")),
            **common,
        )
    # The block has no fee of its own (assumed): a ZNS that failed is not charged, so what the
    # message object says it charged (is_charged, fee_main) is read as the SMS's fee.
    fee = message_fee(msg) if str(msg.get("status") or "").upper() == "N" else None
    if status == "P":
        return StatusEvent(
            EventStatus.DELIVERED,
            fee=fee,
            occurred_at=zalo.iso_to_datetime(block.get("send_time")),
            **common,
        )
    if status == "Z":
        return StatusEvent(
            EventStatus.SENT,
            fee=fee,
            occurred_at=zalo.iso_to_datetime(block.get("send_time") or block.get("request_time")),
            **common,
        )
    return None


def _looks_like_message(obj: Any) -> bool:
    return isinstance(obj, dict) and (
        "tracking_id" in obj
        or "delivery_status" in obj
        or ("msg_id" in obj and "status" in obj)
        or ("error_code" in obj and "oa_id" in obj)
    )


def find_messages(obj: Any, depth: int = 0) -> list[dict]:
    """Message objects inside an eTelecom webhook body, whatever envelope wraps them. The payload
    of `zl_oa_message` events is not documented (providers.md §1.5): [I] the GetMessage object,
    bare, wrapped in an envelope ({"data": ...}, {"entity": ..., "object": ...}) or a list."""
    if depth > 4:
        return []
    if _looks_like_message(obj):
        return [obj]
    found: list[dict] = []
    if isinstance(obj, dict):
        for value in obj.values():
            if isinstance(value, dict | list):
                found.extend(find_messages(value, depth + 1))
    elif isinstance(obj, list):
        for value in obj:
            found.extend(find_messages(value, depth + 1))
    return found


class EtelecomProvider(BaseProvider):
    kind = "etelecom"
    label = "eTelecom (Zalo ZNS)"
    default_base_url = ""  # derived from settings "mode" and "environment" (see base_url_for)
    secret_fields = ("api_key", "shop_key")
    channel_kinds = ("zalo_zns",)
    reach = {"zalo_zns": reach_.ZALO}  # Vietnamese phones only (providers/reach.py)
    # [I] eTelecom does not document refusing a repeated tracking_id: an ambiguous send is
    # reconciled with ListMessages(tracking_id) before anything else happens.
    dedupes_idempotency_key = False
    # ListMessages documents a tracking_id filter: its empty answer proves the message absent.
    can_prove_absence = True
    default_settings = {
        "mode": "shop",  # "shop": secret api_key + /v1/shop; "partner": secret shop_key + /v1/partner
        "environment": "production",  # or "sandbox" (api-sandbox.etelecom.vn) / "dev"
        "path_prefix": "v1",  # "api" = /api/shop.Zalo/... as seed 002's OpenAPI block writes it
        "sending_mode": "default",  # "tag3" = promotion over quota (whitelisted OAs only)
        "phone_format": "international",  # 84xxxxxxxxx as Zalo wants; "local" = 0xxxxxxxxx
        # Journey ZNS (SendZNSJourney): journey_id per account, or per message from template_data.
        "journey": False,
        "journey_id": "",
        "journey_id_field": "",
        # The provider's own SMS fallback (native_sms_fields): the SMS's brandname, "" = the
        # shop's default (assumed).
        "sms_brandname": "",
    }

    def __init__(self, config):
        super().__init__(config)
        self.base_url = self.base_url_for(config.base_url, self.settings)

    @staticmethod
    def base_url_for(override: str, settings: dict) -> str:
        """An explicit base URL wins (e.g. https://api.etelecom.vn/v1/shop); else host by
        environment + /<path_prefix>/<mode> (path_prefix "v1" by default, "api" as seed 002's
        OpenAPI block)."""
        if override:
            return override.rstrip("/")
        mode = str(settings.get("mode") or "shop").lower()
        host = HOSTS.get(
            str(settings.get("environment") or "production").lower(), HOSTS["production"]
        )
        prefix = str(settings.get("path_prefix") or "v1").strip("/").lower()
        prefix = prefix if prefix in PATH_PREFIXES else "v1"
        return f"{host}/{prefix}/{mode if mode in MODES else 'shop'}"

    @property
    def mode(self) -> str:
        """Partner when the settings say so or when the base URL is a partner one (its last
        path segment is `partner`, e.g. https://api.etelecom.vn/v1/partner): seed 002 says
        "Đối với các API sử dụng cho Partner thì API_KEY: <shop_key>" (for the partner APIs,
        API_KEY is the shop_key), so a call to the partner base never carries the shop's
        api_key, whatever `mode` says."""
        mode = str(self.settings.get("mode") or "shop").lower()
        if mode == "partner" or self._partner_base_url():
            return "partner"
        return "shop"

    def _partner_base_url(self) -> bool:
        path = urlsplit(self.config.base_url or "").path.rstrip("/")
        return path.rsplit("/", 1)[-1].lower() == "partner"

    def endpoint(self, method: str, service: str = "Zalo") -> str:
        # Twirp route appended with a dot: $BASE_URL.Zalo/SendZNS (providers.md §1.1).
        return f"{self.base_url}.{service}/{method}"

    def _headers(self) -> dict:
        # Seed 002: "Đối với các API sử dụng cho Shop thì API_KEY: <api_key>" and "Đối với các
        # API sử dụng cho Partner thì API_KEY: <shop_key>": the shop's api_key in shop mode,
        # the shop_key in partner mode (never the api_key, even when both are stored).
        name = "shop_key" if self.mode == "partner" else "api_key"
        key = self.config.secrets.get(name, "")
        if not key:
            raise ProviderError(
                C,
                "missing_credentials",
                f"eTelecom {self.mode} mode needs the secret {name!r}.",
            )
        # Content-Type is mandatory: without it eTelecom answers bad_route (providers.md §1.1).
        return {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    def call(
        self,
        method: str,
        body: dict,
        *,
        service: str = "Zalo",
        send: bool = False,
    ) -> dict:
        """One Twirp call. Raises ProviderError classified from the {code, msg} envelope."""
        resp = self.request(
            "POST",
            self.endpoint(method, service),
            json_body=body,
            headers=self._headers(),
            bucket="send" if send else None,
            rate=self.config.rate_limit if send else None,
            idempotent=not send,
        )
        try:
            data = resp.json()
        except ValueError:
            data = None
        if resp.status_code >= 400:
            if isinstance(data, dict) and data.get("code"):
                code = str(data["code"])
                msg = str(data.get("msg") or "")
                klass = classify_twirp(code, msg, resp.status_code)
                if code not in TWIRP_CODES and resp.status_code == 429:
                    klass = ErrorClass.RETRYABLE
                # A relayed Zalo refusal is reported as Zalo's code (a deferral then waits
                # until the time zalo.deferred_until gives for it).
                zalo_code = zalo_code_in_text(msg)
                raise ProviderError(klass, str(zalo_code) if zalo_code else code, msg or code)
            failure = self.http_status_failure(resp)
            if failure:
                raise ProviderError(failure.error_class, failure.error_code, failure.error_message)
            raise ProviderError(
                C, f"http_{resp.status_code}", f"eTelecom answered HTTP {resp.status_code}."
            )
        if not isinstance(data, dict):
            raise ProviderError(
                A, "bad_response", "eTelecom answered with a body that is not JSON."
            )
        return data

    # ---- sending -------------------------------------------------------------------------------
    def build_payload(self, message: OutboundMessage) -> tuple[str, dict]:
        """(method, body) for SendZNS or SendZNSJourney, field by field as seed 004 documents."""
        try:
            template_id = int(str(message.template_id).strip())
        except ValueError:
            raise ProviderError(
                C,
                "bad_template_id",
                f"eTelecom template ids are numbers, not {message.template_id!r}.",
            ) from None
        template_data = {k: str(v) for k, v in message.template_data.items()}
        phone = (
            to_local(message.phone)
            if self.settings.get("phone_format") == "local"
            else message.phone
        )
        body: dict = {
            "oa_id": str(message.oa_id),  # int64 serialized as a string
            "phone": phone,
            "template_id": template_id,  # int (seed 004: template_id integer)
            "template_data": template_data,  # all values strings
            "tracking_id": message.idempotency_key,  # ours, for reconciliation (seed 004)
        }
        if self.settings.get("journey"):
            field = str(self.settings.get("journey_id_field") or "")
            journey_id = (template_data.get(field) if field else "") or str(
                self.settings.get("journey_id") or ""
            )
            if field and field not in message.param_order:
                template_data.pop(field, None)
            if not journey_id:
                raise ProviderError(
                    P, "missing_journey_id", "Journey sending is on but journey_id is empty."
                )
            # SendZNSJourney: {oa_id, journey_id, phone, template_id, template_data, tracking_id}
            # (providers.md §1.4); no mode/sending_mode documented for it.
            body["journey_id"] = journey_id
            return "SendZNSJourney", body
        # sending_mode: "default" normal, "tag3" over quota (seed 004); working code always sends it.
        body["sending_mode"] = str(self.settings.get("sending_mode") or "default")
        if message.test_mode:
            # mode "development": test send, only to the app's or OA's administrators (seed 004).
            # Omitted otherwise (= "unknown", the normal mode).
            body["mode"] = "development"
        if message.fallback_sms is not None:
            body.update(self.native_sms_fields(message))
        return "SendZNS", body

    def native_sms_fields(self, message: OutboundMessage) -> dict:
        """The provider's own SMS fallback (issue 19), from the reference notes, not a seed:
        providers.md §1.2 names `enable_sms_on_zns_failure` (bool) and the answer's
        `sms{brandname, ..., message, ..., unicode}` block. How the request carries the SMS
        is not documented: assumed the flag plus an `sms` object with the answer block's own
        names (brandname from the account's setting `sms_brandname`, left out when empty:
        eTelecom's default brandname of the shop, assumed)."""
        sms = message.fallback_sms
        block: dict = {"message": sms.content, "unicode": bool(sms.unicode)}
        brandname = str(self.settings.get("sms_brandname") or "").strip()
        if brandname:
            block["brandname"] = brandname
        return {"enable_sms_on_zns_failure": True, "sms": block}

    def send(self, message: OutboundMessage) -> SendResult:
        if message.channel_kind not in self.channel_kinds:
            return SendResult.failed(
                C, "unsupported_channel", f"eTelecom adapter cannot send {message.channel_kind}."
            )
        try:
            method, body = self.build_payload(message)
            data = self.call(method, body, send=True)
        except ProviderError as exc:
            retry_after = 5.0 if exc.error_class == ErrorClass.RETRYABLE else None
            return SendResult.failed(
                exc.error_class,
                exc.code,
                exc.message,
                retry_after=retry_after,
                retry_at=zalo.deferred_until(exc.code),
            )
        # The answer is the message object (seed 004). A Zalo refusal may come back here as
        # status N with Zalo's error_code ([I] providers.md §1.3).
        error_code = zalo.to_int(data.get("error_code"), 0) or 0
        leg = sms_leg_event(data) if message.fallback_sms is not None else None
        if error_code or str(data.get("status") or "").upper() == "N":
            if error_code:
                klass, text = classify_zalo(error_code)
            else:
                klass, text = P, _g("eTelecom marked the message as failed without a reason.")
            result = SendResult.failed(
                klass,
                error_code or "etelecom_N",
                str(data.get("error_message") or text),
                raw=data,
                retry_at=zalo.deferred_until(error_code),
            )
            if leg is not None:
                # The ZNS failed and eTelecom sent the SMS itself: the step's row records it.
                result.legs = [leg]
            return result
        msg_id = str(data.get("msg_id") or data.get("id") or "")
        result = SendResult.accepted(msg_id, raw=data, fee=message_fee(data))
        if leg is not None:
            result.legs = [leg]
        return result

    # ---- reconciliation --------------------------------------------------------------------------
    def get_message(self, *, oa_id: str, msg_id: str) -> dict:
        """GetMessage {oa_id, msg_id} -> the message object (seed 002)."""
        return self.call("GetMessage", {"oa_id": str(oa_id), "msg_id": str(msg_id)})

    def fetch_status(
        self,
        *,
        provider_message_id: str,
        idempotency_key: str,
        oa_id: str = "",
        channel_kind: str = "",
    ) -> StatusEvent | None:
        """GetMessage when we know the message id (seed 002); ListMessages by tracking_id
        otherwise, or when GetMessage does not know the id (providers.md §1.4)."""
        if provider_message_id and oa_id:
            try:
                msg = self.get_message(oa_id=oa_id, msg_id=provider_message_id)
                event = message_event(msg)
                event.idempotency_key = event.idempotency_key or idempotency_key
                leg = sms_leg_event(msg)
                if leg is not None:
                    leg.idempotency_key = leg.idempotency_key or idempotency_key
                    event.legs = [leg]
                return event
            except ProviderError as exc:
                if exc.code in ("http_404", "bad_route"):
                    # GetMessage is seed 002's, but the path before it is assumed (/v1 or
                    # /api, path_prefix): a missing route is not a missing message.
                    return StatusEvent.unavailable(
                        _g(
                            "Reconciliation is unavailable for this account: GetMessage answered "
                            "{code} at {url}. Seed 002 shows the path /api/shop.Zalo/GetMessage "
                            "and Loa assumes /v1 (setting path_prefix). The message stays unknown "
                            "until a person decides."
                        ).format(code=exc.code, url=self.endpoint("GetMessage")),
                        provider_message_id=provider_message_id,
                        idempotency_key=idempotency_key,
                    )
                if exc.code != "not_found" or not idempotency_key:
                    raise
        if not idempotency_key:
            return None
        return self._status_by_tracking_id(provider_message_id, idempotency_key, oa_id)

    def _status_by_tracking_id(self, message_id: str, key: str, oa_id: str) -> StatusEvent:
        """ListMessages filtered by our tracking_id. eTelecom documents the filter (providers.md
        §1.4, docs.etelecom.vn get-message-list), so an answer in its shape with no message is
        its "no message with this tracking_id": StatusEvent.absent. What proves nothing (and
        leaves the message `unknown`, visible, for a person): a 404 (bare or Twirp bad_route:
        the route is not at our inferred base URL, providers.md §1.1; StatusEvent.unavailable,
        and the account page says reconciliation is unavailable), any other error, an answer
        not in the documented shape, or other messages than ours (the filter was not applied)."""
        flt = {"tracking_id": key, **({"oa_id": str(oa_id)} if oa_id else {})}
        try:
            data = self.call("ListMessages", {"filter": flt, "paging": {"limit": 10}})
        except ProviderError as exc:
            if exc.code in _ROUTE_MISSING:
                # ListMessages is in no seed (seeds 002 and 004 document GetMessage and
                # SendZNS; ListMessages is providers.md §1.4), and its URL is built on our
                # inferred base (path_prefix): a 404 says the route is not there, not that
                # the message is absent, and no setting of the campaign can fix it. The
                # message stays `unknown`, visible; the account page says why.
                return StatusEvent.unavailable(
                    _g(
                        "Reconciliation is unavailable for this account: ListMessages answered "
                        "{code} at {url}. It is not in the eTelecom pages Loa follows (seeds 002 "
                        "and 004), so its path is assumed; a send that returned no message id "
                        "cannot be looked up. The message stays unknown until a person decides."
                    ).format(code=exc.code, url=self.endpoint("ListMessages")),
                    provider_message_id=message_id,
                    idempotency_key=key,
                )
            return StatusEvent.unproven(
                _g("ListMessages by tracking_id failed ({code}: {text}).").format(
                    code=exc.code, text=exc.message
                ),
                provider_message_id=message_id,
                idempotency_key=key,
            )
        event = self._list_messages_event(data, message_id, key)
        if isinstance(data.get("messages"), list) or isinstance(data.get("paging"), dict):
            event.lookup_note = ""  # answered in its shape: the lookup works at this account
        return event

    def _list_messages_event(self, data: dict, message_id: str, key: str) -> StatusEvent:
        """A ListMessages answer about our tracking_id -> one event (see _status_by_tracking_id)."""
        listed = data.get("messages")
        if "messages" not in data and isinstance(data.get("paging"), dict):
            listed = []  # protobuf JSON leaves an empty list out; the paging says it is a list
        if not isinstance(listed, list):
            return StatusEvent.unproven(
                _g("ListMessages answered without a list of messages."),
                provider_message_id=message_id,
                idempotency_key=key,
                raw=data,
            )
        ours = [m for m in listed if isinstance(m, dict) and str(m.get("tracking_id")) == key]
        if not listed:
            return StatusEvent.absent(provider_message_id=message_id, idempotency_key=key)
        if not ours:
            return StatusEvent.unproven(
                _g(
                    "ListMessages answered other messages than the one asked for (its "
                    "tracking_id filter was not applied): that proves nothing about this one."
                ),
                provider_message_id=message_id,
                idempotency_key=key,
            )
        # Several rows for one tracking_id would mean a duplicate send: report the furthest one.
        best_msg, best = max(
            ((m, message_event(m)) for m in ours), key=lambda pair: _RANK.get(pair[1].status, 0)
        )
        best.idempotency_key = key
        leg = sms_leg_event(best_msg)  # the provider's own SMS fallback of that message
        if leg is not None:
            leg.idempotency_key = leg.idempotency_key or key
            best.legs = [leg]
        return best

    # ---- templates, OAs, webhooks ----------------------------------------------------------------
    def list_templates(self, *, oa_id: str = "") -> list[dict]:
        out: list[dict] = []
        after = ""
        for _page in range(200):  # a cursor loop with a hard stop
            flt = {"oa_id": str(oa_id)} if oa_id else {}
            paging: dict = {"limit": 100}
            if after:
                paging["after"] = after
            data = self.call("ListTemplates", {"filter": flt, "paging": paging})
            for tpl in data.get("templates") or []:
                if isinstance(tpl, dict):
                    out.append(self._template(tpl, oa_id))
            after = str((data.get("paging") or {}).get("next") or "")
            if not after or not data.get("templates"):
                break
        return out

    @staticmethod
    def _template(tpl: dict, oa_id: str) -> dict:
        params = []
        for i, p in enumerate(tpl.get("template_params") or []):
            if not isinstance(p, dict) or not p.get("name"):
                continue
            params.append(
                {
                    "name": str(p["name"]),
                    "type": str(p.get("type") or ""),
                    "required": bool(p.get("require", True)),
                    "min_length": zalo.to_int(p.get("min_length"), 0) or 0,
                    "max_length": zalo.to_int(p.get("max_length")),
                    "position": i,
                }
            )
        status = zalo.template_status(tpl.get("template_status") or tpl.get("status"))
        return {
            "template_id": str(tpl.get("template_id") or ""),
            "name": str(tpl.get("template_name") or tpl.get("name") or tpl.get("template_id")),
            "status": status,
            "status_reason": str(tpl.get("reason") or tpl.get("reject_reason") or ""),
            "tag": zalo.template_tag(tpl.get("template_tag")),
            "price": zalo.to_decimal(tpl.get("price")),
            "preview_url": str(tpl.get("preview_url") or ""),
            "body": "",  # Zalo gives a preview page, not the text
            "buttons": list(tpl.get("buttons") or []),
            "oa_id": str(tpl.get("oa_id") or oa_id),
            "params": params,
            "channel_kind": "zalo_zns",
        }

    def list_official_accounts(self) -> list[dict]:
        data = self.call("ListOA", {})
        out = []
        for oa in data.get("accounts") or data.get("oas") or []:
            if not isinstance(oa, dict) or not oa.get("oa_id"):
                continue
            quality = str(oa.get("current_quality") or oa.get("quality") or "").upper()
            out.append(
                {
                    "oa_id": str(oa["oa_id"]),
                    "name": str(oa.get("name") or oa["oa_id"]),
                    "quality": quality
                    if quality in ("HIGH", "MEDIUM", "LOW", "UNDEFINED")
                    else None,
                    "daily_quota": zalo.to_int(oa.get("daily_quota")),
                    "remaining_quota": zalo.to_int(oa.get("remaining_quota")),
                }
            )
        return out

    def update_oa_webhook(self, *, oa_id: str, webhook_url: str) -> dict:
        """UpdateShopOA {oa_id, webhook_url}: where eTelecom forwards the OA's Zalo events (an
        empty URL unregisters) — providers.md §1.4."""
        return self.call("UpdateShopOA", {"oa_id": str(oa_id), "webhook_url": webhook_url})

    def register_webhooks(self, *, oa_ids: list[str]) -> list[str]:
        """Point every OA's forwarded Zalo events at this account's webhook URL."""
        done = []
        for oa_id in oa_ids:
            self.update_oa_webhook(oa_id=oa_id, webhook_url=self.config.webhook_url)
            done.append(oa_id)
        return done

    def test_connection(self) -> str:
        oas = self.list_official_accounts()
        return _g("Connected to eTelecom ({mode} mode): {n} Official Account(s) visible.").format(
            mode=self.mode, n=len(oas)
        )

    # ---- webhooks --------------------------------------------------------------------------------
    def parse_webhook(self, request: WebhookRequest) -> ParsedWebhook:
        if request.method != "POST":
            return ParsedWebhook(ignored_reason="eTelecom sends POST callbacks only")
        try:
            data = json.loads(request.body or b"")
        except (ValueError, UnicodeDecodeError) as exc:
            raise WebhookRejected("Body is not JSON") from exc
        if isinstance(data, dict) and data.get("event_name"):
            # A Zalo OA event forwarded through UpdateShopOA.webhook_url (providers.md §1.5/§4.7):
            # signed with the OA secret when we hold it.
            zalo.verify_event_signature(
                headers=request.headers,
                raw_body=request.body,
                data=data,
                oa_secrets=self.config.oa_secrets,
            )
            return zalo.parse_event(data)
        messages = find_messages(data)
        if not messages:
            return ParsedWebhook(ignored_reason="No message object in this eTelecom event")
        events = [message_event(m) for m in messages]
        events += [leg for leg in map(sms_leg_event, messages) if leg is not None]
        key_src = json.dumps(
            [
                [
                    m.get("id"),
                    m.get("msg_id"),
                    m.get("tracking_id"),
                    m.get("status"),
                    m.get("delivery_status"),
                    m.get("error_code"),
                    m.get("updated_at"),
                    # The SMS leg's status moves on its own (provider-native fallback).
                    (m.get("sms") or {}).get("status") if isinstance(m.get("sms"), dict) else None,
                ]
                for m in messages
            ],
            default=str,
        )
        return ParsedWebhook(
            statuses=events,
            dedupe_key="etelecom:" + hashlib.sha256(key_src.encode()).hexdigest()[:40],
        )
