"""The MMP adapter: sends (Broadcast Message, Send Mail), reconciliation (Get Message Status, Get
Batch Email Status), approved templates for the sync, and the connection test; VNA and Metfone as
two registry entries of the one platform. Its management API (replies, consent, channels,
templates, bulk campaigns) is the mixin in providers/mmp/manage.py; the API shapes it assumes come
from providers/mmp/assumed.py; the documented webhooks are read by providers/mmp/callbacks.py."""

from __future__ import annotations

import copy
import json
import re
from datetime import datetime
from typing import Any

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
    WebhookRequest,
)
from providers.errors import classify_http_status
from providers.mmp.assumed import (
    CAN_PROVE_ABSENCE,
    DEDUPES_CLIENT_MESSAGE_ID,
    DEFAULT_SETTINGS,
)
from providers.mmp.bodies import deep_merge, fill_path, pluck, render
from providers.mmp.callbacks import status_of, webhook_parse
from providers.mmp.channels import MmpChannelsMixin
from providers.mmp.manage import MmpManageMixin
from providers.mmp.templates import MmpTemplatesMixin
from providers.shared.phones import to_local

A, C = ErrorClass.AMBIGUOUS, ErrorClass.CONFIGURATION


class MmpProvider(MmpTemplatesMixin, MmpChannelsMixin, MmpManageMixin, BaseProvider):
    """The MMP platform. Subclasses set the kind, label and per-operator defaults."""

    kind = ""
    label = ""
    default_base_url = ""  # not public: the operator enters it (a guess would leak the API key)
    secret_fields = ("api_key",)
    channel_kinds = ("zalo_zns", "sms", "viber", "viber_bot", "rcs", "whatsapp", "email")
    dedupes_idempotency_key = DEDUPES_CLIENT_MESSAGE_ID
    can_prove_absence = CAN_PROVE_ABSENCE
    default_settings: dict[str, Any] = DEFAULT_SETTINGS

    def __init__(self, config):
        super().__init__(config)
        overrides = config.settings or {}
        self.settings = deep_merge(self.default_settings, overrides)
        # A body template is a shape, not a set of options: an account's template for one
        # operation replaces the default one entirely (other operations keep theirs).
        for name, body in (overrides.get("bodies") or {}).items():
            self.settings["bodies"][name] = copy.deepcopy(body)

    # ---- plumbing --------------------------------------------------------------------------------
    def _headers(self) -> dict:
        key = self.config.secrets.get("api_key", "")
        if not key:
            raise ProviderError(C, "missing_credentials", f"{self.label} needs the secret api_key.")
        header = str(self.settings.get("auth_header") or "Authorization")
        return {
            header: f"{self.settings.get('auth_prefix') or ''}{key}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        }

    def _url(self, operation: str, values: dict[str, Any]) -> tuple[str, str]:
        if not self.base_url:
            raise ProviderError(
                C, "missing_base_url", f"{self.label}: the base URL is not set on the account."
            )
        spec = (self.settings.get("api") or {}).get(operation)
        if not isinstance(spec, dict) or not spec.get("path"):
            raise ProviderError(C, "bad_settings", f"No path configured for MMP {operation!r}.")

        path = fill_path(str(spec["path"]), values)
        return str(spec.get("method") or "POST").upper(), f"{self.base_url}/{path.lstrip('/')}"

    def _body(self, name: str, values: dict[str, Any]) -> Any:
        template = (self.settings.get("bodies") or {}).get(name)
        if template is None:
            raise ProviderError(C, "bad_settings", f"No body template for MMP {name!r}.")
        return render(template, values)

    def _class_for(self, name: str | None, default: ErrorClass) -> ErrorClass:
        try:
            return ErrorClass(str(name)) if name else default
        except ValueError:
            return default

    def call(
        self,
        operation: str,
        values: dict[str, Any],
        *,
        body: str | None = None,
        send: bool = False,
        payload: Any = None,
    ) -> Any:
        """One MMP operation -> parsed JSON (or {} for an empty answer). Raises ProviderError.
        `payload` sends a body as given (template create/update) instead of a body template."""
        method, url = self._url(operation, values)
        if payload is None and method in ("POST", "PUT", "PATCH"):
            payload = self._body(body or operation, values)
        resp = self.request(
            method,
            url,
            json_body=payload,
            headers=self._headers(),
            bucket="send" if send else None,
            rate=self.config.rate_limit if send else None,
            idempotent=method in ("GET",) or operation in ("email_batch_status",),
        )
        try:
            data = resp.json() if resp.content else {}
        except ValueError:
            data = None
        responses = self.settings.get("responses") or {}
        if resp.status_code >= 400:
            vendor_code = pluck(data, responses.get("error_code", [])) if data else None
            text = pluck(data, responses.get("error_message", [])) if data else None
            mapped = (self.settings.get("error_codes") or {}).get(str(vendor_code))
            by_status = (self.settings.get("http_error_classes") or {}).get(str(resp.status_code))
            if resp.status_code == 429:
                default = ErrorClass.RETRYABLE
            else:
                default = classify_http_status(resp.status_code)
            klass = self._class_for(mapped or by_status, default)
            code = str(vendor_code) if mapped else f"http_{resp.status_code}"
            raise ProviderError(
                klass, code, str(text or f"{self.label} answered HTTP {resp.status_code}.")
            )
        if data is None:
            raise ProviderError(
                A, "bad_response", f"{self.label} answered with a body that is not JSON."
            )
        return data

    def _phone(self, phone: str) -> str:
        fmt = self.settings.get("phone_format")
        if fmt == "local":
            return to_local(phone)
        if fmt == "plus":
            return "+" + phone.lstrip("+")
        return phone.lstrip("+")

    def _values(self, message: OutboundMessage) -> dict[str, Any]:
        ordered = [str(message.template_data.get(n, "")) for n in message.param_order]
        return {
            "channel_id": message.channel_external_id,
            "client_message_id": message.idempotency_key,
            "phone": self._phone(message.phone) if message.phone else "",
            "template_id": message.template_id,
            "template_data": {k: str(v) for k, v in message.template_data.items()},
            "template_params": ordered,
            "content": message.content,
            "subject": message.subject,
            # A mapped parameter named by email_field wins; else the contact's address.
            "email": str(
                message.template_data.get(str(self.settings.get("email_field") or "email"), "")
                or message.email
            ),
            "email_from": self.settings.get("email_from") or "",
            "application_id": self._application_id(message),
            "channel_kind": message.channel_kind,
            "oa_id": message.oa_id,
            "test_mode": message.test_mode,
        }

    def _application_id(self, message: OutboundMessage) -> Any:
        """The channel's applicationId (Channel.settings, carried by the message), else the
        account's `application_ids` by kind: seed 000 documents 1 viber, 10 viber bot, 3 sms
        (VNA); seed 001 (Metfone) lists 1 and 10 only, so Metfone's 3 = sms is inferred."""
        if message.application_id is not None:
            return message.application_id
        return (self.settings.get("application_ids") or {}).get(message.channel_kind)

    # ---- sending (Broadcast Message / Send Mail) ---------------------------------------------------
    def send(self, message: OutboundMessage) -> SendResult:
        if message.channel_kind not in self.channel_kinds:
            return SendResult.failed(
                C, "unsupported_channel", f"{self.label} cannot send {message.channel_kind}."
            )
        values = self._values(message)
        if message.channel_kind == "email":
            if not values["email"]:
                return SendResult.failed(
                    ErrorClass.PERMANENT, "missing_recipient", "No email address for this contact."
                )
            operation, body = "email_send", "email_send"
        else:
            if not message.channel_external_id:
                return SendResult.failed(
                    C, "missing_channel", "The channel has no MMP publicId (provider channel id)."
                )
            operation = "broadcast"
            body = "broadcast_template" if message.template_id else "broadcast_text"
        try:
            data = self.call(operation, values, body=body, send=True)
        except ProviderError as exc:
            retry_after = 5.0 if exc.error_class == ErrorClass.RETRYABLE else None
            return SendResult.failed(
                exc.error_class,
                exc.code,
                exc.message,
                retry_after=retry_after,
                retry_at=_zalo_deferral(exc.error_class, exc.code),
            )
        return self._send_result(data)

    def _send_result(self, data: Any) -> SendResult:
        responses = self.settings.get("responses") or {}
        message_id = pluck(data, responses.get("message_id", []))
        if message_id not in (None, "") and not isinstance(message_id, dict | list):
            return SendResult.accepted(str(message_id), raw=data)
        vendor_code = pluck(data, responses.get("error_code", []))
        if vendor_code is not None and vendor_code not in responses.get("success_codes", []):
            mapped = (self.settings.get("error_codes") or {}).get(str(vendor_code))
            text = pluck(data, responses.get("error_message", []))
            # An error code we cannot place on a 2xx answer: pause and let a human look.
            klass = self._class_for(mapped, C)
            return SendResult.failed(
                klass,
                str(vendor_code),
                str(text or f"{self.label} refused the message ({vendor_code})."),
                raw=data,
                retry_at=_zalo_deferral(klass, vendor_code),
            )
        # 2xx without an id: accepted; its webhooks carry our clientMessageId (seed 000).
        return SendResult.accepted("", raw=data)

    # ---- reconciliation (Get Message Status / Get Batch Email Status) -------------------------------
    # Both operations are named in the table of contents (seeds 000, 001); their paths and shapes
    # are assumed (providers/mmp/assumed.py). No answer here can prove a message absent: what is
    # not a status we know is StatusEvent.unproven, with the reason a person reads.
    def fetch_status(
        self,
        *,
        provider_message_id: str,
        idempotency_key: str,
        oa_id: str = "",
        channel_kind: str = "",
    ) -> StatusEvent | None:
        if channel_kind == "email":
            return self._email_status(provider_message_id, idempotency_key)
        if not provider_message_id and not idempotency_key:
            return None
        values = {"message_id": provider_message_id, "client_message_id": idempotency_key}
        try:
            data = self.call("message_status", values)
        except ProviderError as exc:
            # The 404 rule (assumed.py, setting `unproven_http_statuses`): these statuses at
            # our assumed path say nothing about the message.
            unproven = {f"http_{s}" for s in self.settings.get("unproven_http_statuses") or []}
            if exc.code not in unproven:
                raise
            return StatusEvent.unproven(
                _g(
                    "Get Message Status answered HTTP {status} at {path}, a path Loa assumed (the "
                    "MMP documentation is not public): that proves nothing about this message."
                ).format(
                    status=exc.code.removeprefix("http_"),
                    path=self._url("message_status", values)[1].split("?")[0],
                ),
                provider_message_id=provider_message_id,
                idempotency_key=idempotency_key,
            )
        event = self._status_event(data, provider_message_id, idempotency_key)
        if event.status != EventStatus.UNKNOWN:
            return event
        return StatusEvent.unproven(
            _g("Get Message Status answered without a status Loa knows: {answer}").format(
                answer=json.dumps(data, ensure_ascii=False)[:200]
            ),
            provider_message_id=provider_message_id,
            idempotency_key=idempotency_key,
            raw=data,
        )

    def _email_status(self, message_id: str, key: str) -> StatusEvent:
        """An email's status from Get Batch Email Status (by the id Send Mail answered)."""
        if not message_id:
            return StatusEvent.unproven(
                _g(
                    "Send Mail gave no message id, and Get Batch Email Status asks by id: "
                    "there is nothing to look up."
                ),
                idempotency_key=key,
            )
        for event in self.email_batch_status(message_ids=[message_id]):
            if event.provider_message_id in ("", message_id):
                event.provider_message_id = message_id
                event.idempotency_key = key
                return event
        return StatusEvent.unproven(
            _g("Get Batch Email Status did not list this message with a status Loa knows."),
            provider_message_id=message_id,
            idempotency_key=key,
        )

    def _status_event(self, data: Any, message_id: str, key: str) -> StatusEvent:
        responses = self.settings.get("responses") or {}
        status = status_of(
            pluck(data, responses.get("status", [])), pluck(data, responses.get("cause", []))
        )
        found_id = pluck(data, responses.get("message_id", []))
        return StatusEvent(
            status,
            provider_message_id=str(found_id or message_id or ""),
            idempotency_key=key,
            error_code="mmp_fail" if status == EventStatus.FAILED else "",
            error_message=str(pluck(data, responses.get("cause", [])) or "")
            if status == EventStatus.FAILED
            else "",
            raw=data,
        )

    def email_batch_status(self, *, message_ids: list[str]) -> list[StatusEvent]:
        """Get Batch Email Status: the statuses we can map of these emails (others left out)."""
        data = self.call("email_batch_status", {"message_ids": list(message_ids)})
        responses = self.settings.get("responses") or {}
        rows = pluck(data, responses.get("items", []))
        rows = rows if isinstance(rows, list) else [data] if isinstance(data, dict) else []
        events = []
        for row in rows:
            if not isinstance(row, dict):
                continue
            raw_status = str(pluck(row, responses.get("status", [])) or "").upper()
            status = self._email_status_of(raw_status)
            if status == EventStatus.UNKNOWN:
                continue
            events.append(
                StatusEvent(
                    status,
                    provider_message_id=str(pluck(row, responses.get("message_id", [])) or ""),
                    error_code="mmp_fail" if status == EventStatus.FAILED else "",
                    error_message=raw_status if status == EventStatus.FAILED else "",
                    raw=row,
                )
            )
        return events

    def _email_status_of(self, raw: str) -> EventStatus:
        """An EmailStatus value through the `email_statuses` setting (assumed.py); a value it
        does not map, or maps to something that is not a status of ours, is UNKNOWN."""
        table = {str(k).upper(): v for k, v in (self.settings.get("email_statuses") or {}).items()}
        try:
            return EventStatus(str(table.get(raw) or EventStatus.UNKNOWN.value).lower())
        except ValueError:
            return EventStatus.UNKNOWN

    def list_templates(self, *, oa_id: str = "") -> list[dict]:
        """Get List Approved Template (ResponseListApproveTemplate). `oa_id` is the channel
        publicId here (MMP templates belong to a channel); empty = every channel the key sees."""
        data = self.call("template_list_approved", {"channel_id": oa_id})
        responses = self.settings.get("responses") or {}
        rows = pluck(data, responses.get("items", []))
        if not isinstance(rows, list):
            rows = []
        return [
            self._template(row, oa_id, self._kind_of(row)) for row in rows if isinstance(row, dict)
        ]

    # Channel names seen in the schema list (Viber, ViberBot, RCS, WhatsApp, SMS, Zalo, Email).
    _KIND_NAMES = {
        "VIBER": "viber",
        "VIBER_BOT": "viber_bot",
        "VIBERBOT": "viber_bot",
        "SMS": "sms",
        "RCS": "rcs",
        "WHATSAPP": "whatsapp",
        "ZALO": "zalo_zns",
        "ZNS": "zalo_zns",
        "EMAIL": "email",
    }

    def _kind_of(self, row: dict) -> str:
        """The channel kind a template belongs to: its channel type if the answer names one,
        else its applicationId through `application_ids`, else "" (unknown)."""
        ci = {str(k).lower(): v for k, v in row.items()}
        for key in ("channeltype", "channel_type", "channelkind", "application", "channel"):
            name = str(ci.get(key) or "").strip().upper().replace(" ", "_")
            if name in self._KIND_NAMES:
                return self._KIND_NAMES[name]
        app_id = zalo.to_int(ci.get("applicationid"))
        for kind, value in (self.settings.get("application_ids") or {}).items():
            if app_id is not None and zalo.to_int(value) == app_id:
                return kind
        return ""

    @staticmethod
    def _template(row: dict, oa_id: str, channel_kind: str = "") -> dict:
        ci = {str(k).lower(): v for k, v in row.items()}
        body = ci.get("content") or ci.get("body") or ci.get("text") or ""
        if isinstance(body, dict | list):
            body = json.dumps(body, ensure_ascii=False)
        names: list[str] = []
        for m in re.finditer(r"\{\{\s*([\w.]+)\s*\}\}", str(body)):
            if m.group(1) not in names:
                names.append(m.group(1))
        declared = ci.get("params") or ci.get("parameters") or []
        params = []
        if isinstance(declared, list) and declared:
            for i, p in enumerate(declared):
                name = p.get("name") if isinstance(p, dict) else p
                if name:
                    params.append(
                        {
                            "name": str(name),
                            "type": str((p.get("type") if isinstance(p, dict) else "") or "text"),
                            "required": bool(p.get("required", True))
                            if isinstance(p, dict)
                            else True,
                            "min_length": 0,
                            "max_length": zalo.to_int(p.get("maxLength"))
                            if isinstance(p, dict)
                            else None,
                            "position": i,
                        }
                    )
        else:
            params = [
                {
                    "name": n,
                    "type": "text",
                    "required": True,
                    "min_length": 0,
                    "max_length": None,
                    "position": i,
                }
                for i, n in enumerate(names)
            ]
        template_id = ci.get("publicid") or ci.get("id") or ci.get("templateid") or ""
        return {
            "template_id": str(template_id),
            "name": str(ci.get("name") or ci.get("templatename") or template_id),
            # The list is of approved templates by definition.
            "status": zalo.template_status(ci.get("status") or "APPROVED"),
            "status_reason": "",
            "tag": zalo.template_tag(ci.get("tag") or ci.get("category")),
            "price": zalo.to_decimal(ci.get("price")),
            "preview_url": str(ci.get("previewurl") or ""),
            "body": str(body),
            "buttons": list(ci.get("buttons") or []) if isinstance(ci.get("buttons"), list) else [],
            "oa_id": str(ci.get("channelid") or ci.get("publicidchannel") or oa_id),
            "params": params,
            "channel_kind": channel_kind,  # "" = unknown; templates_app keeps its own then
        }

    # ---- admin helpers -------------------------------------------------------------------------------
    def test_connection(self) -> str:
        channel = str(self.settings.get("test_channel_id") or "")
        if channel:
            self.channel_info(channel_id=channel)
            return _g("Connected to {label}: channel {channel} answered.").format(
                label=self.label, channel=channel
            )
        templates = self.list_templates()
        return _g("Connected to {label}: {n} approved template(s) visible.").format(
            label=self.label, n=len(templates)
        )

    def list_official_accounts(self) -> list[dict]:
        return []  # MMP channels are entered as Channels (publicId), not synced as Zalo OAs

    # ---- webhooks (seeds 000 and 001, exactly) -----------------------------------------------------
    def parse_webhook(self, request: WebhookRequest) -> ParsedWebhook:
        return webhook_parse(request, kind=self.kind)


class VnaMmpProvider(MmpProvider):
    kind = "vna_mmp"
    label = "VNA MMP (multi-channel)"
    # The VNA table of contents lists every operation, Zalo consent and Email included (seed 000).
    channel_kinds = ("zalo_zns", "sms", "viber", "viber_bot", "rcs", "whatsapp", "email")
    # Who each channel reaches (providers/reach.py): the seeds name no country; VNA is a
    # Vietnamese platform. Overridable per account: settings {"reach": {"sms": ["VN", "KH"]}}.
    reach = {
        "zalo_zns": reach_.ZALO,
        "sms": reach_.only("VN", source="assumed: VNA MMP is a Vietnamese platform", assumed=True),
        "viber": reach_.INTERNATIONAL_APP,
        "viber_bot": reach_.INTERNATIONAL_APP,
        "rcs": reach_.only("VN", source="assumed: the platform's country (Vietnam)", assumed=True),
        "whatsapp": reach_.INTERNATIONAL_APP,
        "email": reach_.EMAIL,
    }
    default_settings = deep_merge(MmpProvider.default_settings, {"phone_format": "international"})


class MetfoneMmpProvider(MmpProvider):
    kind = "metfone_mmp"
    label = "Metfone MMP (Cambodia, multi-channel)"
    # Metfone (Cambodia) documents Broadcast Message and Get Message Status only (seed 001); the
    # other operations are the same platform's and kept available. No Zalo in Cambodia.
    channel_kinds = ("sms", "viber", "viber_bot", "rcs", "whatsapp", "email")
    # Seed 001 is the "Metfone MMP API", Metfone a Cambodian operator: its SMS reaches Cambodian
    # phones; whether it reaches others the seed does not say (assumed: not). Overridable per
    # account: settings {"reach": {"sms": ["KH", "VN"]}} (providers/reach.py).
    reach = {
        "sms": reach_.only(
            "KH", source="seed 001 (Metfone, a Cambodian operator); others assumed", assumed=True
        ),
        "viber": reach_.INTERNATIONAL_APP,
        "viber_bot": reach_.INTERNATIONAL_APP,
        "rcs": reach_.only("KH", source="assumed: the platform's country (Cambodia)", assumed=True),
        "whatsapp": reach_.INTERNATIONAL_APP,
        "email": reach_.EMAIL,
    }
    default_settings = deep_merge(MmpProvider.default_settings, {"phone_format": "international"})


def _zalo_deferral(klass: ErrorClass, code: Any) -> datetime | None:
    """MMP's Zalo channel relays Zalo's refusals: a vendor code mapped to "deferred" that is one
    of Zalo's (quota, night window) waits until Zalo takes messages again."""
    return zalo.deferred_until(code) if klass == ErrorClass.DEFERRED else None
