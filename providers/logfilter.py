"""The logging filter that keeps credentials out of every log line.

Named by its dotted path where logging is configured (settings.LOGGING through
config.logging.logging_config, and config/gunicorn.conf.py for gunicorn's own loggers), so
config never imports it. It masks credentials in the final text of each record: the field
patterns of providers/redact.py (ApiKey=..., "SecretKey": "...") and every secret value this
process has decrypted (providers.crypto keeps that set), including inside tracebacks.
"""

from __future__ import annotations

import logging

from providers.crypto import known_secret_values
from providers.redact import redact_text


def redact_log_text(text: str) -> str:
    return redact_text(text, known_secret_values())


class RedactFilter(logging.Filter):
    """Render the message once, redact it, and freeze it on the record (args cleared), so every
    handler and formatter downstream sees only the redacted text."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "gunicorn.access" and isinstance(record.args, dict):
            # gunicorn's access records carry their atoms as args, which config.logging's
            # JsonFormatter writes as fields: keep them, mask the query string (it can carry
            # credentials: a provider calling back with a key in the URL).
            if record.args.get("q"):
                record.args = {**record.args, "q": redact_log_text(str(record.args["q"]))}
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
        return True
