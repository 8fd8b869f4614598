"""Secrets never leave the process: every recorded request, response and log line passes here."""

import re

_MASK = "***"
# Common credential fields in provider payloads and query strings.
_FIELD_RE = re.compile(
    r'(?i)("?(?:apikey|api_key|secretkey|secret_key|secret|password|token|access_token|shop_key|authorization)"?\s*[:=]\s*"?)([^"&,\s}]+)'
)


def redact_text(text: str, secrets: list[str] | tuple[str, ...] = ()) -> str:
    if not text:
        return text
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, _MASK)
    return _FIELD_RE.sub(lambda m: m.group(1) + _MASK, text)
