"""VNA/Metfone MMP as the fake speaks it, at the paths Loa assumes (providers/mmp/assumed.py):
channel broadcasts with their status webhooks (DELIVERED then READ, or FAIL), the message status,
email send and status, approved templates, conversation messages and channel reads. One handler
per endpoint; handle() checks the API key and routes by path and method."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from bench.fake_provider.shared import (
    DIGITS,
    Reply,
    Request,
    is_integer,
    is_json,
    type_name,
)
from bench.fake_provider.state import FakeState

PROVIDER = "mmp"


def _ok(body: dict, key: str = "", status: int = 200) -> Reply:
    return Reply(status, body, PROVIDER, key)


def _refuse(fake: FakeState, rule: str, message: str, key: str = "", *, status: int = 400) -> Reply:
    """assumed: the error envelope (the seeds name an ErrorMessage schema, not its fields);
    errorCode/errorMessage is where providers/mmp/assumed.py reads an error (ASSUMED_RESPONSES)."""
    fake.refuse(PROVIDER, rule)
    code = "UNAUTHORIZED" if status == 401 else "INVALID_REQUEST"
    return _ok({"errorCode": code, "errorMessage": message}, key, status=status)


def handle(fake: FakeState, request: Request) -> Reply:
    """A call under /mmp/: an exact (path, method) endpoint, else the approved templates (any
    method), else a channel read (GET /api/v1/channel/<publicId>)."""
    refused = check_auth(fake, request)
    if refused is not None:
        return refused
    if request.method == "POST" and (not is_json(request) or request.malformed):
        # assumed: the API takes JSON bodies (seeds 000/001 show JSON only for the webhooks).
        return _refuse(fake, "content_type", "expected an application/json body")
    route = request.path.removeprefix("/mmp")
    endpoint = ENDPOINTS.get((route, request.method))
    if endpoint is not None:
        return endpoint(fake, request)
    if route == "/api/v1/template/approved":
        return approved_templates(fake, request)
    if route.startswith("/api/v1/channel/") and request.method == "GET":
        return _ok({"publicId": route.split("/")[4], "status": "ACTIVE"})
    return _ok({"errorCode": "NOT_FOUND", "errorMessage": f"no route {route}"}, status=404)


def check_auth(fake: FakeState, request: Request) -> Reply | None:
    """assumed: the key as `Authorization: Bearer <key>` (providers/mmp/assumed.py auth_header /
    auth_prefix) or, the documented override's example, `x-api-key: <key>`. Seeds 000/001 name
    "Create a new API key" and "How to retrieve API key", not the header."""
    auth = request.headers.get("Authorization")
    if auth is not None:
        scheme, _, key = auth.partition(" ")
        if scheme != "Bearer" or not key.strip():
            return _refuse(fake, "bearer", "expected Authorization: Bearer <api key>", status=401)
    else:
        key = request.headers.get("x-api-key") or ""
        if not key:
            return _refuse(fake, "api_key", "missing api key", status=401)
    expected = fake.keys.get(PROVIDER)
    if expected is not None and key != expected:
        return _refuse(fake, "key", "invalid api key", status=401)
    return None


def check_broadcast(fake: FakeState, body) -> Reply | None:
    """Broadcast Message (seeds 000/001 name the operation and the schemas SendMessageBroadcast,
    TemplateMessage, TextMessage, BroadcastSubscriberMessage, not their fields): every check
    below is of OUR assumed body, docs/PROVIDERS.md "Assumed bodies" broadcast_template /
    broadcast_text (providers/mmp/assumed.py ASSUMED_BODIES). None when acceptable."""
    if not isinstance(body, dict):
        return _refuse(fake, "body_not_object", "the body must be an object")  # assumed
    key = body.get("clientMessageId") if isinstance(body.get("clientMessageId"), str) else ""

    def bad(rule: str, message: str) -> Reply:
        return _refuse(fake, rule, message, key)

    # assumed: publicId = the channel's publicId ("How to retrieve required IDs"), a string.
    if not (isinstance(body.get("publicId"), str) and body["publicId"]):
        return bad("publicId", "publicId (the channel) must be a non-empty string")
    # assumed: clientMessageId, a string (seed 000 shows it as a String in the webhook).
    if not (isinstance(body.get("clientMessageId"), str) and body["clientMessageId"]):
        return bad("clientMessageId", "clientMessageId must be a non-empty string")
    # Seed 000's webhook types applicationId "Number" (1 viber, 10 viber bot, 3 sms); assumed:
    # the request carries it the same way, and other channels' ids are unknown (any integer).
    if "applicationId" in body and not is_integer(body["applicationId"]):
        return bad(
            "type:applicationId",
            f"applicationId must be an integer, not {type_name(body['applicationId'])}",
        )
    message = body.get("message")
    if not isinstance(message, dict):
        return bad("message", "message must be an object")  # assumed
    if message.get("type") == "template":
        template = message.get("template")
        # assumed: template.publicId a non-empty string, params an object of strings.
        if not (isinstance(template, dict) and isinstance(template.get("publicId"), str)):
            return bad("template", "message.template.publicId must be a string")
        if not template["publicId"]:
            return bad("template", "message.template.publicId must be a string")
        params = template.get("params", {})
        if not isinstance(params, dict) or any(not isinstance(v, str) for v in params.values()):
            return bad("type:params[]", "message.template.params must map names to strings")
    elif message.get("type") == "text":
        # assumed: text a non-empty string.
        if not (isinstance(message.get("text"), str) and message["text"]):
            return bad("text", "message.text must be a non-empty string")
    else:
        return bad("message_type", 'message.type must be "template" or "text"')  # assumed
    subscribers = body.get("subscribers")
    # assumed: subscribers a non-empty list of {phone, clientMessageId}, the phone in digits
    # with its country code (phone_format "international").
    if not (isinstance(subscribers, list) and subscribers):
        return bad("subscribers", "subscribers must be a non-empty list")
    for sub in subscribers:
        if not (isinstance(sub, dict) and isinstance(sub.get("phone"), str)):
            return bad("subscriber_phone", "each subscriber needs a phone string")
        if not DIGITS.fullmatch(sub["phone"]):
            return bad("subscriber_phone", "a subscriber's phone must be digits")
    return None


def broadcast(fake: FakeState, request: Request) -> Reply:
    """POST channel/broadcast (checked by check_broadcast): one message, its status webhooks
    scheduled one delay apart."""
    body = request.body
    refused = check_broadcast(fake, body)
    if refused is not None:
        return refused
    key = str(body.get("clientMessageId") or "")
    message_id = str(uuid.uuid4())
    subscribers = body.get("subscribers") or [{}]
    phone = str((subscribers[0] or {}).get("phone") or "")  # assumed body: providers/mmp/assumed.py
    failed, _code, _text = fake.outcome(phone)
    record = {
        "provider": PROVIDER,
        "messageId": message_id,
        "clientMessageId": key,
        "failed": failed,
        "publicId": body.get("publicId"),
        "applicationId": body.get("applicationId") or 3,
    }
    with fake.lock:
        fake.messages[message_id] = record
        if key:
            fake.by_key[(PROVIDER, key)] = message_id
    url = fake.callback_urls.get(PROVIDER, "")
    steps = [(3, "FAIL")] if failed else [(4, "DELIVERED"), (5, "READ")]
    if phone and phone in fake.silent_phones:
        steps = []
    for i, (status, cause) in enumerate(steps):
        fake.schedule(
            fake.callback_delay * (i + 1), "POST", url, status_payload(record, status, cause)
        )
    return _ok({"messageId": message_id, "clientMessageId": key}, key)


def message_status(fake: FakeState, request: Request) -> Reply:
    """GET message/status by messageId or clientMessageId (seeds 000/001 name "Get Message
    Status GET" and ResponseStatusMessage; the query is ours, assumed: providers/mmp/assumed.py
    message_status)."""
    query = request.query
    if not (query.get("messageId") or query.get("clientMessageId")):
        # assumed: one of the two ids is needed to find a message.
        return _refuse(fake, "status_id", "messageId or clientMessageId is required")
    message_id = query.get("messageId") or fake.by_key.get(
        (PROVIDER, query.get("clientMessageId", "")), ""
    )
    record = fake.messages.get(message_id)
    if record is None:
        return _ok({"errorCode": "NOT_FOUND", "errorMessage": "message not found"}, status=404)
    status, cause = (3, "FAIL") if record["failed"] else (4, "DELIVERED")
    return _ok(status_payload(record, status, cause))


def email_send(fake: FakeState, request: Request) -> Reply:
    """POST email/send: one email, never failed."""
    key = str(request.body.get("clientMessageId") or "")
    message_id = str(uuid.uuid4())
    with fake.lock:
        fake.messages[message_id] = {
            "provider": "mmp-email",
            "messageId": message_id,
            "clientMessageId": key,
            "failed": False,
        }
    return _ok({"messageId": message_id}, key)


def email_status(fake: FakeState, request: Request) -> Reply:
    """POST email/status: DELIVERED for each known id."""
    rows = [
        {"messageId": i, "status": "DELIVERED"}
        for i in request.body.get("ids") or []
        if i in fake.messages
    ]
    return _ok({"data": rows})


def approved_templates(fake: FakeState, request: Request) -> Reply:
    """template/approved: the one approved template."""
    template = {
        "publicId": "tpl-1",
        "name": "Welcome",
        "content": "Hello {{name}}, code {{code}}",
        "status": "APPROVED",
    }
    return _ok({"data": [template]})


def conversation(fake: FakeState, request: Request) -> Reply:
    """POST channel/conversation: a message inside a conversation."""
    return _ok({"messageId": str(uuid.uuid4())}, str(request.body.get("clientMessageId") or ""))


ENDPOINTS: dict[tuple[str, str], Callable[[FakeState, Request], Reply]] = {
    ("/api/v1/channel/broadcast", "POST"): broadcast,
    ("/api/v1/message/status", "GET"): message_status,
    ("/api/v1/email/send", "POST"): email_send,
    ("/api/v1/email/status", "POST"): email_status,
    ("/api/v1/channel/conversation", "POST"): conversation,
}


def status_payload(record: dict, status: int, cause: str) -> dict:
    """The broadcast status webhook exactly as seed 000 shows it."""
    return {
        "messageId": record["messageId"],
        "cause": cause,
        "clientMessageId": record["clientMessageId"],
        "timestamp": int(time.time() * 1000),
        "type": 1,
        "status": status,
        "publicId": str(uuid.uuid4()),
        "applicationId": record.get("applicationId") or 3,
    }
