"""The logging filter that keeps credentials out of every log line.

Named by its dotted path where logging is configured (settings.LOGGING through
config.logging.logging_config, and config/gunicorn.conf.py for gunicorn's own loggers), so
config never imports it. It masks credentials in the final text of each record: the field
patterns of providers/redact.py (ApiKey=..., "SecretKey": "..."), every secret value this
process has decrypted (providers.crypto keeps that set), including inside tracebacks, and the
token of a webhook URL (/webhooks/<token>/: the only credential a provider's callback carries,
in every access line and in Django's "Bad Request: /webhooks/..." lines). A record's extra
fields are masked too (Django's request log attaches the request, whose repr holds the path).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

from config.logging import STANDARD_ATTRS
from providers.crypto import known_secret_values
from providers.redact import redact_text

_WEBHOOK_TOKEN = re.compile(r"(/webhooks/)[A-Za-z0-9_-]+")
# Access records (gunicorn's atoms, granian's dict) whose values may carry credentials in a query.
_ACCESS_LOGGERS = ("gunicorn.access", "granian.access")
_QUERY_ATOMS = ("q", "r", "query_string", "{raw_uri}e", "{query_string}e")


def webhook_token_redact(text: str) -> str:
    """/webhooks/<token>/ -> /webhooks/***/ anywhere in the text."""
    return _WEBHOOK_TOKEN.sub(r"\1***", text) if "/webhooks/" in text else text


def redact_log_text(text: str) -> str:
    return webhook_token_redact(redact_text(text, known_secret_values()))


class RedactFilter(logging.Filter):
    """Render the message once, redact it, and freeze it on the record (args cleared), so every
    handler and formatter downstream sees only the redacted text."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name in _ACCESS_LOGGERS and isinstance(record.args, Mapping):
            _access_atoms_redact(record.args)
            return True
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not lose the record
            message = f"{record.msg!r} {record.args!r}"
        record.msg = redact_log_text(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_log_text(record.exc_text)
            # the formatter would re-render exc_info from the live exception: drop it
            record.exc_info = None
        if record.stack_info:
            record.stack_info = redact_log_text(record.stack_info)
        _extras_redact(record)
        return True


def _access_atoms_redact(atoms) -> None:
    """gunicorn's access records carry their atoms as args (config.logging's JsonFormatter writes
    them as fields, the plain format interpolates them): keep them, masked in place (gunicorn's
    SafeAtoms answers "-" for a missing atom; a copy would be a plain dict). The path atoms hold
    the webhook token; the query atoms may hold credentials (a provider calling back with a key
    in the URL)."""
    for key, value in list(atoms.items()):
        if not isinstance(value, str):
            continue
        masked = redact_log_text(value) if key in _QUERY_ATOMS else webhook_token_redact(value)
        if masked != value:
            dict.__setitem__(atoms, key, masked)


def _extras_redact(record: logging.LogRecord) -> None:
    """A record's extra fields, as the JSON formatter will write them, masked: text redacted,
    any other object replaced by its redacted repr (Django's request log attaches the request)."""
    for key, value in list(record.__dict__.items()):
        if key in STANDARD_ATTRS or key.startswith("_"):
            continue
        if isinstance(value, str):
            record.__dict__[key] = redact_log_text(value)
        elif not isinstance(value, int | float | bool | type(None)):
            text = _redacted_json(value) if isinstance(value, list | dict) else None
            record.__dict__[key] = text if text is not None else redact_log_text(repr(value))


def _redacted_json(value):
    """A list or dict of plain values with its strings redacted; None if it holds anything else."""
    if isinstance(value, str):
        return redact_log_text(value)
    if isinstance(value, int | float | bool | type(None)):
        return value
    if isinstance(value, list):
        items = [_redacted_json(v) for v in value]
        return (
            None
            if any(i is None and v is not None for i, v in zip(items, value, strict=True))
            else items
        )
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        out = {k: _redacted_json(v) for k, v in value.items()}
        return None if any(out[k] is None and value[k] is not None for k in value) else out
    return None
