"""VNA MMP and Metfone MMP: one multi-channel messaging platform (Zalo, SMS, Viber, Viber bot, RCS,
WhatsApp, email) sold by two operators. One module, two registry entries with their own defaults.

What is known (seeds 000 and 001, providers.md §3): the table of contents of the API (Broadcast
Message, Get Message Status, templates, Send Conversation Message, Zalo consent, channel
information/status/summary, Email, Bulk Campaign), the schema names, and the two webhook payloads
(broadcast status and conversation message), reproduced exactly below.

What is NOT public: base URL, auth header, paths and request/response bodies. Everything we had to
assume lives in ONE place, `MmpProvider.default_settings` (see ASSUMED_API, ASSUMED_BODIES,
ASSUMED_RESPONSES), and every part of it can be overridden per account through the account's
settings JSON, deep-merged over the defaults (a body template given for one operation replaces
that operation's default body), e.g.

    {"auth_header": "x-api-key", "auth_prefix": "",
     "api": {"broadcast": {"path": "/v2/broadcast"}},
     "bodies": {"broadcast_template": {"channel": "{{channel_id}}", "to": ["{{phone}}"], ...}},
     "responses": {"message_id": ["result.id"]}}

Bodies are JSON templates: a string that is exactly "{{name}}" becomes the value itself (object,
list, number), "{{name}}" inside a longer string is substituted as text, and keys whose value
renders to null are dropped. docs/PROVIDERS.md lists the placeholders and every assumption, so an
operator holding the vendor's specification can adjust them without a code change.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import uuid
from typing import Any
from urllib.parse import quote

from django.utils.translation import gettext as _g

from providers import zalo
from providers.base import (
    BaseProvider,
    ErrorClass,
    EventStatus,
    InboundEvent,
    OutboundMessage,
    ParsedWebhook,
    ProviderError,
    SendResult,
    StatusEvent,
    WebhookRejected,
    WebhookRequest,
)
from providers.errors import NOT_FOUND, classify_http_status
from providers.phones import to_local

A, C = ErrorClass.AMBIGUOUS, ErrorClass.CONFIGURATION

# ---- [ASSUMED] everything below until the class is inferred; override per account -------------
# Paths may hold {placeholders} (URL-encoded when filled). Method + path per operation.
ASSUMED_API: dict[str, dict[str, str]] = {
    "broadcast": {"method": "POST", "path": "/api/v1/channel/broadcast"},
    "message_status": {
        "method": "GET",
        "path": "/api/v1/message/status?messageId={message_id}&clientMessageId={client_message_id}",
    },
    "conversation_send": {"method": "POST", "path": "/api/v1/channel/conversation"},
    "channel_info": {"method": "GET", "path": "/api/v1/channel/{channel_id}"},
    "channel_status": {"method": "GET", "path": "/api/v1/channel/{channel_id}/status"},
    "channel_summary": {"method": "GET", "path": "/api/v1/summary/channel/{channel_id}"},
    "zalo_consent_check": {
        "method": "GET",
        "path": "/api/v1/channel/zalo/consent?publicId={channel_id}&phone={phone}",
    },
    "zalo_consent_request": {"method": "POST", "path": "/api/v1/channel/zalo/consent"},
    "template_create": {"method": "POST", "path": "/api/v1/template"},
    "template_get": {"method": "GET", "path": "/api/v1/template/{template_id}"},
    "template_update": {"method": "POST", "path": "/api/v1/template/{template_id}"},
    "template_list_approved": {
        "method": "GET",
        "path": "/api/v1/template/approved?publicId={channel_id}",
    },
    "template_delete": {"method": "DELETE", "path": "/api/v1/template/{template_id}"},
    "email_send": {"method": "POST", "path": "/api/v1/email/send"},
    "email_batch_status": {"method": "POST", "path": "/api/v1/email/status"},
    "bulk_campaign_list": {"method": "GET", "path": "/api/v1/bulk-campaign"},
    "bulk_campaign_broadcast": {"method": "POST", "path": "/api/v1/bulk-campaign/broadcast"},
    "bulk_contact_message": {"method": "POST", "path": "/api/v1/bulk-campaign/contact"},
}

# Request bodies, named after the schemas in the table of contents (SendMessageBroadcast,
# TemplateMessage, BroadcastSubscriberMessage, TextMessage, ZaloRequestConsentRequest,
# BulkCampaignBroadcastRequest, BulkCampaignContact). Field names are assumptions, except
# clientMessageId and publicId/channelId which appear in the webhook payloads.
ASSUMED_BODIES: dict[str, Any] = {
    "broadcast_template": {
        "publicId": "{{channel_id}}",
        "applicationId": "{{application_id}}",
        "clientMessageId": "{{client_message_id}}",
        "message": {
            "type": "template",
            "template": {"publicId": "{{template_id}}", "params": "{{template_data}}"},
        },
        "subscribers": [{"phone": "{{phone}}", "clientMessageId": "{{client_message_id}}"}],
    },
    "broadcast_text": {
        "publicId": "{{channel_id}}",
        "applicationId": "{{application_id}}",
        "clientMessageId": "{{client_message_id}}",
        "message": {"type": "text", "text": "{{content}}"},
        "subscribers": [{"phone": "{{phone}}", "clientMessageId": "{{client_message_id}}"}],
    },
    "conversation_send": {
        "publicId": "{{channel_id}}",
        "to": "{{conversation_id}}",
        "clientMessageId": "{{client_message_id}}",
        "message": {"type": "text", "text": "{{text}}"},
    },
    "zalo_consent_request": {"publicId": "{{channel_id}}", "phone": "{{phone}}"},
    "email_send": {
        "from": "{{email_from}}",
        "to": ["{{email}}"],
        "subject": "{{subject}}",
        "html": "{{content}}",
        "clientMessageId": "{{client_message_id}}",
    },
    "email_batch_status": {"ids": "{{message_ids}}"},
    "bulk_campaign_broadcast": {
        "name": "{{name}}",
        "publicId": "{{channel_id}}",
        "applicationId": "{{application_id}}",
        "template": {"publicId": "{{template_id}}"},
        "contacts": "{{contacts}}",
    },
    "bulk_contact_message": {"bulkCampaignId": "{{bulk_campaign_id}}", "contacts": "{{contacts}}"},
    # One element of {{contacts}} (BulkCampaignContact).
    "bulk_contact": {
        "phone": "{{phone}}",
        "clientMessageId": "{{client_message_id}}",
        "params": "{{template_data}}",
    },
}

# Where to read things in the answers: candidate dotted paths, first hit wins.
ASSUMED_RESPONSES: dict[str, Any] = {
    "message_id": [
        "messageId",
        "data.messageId",
        "data.0.messageId",
        "data.messages.0.messageId",
        "result.messageId",
        "publicId",
        "data.publicId",
        "id",
        "data.id",
    ],
    "status": ["status", "data.status", "data.0.status"],
    "cause": ["cause", "data.cause", "data.0.cause"],
    "error_code": ["errorCode", "error.code", "code"],
    "error_message": ["errorMessage", "error.message", "message", "msg"],
    # Values of error_code that mean success.
    "success_codes": [0, 200, 201, "0", "200", "201", "OK", "ok", "SUCCESS", "success"],
    "items": ["data.items", "data.content", "data", "items", "content", "result", "templates"],
    "bulk_campaign_id": ["bulkCampaignId", "data.bulkCampaignId", "id", "data.id"],
}

# Documented by the seeds (not assumed): webhook `status` 1 PENDING 2 SENT 3 FAIL 4 DELIVERED
# 5 READ, and `cause` READ / DELIVERED / FAIL / SEND.
STATUS_CODES = {
    1: EventStatus.SENT,  # PENDING at the platform: accepted, not yet handed to the channel
    2: EventStatus.SENT,
    3: EventStatus.FAILED,
    4: EventStatus.DELIVERED,
    5: EventStatus.READ,
}
CAUSES = {
    "READ": EventStatus.READ,
    "DELIVERED": EventStatus.DELIVERED,
    "FAIL": EventStatus.FAILED,
    "FAILED": EventStatus.FAILED,
    "SEND": EventStatus.SENT,
    "SENT": EventStatus.SENT,
    "PENDING": EventStatus.SENT,
}
# [I] EmailStatus (schema named, values unknown): the usual vocabulary.
EMAIL_STATUSES = {
    "SENT": EventStatus.SENT,
    "QUEUED": EventStatus.SENT,
    "PENDING": EventStatus.SENT,
    "PROCESSING": EventStatus.SENT,
    "DELIVERED": EventStatus.DELIVERED,
    "SUCCESS": EventStatus.DELIVERED,
    "OPENED": EventStatus.READ,
    "OPEN": EventStatus.READ,
    "READ": EventStatus.READ,
    "CLICKED": EventStatus.READ,
    "FAILED": EventStatus.FAILED,
    "FAIL": EventStatus.FAILED,
    "BOUNCED": EventStatus.FAILED,
    "BOUNCE": EventStatus.FAILED,
    "REJECTED": EventStatus.FAILED,
    "DROPPED": EventStatus.FAILED,
    "COMPLAINED": EventStatus.FAILED,
}

_PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")
_PATH_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


def deep_merge(base: dict, override: dict) -> dict:
    """Defaults overridden key by key, recursively: {"api": {"broadcast": {"path": ...}}} changes
    one path and keeps the other operations' defaults."""
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def render(template: Any, values: dict[str, Any]) -> Any:
    """Fill a JSON body template (see the module docstring)."""
    if isinstance(template, dict):
        out = {}
        for key, value in template.items():
            rendered = render(value, values)
            if rendered is not None:
                out[key] = rendered
        return out
    if isinstance(template, list):
        return [render(v, values) for v in template]
    if isinstance(template, str):
        whole = _PLACEHOLDER.fullmatch(template.strip())
        if whole:
            return _value(whole.group(1), values)

        def text(m: re.Match) -> str:
            value = _value(m.group(1), values)
            return "" if value is None else str(value)

        return _PLACEHOLDER.sub(text, template)
    return template


def _value(name: str, values: dict[str, Any]) -> Any:
    if name not in values:
        raise ProviderError(
            C, "bad_settings", f"Unknown placeholder {{{{{name}}}}} in the MMP settings."
        )
    return values[name]


def pluck(data: Any, paths: list[str] | str) -> Any:
    """The first value found at one of the dotted paths ("data.0.messageId")."""
    for path in [paths] if isinstance(paths, str) else paths:
        node = data
        ok = True
        for part in str(path).split("."):
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                ok = False
                break
        if ok and node is not None:
            return node
    return None


def status_of(status: Any, cause: Any) -> EventStatus:
    """Status 1..5 first (documented enum), the cause string otherwise; unknown -> UNKNOWN."""
    code = zalo.to_int(status)
    if code in STATUS_CODES:
        return STATUS_CODES[code]
    if isinstance(status, str) and status.strip().upper() in CAUSES:
        return CAUSES[status.strip().upper()]
    return CAUSES.get(str(cause or "").strip().upper(), EventStatus.UNKNOWN)


class MmpProvider(BaseProvider):
    """The MMP platform. Subclasses set the kind, label and per-operator defaults."""

    kind = ""
    label = ""
    default_base_url = ""  # not public: the operator enters it (a guess would leak the API key)
    secret_fields = ("api_key",)
    channel_kinds = ("zalo_zns", "sms", "viber", "viber_bot", "rcs", "whatsapp", "email")
    # [I] Deduplication of clientMessageId is not documented: reconcile before any resend.
    dedupes_idempotency_key = False
    default_settings: dict[str, Any] = {
        # [ASSUMED] "Create a new API key" exists (CreateAPIKeyRequest); the header is not public.
        "auth_header": "Authorization",
        "auth_prefix": "Bearer ",
        "api": ASSUMED_API,
        "bodies": ASSUMED_BODIES,
        "responses": ASSUMED_RESPONSES,
        # applicationId (webhook payloads): 1 viber, 10 viber bot, 3 sms (seed 000). Others unknown.
        "application_ids": {"viber": 1, "viber_bot": 10, "sms": 3},
        # HTTP status -> class when the body says nothing we understand; overridable per status.
        "http_error_classes": {},
        # Vendor error code (from responses.error_code) -> class name, e.g. {"INVALID_PHONE": "permanent"}.
        "error_codes": {},
        "phone_format": "international",  # digits with country code; "plus" = +...; "local" = 0...
        "email_field": "email",  # template_data key holding an email recipient's address
        "email_from": "",
        "test_channel_id": "",  # channel publicId used by "Test connection" (optional)
    }

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

        def fill(m: re.Match) -> str:
            value = _value(m.group(1), values)
            return quote("" if value is None else str(value), safe="")

        path = _PATH_PLACEHOLDER.sub(fill, str(spec["path"]))
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
            "email": str(
                message.template_data.get(str(self.settings.get("email_field") or "email"), "")
            ),
            "email_from": self.settings.get("email_from") or "",
            "application_id": (self.settings.get("application_ids") or {}).get(
                message.channel_kind
            ),
            "channel_kind": message.channel_kind,
            "oa_id": message.oa_id,
            "test_mode": message.test_mode,
        }

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
                exc.error_class, exc.code, exc.message, retry_after=retry_after
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
            return SendResult.failed(
                self._class_for(mapped, C),
                str(vendor_code),
                str(text or f"{self.label} refused the message ({vendor_code})."),
                raw=data,
            )
        # 2xx without an id: accepted; its webhooks carry our clientMessageId (seed 000).
        return SendResult.accepted("", raw=data)

    # ---- reconciliation (Get Message Status / Get Batch Email Status) -------------------------------
    def fetch_status(
        self, *, provider_message_id: str, idempotency_key: str, oa_id: str = ""
    ) -> StatusEvent | None:
        if not provider_message_id and not idempotency_key:
            return None
        values = {"message_id": provider_message_id, "client_message_id": idempotency_key}
        try:
            data = self.call("message_status", values)
        except ProviderError as exc:
            if exc.code != "http_404":
                raise
            data = None
        if data is not None:
            event = self._status_event(data, provider_message_id, idempotency_key)
            if event.status != EventStatus.UNKNOWN:
                return event
        if provider_message_id:
            # Not a channel message: maybe an email (Get Batch Email Status).
            emails = self.email_batch_status(message_ids=[provider_message_id])
            if emails:
                emails[0].idempotency_key = idempotency_key
                return emails[0]
        return StatusEvent(
            EventStatus.UNKNOWN,
            provider_message_id=provider_message_id,
            idempotency_key=idempotency_key,
            error_code=NOT_FOUND,
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
        try:
            data = self.call("email_batch_status", {"message_ids": list(message_ids)})
        except ProviderError as exc:
            if exc.code == "http_404":
                return []
            raise
        responses = self.settings.get("responses") or {}
        rows = pluck(data, responses.get("items", []))
        rows = rows if isinstance(rows, list) else [data] if isinstance(data, dict) else []
        events = []
        for row in rows:
            if not isinstance(row, dict):
                continue
            raw_status = str(pluck(row, responses.get("status", [])) or "").upper()
            status = EMAIL_STATUSES.get(raw_status, EventStatus.UNKNOWN)
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

    # ---- conversation, consent, channels --------------------------------------------------------------
    def send_conversation_message(
        self, *, channel_id: str, conversation_id: str, text: str, client_message_id: str = ""
    ) -> str:
        """Send Conversation Message: reply in a conversation opened by an inbound message (the
        `from` of the conversation webhook). Returns the platform's message id ("" if none)."""
        if not channel_id or not conversation_id or not text.strip():
            raise ProviderError(
                C, "bad_settings", "A reply needs the channel, the conversation and a text."
            )
        # An admin reply is sent once, by a person: a fresh id each time (never a retry).
        client_id = client_message_id or f"reply-{uuid.uuid4().hex}"
        data = self.call(
            "conversation_send",
            {
                "channel_id": channel_id,
                "conversation_id": conversation_id,
                "text": text,
                "client_message_id": client_id,
            },
        )
        result = self._send_result(data)
        if result.outcome != "accepted":
            raise ProviderError(result.error_class or C, result.error_code, result.error_message)
        return result.provider_message_id

    def check_zalo_consent(self, *, channel_id: str, phone: str) -> Any:
        """Check Zalo Channel Consent Status (ZaloCheckConsentResponse, returned as is)."""
        return self.call(
            "zalo_consent_check", {"channel_id": channel_id, "phone": self._phone(phone)}
        )

    def request_zalo_consent(self, *, channel_id: str, phone: str) -> Any:
        """Send Consent request (ZaloRequestConsentRequest/Response)."""
        return self.call(
            "zalo_consent_request", {"channel_id": channel_id, "phone": self._phone(phone)}
        )

    def channel_info(self, *, channel_id: str) -> Any:
        return self.call("channel_info", {"channel_id": channel_id})

    def channel_status(self, *, channel_id: str) -> Any:
        return self.call("channel_status", {"channel_id": channel_id})

    def channel_summary(self, *, channel_id: str) -> Any:
        return self.call("channel_summary", {"channel_id": channel_id})

    # ---- templates ----------------------------------------------------------------------------------
    def create_template(self, *, template: dict) -> Any:
        """Create Template: `template` is the vendor's body (CreateFormTemplateMessage), sent as is."""
        return self._raw_call("template_create", {}, template)

    def get_template(self, *, template_id: str) -> Any:
        return self.call("template_get", {"template_id": template_id})

    def update_template(self, *, template_id: str, template: dict) -> Any:
        return self._raw_call("template_update", {"template_id": template_id}, template)

    def delete_template(self, *, template_id: str) -> Any:
        return self.call("template_delete", {"template_id": template_id})

    def _raw_call(self, operation: str, values: dict, body: dict) -> Any:
        return self.call(operation, values, payload=body)

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

    # ---- bulk campaigns ------------------------------------------------------------------------------
    def list_bulk_campaigns(self) -> list:
        data = self.call("bulk_campaign_list", {})
        rows = pluck(data, (self.settings.get("responses") or {}).get("items", []))
        return rows if isinstance(rows, list) else []

    def _contacts(self, recipients: list[OutboundMessage]) -> list:
        template = (self.settings.get("bodies") or {}).get("bulk_contact")
        return [render(template, self._values(m)) for m in recipients]

    def send_bulk_campaign_broadcast(
        self, *, name: str, channel_id: str, template_id: str, recipients: list[OutboundMessage]
    ) -> str:
        """Send Bulk Campaign Broadcast: the platform fans the broadcast out itself; each
        recipient's clientMessageId (our idempotency key) comes back in its status webhooks.
        Returns the bulk campaign id."""
        kind = recipients[0].channel_kind if recipients else ""
        values = {
            "name": name,
            "channel_id": channel_id,
            "template_id": template_id,
            "application_id": (self.settings.get("application_ids") or {}).get(kind),
            "contacts": self._contacts(recipients),
        }
        data = self.call("bulk_campaign_broadcast", values, send=True)
        found = pluck(data, (self.settings.get("responses") or {}).get("bulk_campaign_id", []))
        return str(found or "")

    def send_bulk_contact_message(
        self, *, bulk_campaign_id: str, recipients: list[OutboundMessage]
    ) -> Any:
        """Send Bulk Contact Message: add recipients to an existing bulk campaign."""
        return self.call(
            "bulk_contact_message",
            {"bulk_campaign_id": bulk_campaign_id, "contacts": self._contacts(recipients)},
            send=True,
        )

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

    # ---- webhooks (seeds 000 and 001, exactly) ---------------------------------------------------------
    def parse_webhook(self, request: WebhookRequest) -> ParsedWebhook:
        if request.method != "POST":
            return ParsedWebhook(ignored_reason="MMP webhooks are POST requests")
        try:
            data = json.loads(request.body or b"")
        except (ValueError, UnicodeDecodeError) as exc:
            raise WebhookRejected("Body is not JSON") from exc
        items = data if isinstance(data, list) else [data]
        if not items or not all(isinstance(i, dict) for i in items):
            raise WebhookRejected("Expected a JSON object (or a list of objects)")
        parsed = ParsedWebhook()
        reasons = []
        for item in items:
            # The two payloads reuse `type` with different meanings (broadcast: 1 Broadcast,
            # 2 Conversation; conversation: 1 EVENT, 2 MESSAGE, 3 TEMPLATE, 4 CHANNEL), so they are
            # told apart by shape: a conversation message has `from` and a `message` object.
            if "from" in item and isinstance(item.get("message"), dict):
                inbound = self._inbound(item)
                if inbound is None:
                    reasons.append(f"conversation event type {item.get('type')} not used")
                else:
                    parsed.inbound.append(inbound)
            elif "status" in item or "cause" in item:
                if not item.get("messageId") and not item.get("clientMessageId"):
                    raise WebhookRejected("Status webhook without messageId or clientMessageId")
                parsed.statuses.append(self._status_webhook(item))
            else:
                reasons.append("unknown MMP payload")
        key_src = json.dumps(
            [
                [
                    i.get("messageId"),
                    i.get("clientMessageId"),
                    i.get("status"),
                    i.get("cause"),
                    i.get("timestamp"),
                ]
                for i in items
            ],
            default=str,
        )
        parsed.dedupe_key = f"{self.kind}:" + hashlib.sha256(key_src.encode()).hexdigest()[:40]
        if not parsed.statuses and not parsed.inbound:
            parsed.ignored_reason = "; ".join(reasons) or "nothing to apply"
        return parsed

    @staticmethod
    def _status_webhook(item: dict) -> StatusEvent:
        """Webhook Broadcast: messageId, cause (READ/DELIVERED/FAIL/SEND), clientMessageId (our
        idempotency key), timestamp, type (1 Broadcast, 2 Conversation), status (1 PENDING,
        2 SENT, 3 FAIL, 4 DELIVERED, 5 READ), publicId, applicationId (1 viber, 10 viber bot,
        3 sms) — seed 000."""
        status = status_of(item.get("status"), item.get("cause"))
        failed = status == EventStatus.FAILED
        return StatusEvent(
            status,
            provider_message_id=str(item.get("messageId") or ""),
            idempotency_key=str(item.get("clientMessageId") or ""),
            occurred_at=zalo.epoch_to_datetime(item.get("timestamp")),
            error_code="mmp_fail" if failed else "",
            error_message=str(item.get("cause") or "FAIL") if failed else "",
            raw=item,
        )

    @staticmethod
    def _inbound(item: dict) -> InboundEvent | None:
        """Webhook Conversation: from (public conversation id), contact {name, phone, ...},
        messageId, message {type, message, extra}, timestamp, type (2 = MESSAGE), channelId —
        seed 000. Other types (EVENT, TEMPLATE, CHANNEL) carry no reply: ignored."""
        kind = zalo.to_int(item.get("type"))
        if kind is not None and kind != 2:
            return None
        message = item.get("message") or {}
        extra = message.get("extra") if isinstance(message.get("extra"), dict) else {}
        text = message.get("message") or extra.get("text") or message.get("text") or ""
        if not isinstance(text, str):
            text = json.dumps(text, ensure_ascii=False)
        mtype = str(message.get("type") or "text")
        if not text and mtype != "text":
            text = f"[{mtype}]"
        contact = item.get("contact") if isinstance(item.get("contact"), dict) else {}
        return InboundEvent(
            sender=str(item.get("from") or ""),
            text=text,
            phone=str(contact.get("phone") or ""),
            name=str(contact.get("name") or ""),
            channel_external_id=str(item.get("channelId") or item.get("publicId") or ""),
            provider_message_id=str(item.get("messageId") or ""),
            occurred_at=zalo.epoch_to_datetime(item.get("timestamp")),
            raw=item,
        )


class VnaMmpProvider(MmpProvider):
    kind = "vna_mmp"
    label = "VNA MMP (multi-channel)"
    # The VNA table of contents lists every operation, Zalo consent and Email included (seed 000).
    channel_kinds = ("zalo_zns", "sms", "viber", "viber_bot", "rcs", "whatsapp", "email")
    default_settings = deep_merge(MmpProvider.default_settings, {"phone_format": "international"})


class MetfoneMmpProvider(MmpProvider):
    kind = "metfone_mmp"
    label = "Metfone MMP (Cambodia, multi-channel)"
    # Metfone (Cambodia) documents Broadcast Message and Get Message Status only (seed 001); the
    # other operations are the same platform's and kept available. No Zalo in Cambodia.
    channel_kinds = ("sms", "viber", "viber_bot", "rcs", "whatsapp", "email")
    default_settings = deep_merge(MmpProvider.default_settings, {"phone_format": "international"})
