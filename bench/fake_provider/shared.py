"""What the fake's per-provider handlers share: the request they get, the reply they give, and
the one OA and template every provider's fake account holds."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from email.message import Message
from typing import Any, NamedTuple

OA_ID = "4097311281936189049"
TEMPLATES = {
    "205644": {
        "name": "Xác nhận đơn hàng",
        "params": [("customer_name", "type_text", 30), ("order_code", "type_text", 30)],
    }
}


@dataclass(frozen=True)
class Request:
    """One parsed HTTP request: the query's last value per name, the JSON body ({} if none)."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    headers: Message


class Reply(NamedTuple):
    """A handler's answer: HTTP status and JSON body, plus which provider was called with which
    idempotency key (both "" when the call is not one to count)."""

    status: int
    body: Any
    provider: str
    key: str


def msg_id() -> str:
    return uuid.uuid4().hex


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
