"""VNA/Metfone MMP as the fake speaks it, at the paths Loa assumes (providers/mmp/assumed.py):
channel broadcasts with their status webhooks (DELIVERED then READ, or FAIL), the message status,
email send and status, approved templates, conversation messages and channel reads. One handler
per endpoint; handle() checks the API key and routes by path and method."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from bench.fake_provider.shared import Reply, Request
from bench.fake_provider.state import FakeState

PROVIDER = "mmp"


def _ok(body: dict, key: str = "", status: int = 200) -> Reply:
    return Reply(status, body, PROVIDER, key)


def handle(fake: FakeState, request: Request) -> Reply:
    """A call under /mmp/: an exact (path, method) endpoint, else the approved templates (any
    method), else a channel read (GET /api/v1/channel/<publicId>)."""
    if not (request.headers.get("Authorization") or request.headers.get("x-api-key")):
        return _ok({"errorCode": "UNAUTHORIZED", "errorMessage": "missing api key"}, status=401)
    route = request.path.removeprefix("/mmp")
    endpoint = ENDPOINTS.get((route, request.method))
    if endpoint is not None:
        return endpoint(fake, request)
    if route == "/api/v1/template/approved":
        return approved_templates(fake, request)
    if route.startswith("/api/v1/channel/") and request.method == "GET":
        return _ok({"publicId": route.split("/")[4], "status": "ACTIVE"})
    return _ok({"errorCode": "NOT_FOUND", "errorMessage": f"no route {route}"}, status=404)


def broadcast(fake: FakeState, request: Request) -> Reply:
    """POST channel/broadcast: one message, its status webhooks scheduled one delay apart."""
    body = request.body
    key = str(body.get("clientMessageId") or "")
    message_id = str(uuid.uuid4())
    failed, _code, _text = fake.outcome()
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
    for i, (status, cause) in enumerate(steps):
        fake.schedule(
            fake.callback_delay * (i + 1), "POST", url, status_payload(record, status, cause)
        )
    return _ok({"messageId": message_id, "clientMessageId": key}, key)


def message_status(fake: FakeState, request: Request) -> Reply:
    """GET message/status by messageId or clientMessageId."""
    query = request.query
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
