"""What the fake's per-provider handlers share: the request they get, the reply they give, the
one OA and template every provider's fake account holds, and the small type checks their request
validation is made of (each provider module decides which check a field gets and what error it
answers, with the seed line it follows)."""

from __future__ import annotations

import re
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
    # The body was not JSON: body is then {} and each provider answers in its own envelope.
    malformed: bool = False


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


# ---- request validation helpers ----------------------------------------------------------------
DIGITS = re.compile(r"[0-9]+")


def is_json(request: Request) -> bool:
    """Content-Type application/json (parameters such as charset allowed)."""
    value = request.headers.get("Content-Type") or ""
    return value.split(";", 1)[0].strip().lower() == "application/json"


def type_name(value: Any) -> str:
    """The JSON type of a decoded value, as an error message names it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def is_integer(value: Any) -> bool:
    """A JSON integer: not a boolean (Python's bool is an int), not a string of digits."""
    return isinstance(value, int) and not isinstance(value, bool)


def not_strings(body: dict, fields: tuple[str, ...]) -> str | None:
    """The first of `fields` present in `body` whose value is not a JSON string, else None."""
    for name in fields:
        if name in body and not isinstance(body[name], str):
            return name
    return None
