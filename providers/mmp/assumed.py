"""Everything about the MMP API that the seeds do not show, in one place.

What is known (seeds 000 and 001, providers.md §3) is the table of contents of the API, the schema
names and the two webhook payloads (providers/mmp/callbacks.py). What is NOT public: base URL, auth
header, paths, request and response bodies, the email status values, what a missing message looks
like. Every value here is inferred ([I] in providers.md) and every part of DEFAULT_SETTINGS can be
overridden per account through the account's settings JSON, deep-merged over it (a body template
given for one operation replaces that operation's default body), e.g.

    {"auth_header": "x-api-key", "auth_prefix": "",
     "api": {"broadcast": {"path": "/v2/broadcast"}},
     "bodies": {"broadcast_template": {"channel": "{{channel_id}}", "to": ["{{phone}}"], ...}},
     "responses": {"message_id": ["result.id"]}}

docs/PROVIDERS.md lists the placeholders and every assumption, so an operator holding the vendor's
specification can adjust them without a code change. The adapter (providers/mmp/adapter.py) reads
the API's shapes only through the settings built from here.
"""

from __future__ import annotations

from typing import Any

from providers.base import EventStatus

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
    # CreateFormTemplateMessage, sent by Create Template and (with the template's publicId in the
    # path) Update Template. The schema is named in seed 000, its fields are not: all assumed.
    # {{params}} is the list of parameter names read from the content's {{placeholders}}.
    "template_form": {
        "name": "{{name}}",
        "publicId": "{{channel_id}}",
        "applicationId": "{{application_id}}",
        "messageType": "{{message_type}}",
        "content": "{{content}}",
        "params": "{{params}}",
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
    # ResponseCreateTemplateMessage / ResponseGetTemplate: the template's publicId, its
    # TemplateStatus and why it was refused (all assumed).
    "template_id": ["publicId", "data.publicId", "templateId", "data.templateId", "id", "data.id"],
    "template_status": ["templateStatus", "data.templateStatus", "status", "data.status"],
    "template_reason": ["reason", "data.reason", "rejectReason", "data.rejectReason", "note"],
    # ZaloCheckConsentResponse / ZaloRequestConsentResponse (assumed).
    "consent_status": ["consent", "data.consent", "consentStatus", "data.consentStatus", "status"],
    # ResponseChannelInfo / ChannelResponse / CommonGetChannelStatusResponse (assumed).
    "channel_name": ["name", "data.name", "channelName", "data.channelName"],
    "channel_status": ["status", "data.status", "channelStatus", "data.channelStatus"],
}

# [I] EmailStatus (seed 000 names the schema, not its values): the usual vocabulary, value ->
# our status ("sent", "delivered", "read", "failed"). Read only for email messages (Get Batch
# Email Status); a channel message is never looked up there. Setting `email_statuses`: an
# account's entries are merged over these (a value mapped to "" is dropped).
ASSUMED_EMAIL_STATUSES: dict[str, str] = {
    "SENT": EventStatus.SENT.value,
    "QUEUED": EventStatus.SENT.value,
    "PENDING": EventStatus.SENT.value,
    "PROCESSING": EventStatus.SENT.value,
    "DELIVERED": EventStatus.DELIVERED.value,
    "SUCCESS": EventStatus.DELIVERED.value,
    "OPENED": EventStatus.READ.value,
    "OPEN": EventStatus.READ.value,
    "READ": EventStatus.READ.value,
    "CLICKED": EventStatus.READ.value,
    "FAILED": EventStatus.FAILED.value,
    "FAIL": EventStatus.FAILED.value,
    "BOUNCED": EventStatus.FAILED.value,
    "BOUNCE": EventStatus.FAILED.value,
    "REJECTED": EventStatus.FAILED.value,
    "DROPPED": EventStatus.FAILED.value,
    "COMPLAINED": EventStatus.FAILED.value,
}

# [I] The 404 rule: HTTP statuses of Get Message Status that say nothing about the message
# (the path is ours: "no such path" and "no such message" look alike), so the answer is
# StatusEvent.unproven with the reason, never a "not found". Setting `unproven_http_statuses`.
ASSUMED_UNPROVEN_HTTP_STATUSES: list[int] = [404]


# [I] TemplateStatus (schema named in seed 000, values unknown) -> our template status. A value
# not listed here is shown as the provider wrote it and changes nothing in Loa.
TEMPLATE_STATUSES = {
    "APPROVED": "approved",
    "APPROVE": "approved",
    "ACTIVE": "approved",
    "ENABLE": "approved",
    "ENABLED": "approved",
    "PENDING": "pending",
    "PENDING_REVIEW": "pending",
    "IN_REVIEW": "pending",
    "REVIEWING": "pending",
    "SUBMITTED": "pending",
    "REJECTED": "rejected",
    "REJECT": "rejected",
    "DISABLED": "disabled",
    "DISABLE": "disabled",
    "INACTIVE": "disabled",
    "PAUSED": "disabled",
    "DELETED": "deleted",
}

# [I] MessageType (schema named, values unknown): what the admin's template form offers, after
# the message schemas of the table of contents (TextMessage, TextMessageWithAttachment, RichCard,
# FileMessage).
TEMPLATE_MESSAGE_TYPES = ["TEXT", "TEXT_WITH_ATTACHMENT", "RICH_CARD", "FILE"]

# [I] ZaloCheckConsentResponse / ZaloRequestConsentResponse: the consent value -> granted,
# not_granted or requested. Other values are shown as written, with no verdict.
CONSENT_STATES = {
    "TRUE": "granted",
    "GRANTED": "granted",
    "ACCEPTED": "granted",
    "ALLOW": "granted",
    "ALLOWED": "granted",
    "YES": "granted",
    "FALSE": "not_granted",
    "NOT_GRANTED": "not_granted",
    "DENIED": "not_granted",
    "REJECTED": "not_granted",
    "NONE": "not_granted",
    "NO": "not_granted",
    "PENDING": "requested",
    "REQUESTED": "requested",
    "WAITING": "requested",
    "SENT": "requested",
}


# Deduplication of clientMessageId is not documented: an ambiguous send is reconciled, never resent.
DEDUPES_CLIENT_MESSAGE_ID = False

# No MMP answer proves a message absent. The seeds show no "not found" answer, and the status
# paths above are our guesses: a 404 there may mean "no such message" or "no such path" (the
# incident of issue 15: a 404 read as "no record" sent 8 customers the message twice). The
# adapter turns such answers (unproven_http_statuses) into StatusEvent.unproven, and the
# provider class keeps can_prove_absence False, so the engine never resends an MMP message on a
# lookup. (A class attribute, not a setting: no account may make a guess prove absence.)
CAN_PROVE_ABSENCE = False


DEFAULT_SETTINGS: dict[str, Any] = {
    # "Create a new API key" exists (CreateAPIKeyRequest); the header is not public.
    "auth_header": "Authorization",
    "auth_prefix": "Bearer ",
    "api": ASSUMED_API,
    "bodies": ASSUMED_BODIES,
    "responses": ASSUMED_RESPONSES,
    # applicationId by channel kind. Seed 000 (VNA), Webhook Broadcast: "applicationIdNumber-
    # 1: viber - 10: viber bot - 3: sms". Seed 001 (Metfone) lists only 1 and 10: for Metfone,
    # 3 = sms is inferred from seed 000 [I]. Others unknown (left out of the body). A Channel's
    # settings {"application_id": n} win over this table (OutboundMessage.application_id).
    "application_ids": {"viber": 1, "viber_bot": 10, "sms": 3},
    "email_statuses": ASSUMED_EMAIL_STATUSES,
    "unproven_http_statuses": ASSUMED_UNPROVEN_HTTP_STATUSES,
    # HTTP status -> class when the body says nothing we understand; overridable per status.
    "http_error_classes": {},
    # Vendor error code (from responses.error_code) -> class name, e.g. {"INVALID_PHONE": "permanent"}.
    "error_codes": {},
    "phone_format": "international",  # digits with country code; "plus" = +...; "local" = 0...
    "email_field": "email",  # template_data key holding an email recipient's address
    "email_from": "",
    "test_channel_id": "",  # channel publicId used by "Test connection" (optional)
    # The admin's template, consent and channel pages (issue 16): value tables, as above.
    "template_statuses": TEMPLATE_STATUSES,
    "template_message_types": TEMPLATE_MESSAGE_TYPES,
    "consent_states": CONSENT_STATES,
}
