"""The MMP management API: conversation replies, Zalo consent, channel information, templates and
bulk campaigns, as a mixin of MmpProvider (which supplies call(), _phone(), _values() and
_send_result()).

The admin uses the reply, the templates (create, get, update, delete, through
providers/mmp/templates.py and templates_app/mmp.py), Zalo consent (check, request) and channel
information and status (through providers/mmp/channels.py and providers/channels.py). Called by
nothing yet: list_bulk_campaigns, send_bulk_campaign_broadcast, send_bulk_contact_message and
channel_summary; tests/providers/test_mmp.py keeps them working. Every request shape here is an
assumption (providers/mmp/assumed.py).
"""

from __future__ import annotations

import uuid
from typing import Any

from providers.base import ErrorClass, OutboundMessage, ProviderError
from providers.mmp.bodies import pluck, render


class MmpManageMixin:
    """MmpProvider's operations beyond sending: replies, consent, channels, templates, bulk."""

    # ---- conversation, consent, channels ----------------------------------------------------------
    def send_conversation_message(
        self, *, channel_id: str, conversation_id: str, text: str, client_message_id: str = ""
    ) -> str:
        """Send Conversation Message: reply in a conversation opened by an inbound message (the
        `from` of the conversation webhook). Returns the platform's message id ("" if none)."""
        if not channel_id or not conversation_id or not text.strip():
            raise ProviderError(
                ErrorClass.CONFIGURATION,
                "bad_settings",
                "A reply needs the channel, the conversation and a text.",
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
            raise ProviderError(
                result.error_class or ErrorClass.CONFIGURATION,
                result.error_code,
                result.error_message,
            )
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
            # The channel's applicationId (Channel.settings) when the recipients carry it.
            "application_id": self._application_id(recipients[0])
            if recipients
            else (self.settings.get("application_ids") or {}).get(kind),
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
