"""Secrets never leave the process: every recorded request, response and log line passes here.

Two nets: the account's own secret values are replaced wherever they appear (the strongest rule,
whatever the field is called), and well-known credential field names are masked in JSON, query
strings and headers even when we do not know the value (a provider echoing a key back).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

_MASK = "***"
_NAMES = (
    r"apikey|api_key|api-key|x-api-key|secretkey|secret_key|secret|password|passwd|token|"
    r"access_token|refresh_token|shop_key|shopkey|authorization|oa_secret|client_secret"
)
# Common credential fields in JSON payloads and query strings: "ApiKey": "..." / ApiKey=...
# The look-behind keeps "fee_token" or "journey_token" (not credentials) out of it.
_FIELD_RE = re.compile(rf'(?i)(?<![\w-])("?(?:{_NAMES})"?\s*[:=]\s*"?)([^"&,\s}}]+)')
# "Authorization: Bearer abc" style values anywhere in a text.
_BEARER_RE = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+")
_SENSITIVE_KEY = re.compile(rf"(?i)^(?:{_NAMES})$")


# Every word either pattern needs, lower-cased: a text without any of them cannot match, and
# `in` over a lower-cased copy is far cheaper than the patterns' look-behind and alternation
# (this runs on every request and response body of every send).
_HINTS = ("key", "secret", "passw", "token", "authorization", "bearer", "basic")


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    if not text:
        return text
    for secret in secrets:
        # Very short values would mask innocent text ("1", "ab"); credentials are never that short.
        if secret and len(secret) >= 4 and secret in text:
            text = text.replace(secret, _MASK)
    lowered = text.lower()
    if not any(h in lowered for h in _HINTS):
        return text
    text = _BEARER_RE.sub(lambda m: f"{m.group(1)} {_MASK}", text)
    return _FIELD_RE.sub(lambda m: m.group(1) + _MASK, text)


def redact_data(value: Any, secrets: Iterable[str] = ()) -> Any:
    """A JSON-like structure with credential keys masked and secret values replaced."""
    secrets = tuple(secrets)
    if isinstance(value, Mapping):
        return {
            k: (_MASK if _SENSITIVE_KEY.match(str(k)) else redact_data(v, secrets))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact_data(v, secrets) for v in value]
    if isinstance(value, str):
        return redact_text(value, secrets)
    return value
