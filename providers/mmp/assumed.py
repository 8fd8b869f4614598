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

# [I] EmailStatus (schema named, values unknown): the usual vocabulary. Read only for email
# messages (Get Batch Email Status); a channel message is never looked up there.
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


# Deduplication of clientMessageId is not documented: an ambiguous send is reconciled, never resent.
DEDUPES_CLIENT_MESSAGE_ID = False

# No MMP answer proves a message absent. The seeds show no "not found" answer, and the status
# paths above are our guesses: a 404 there may mean "no such message" or "no such path" (the
# incident of issue 15: a 404 read as "no record" sent 8 customers the message twice). The
# adapter turns every such answer into StatusEvent.unproven, and the provider class keeps
# can_prove_absence False, so the engine never resends an MMP message on a lookup.
CAN_PROVE_ABSENCE = False


DEFAULT_SETTINGS: dict[str, Any] = {
    # "Create a new API key" exists (CreateAPIKeyRequest); the header is not public.
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
