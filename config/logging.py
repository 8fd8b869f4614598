"""Structured logs: one JSON object per line, a request id on every record, no secrets.

Wired in settings.LOGGING (and in config/gunicorn.conf.py for gunicorn's own loggers):

- `RequestIdFilter` copies the current request id (set by config.middleware.RequestIdMiddleware
  in a contextvar) onto each record, so a web request's lines can be found together;
- the redaction filter masks credentials in the final text of each record (and the token of
  every /webhooks/<token>/ path). It knows the secrets, so it lives with them in providers
  (providers/logfilter.py); settings name it by its dotted path and config never imports it.
  Every logger writes through the one console handler that carries it: Django's own default
  handlers (its DEBUG console, mail_admins) and runserver's request log are replaced;
- `JsonFormatter` writes one JSON line per record (newlines in messages and tracebacks escaped,
  so a multi-line traceback stays one line for the log shipper).
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
from datetime import UTC, datetime

# "-" when a record is not made inside a web request (workers, management commands).
request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("loa_request_id", default="-")

# LogRecord attributes that are not "extra" fields (the redaction filter masks the extra ones).
STANDARD_ATTRS = set(vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None)).keys()) | {
    "message",
    "asctime",
    "request_id",
    "taskName",
}


def get_request_id() -> str:
    return request_id_var.get()


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = request_id_var.get()
        return True


class ClientErrorFilter(logging.Filter):
    """A 4xx answer (a 403 for a role without the permission, a 404) is the request's fault, not
    the code's: django.request logs it as one warning line, without the traceback it attaches
    (a full traceback per refused page buried the real errors in the console). 5xx keep it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.ERROR and getattr(record, "status_code", 500) < 500:
            record.exc_info = None
            record.exc_text = None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts, level, logger, message, request_id, process, extras."""

    def format(self, record: logging.LogRecord) -> str:
        if record.name == "gunicorn.access" and isinstance(record.args, dict):
            return self._access(record)
        out = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or request_id_var.get(),
            "pid": record.process or os.getpid(),
        }
        for key, value in record.__dict__.items():
            if key not in STANDARD_ATTRS and not key.startswith("_"):
                out[key] = value if _jsonable(value) else repr(value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            out["exc"] = record.exc_text
        if record.stack_info:
            out["stack"] = record.stack_info
        return json.dumps(out, ensure_ascii=False, default=str)

    @staticmethod
    def _access(record: logging.LogRecord) -> str:
        """gunicorn's access logger passes its atoms dict as args: emit them as fields (the
        redaction filter on the handler has already masked the query string)."""
        a = record.args
        out = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": "gunicorn.access",
            "request_id": a.get("{x-request-id}o") or a.get("{x-request-id}i") or "-",
            "remote": a.get("h"),
            "method": a.get("m"),
            "path": a.get("U"),
            "query": a.get("q"),
            "status": _int_or(a.get("s")),
            "bytes": _int_or(a.get("B")),
            "duration_ms": _int_or(a.get("M")),
            "user_agent": a.get("a"),
            "pid": record.process or os.getpid(),
        }
        return json.dumps(out, ensure_ascii=False, default=str)


def _int_or(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return value


def _jsonable(value) -> bool:
    return isinstance(value, str | int | float | bool | type(None) | list | dict)


class PlainFormatter(logging.Formatter):
    """Human-readable lines for development, with the request id."""

    def __init__(self):
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        return super().format(record)


def logging_config(*, fmt: str, level: str, q_level: str, redact_filter: str) -> dict:
    """The LOGGING dict for settings.py: `fmt` is "json" or "plain"; `redact_filter` is the
    dotted path of the filter class that masks credentials on every record."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "request_id": {"()": "config.logging.RequestIdFilter"},
            "client_error": {"()": "config.logging.ClientErrorFilter"},
            "redact": {"()": redact_filter},
        },
        "formatters": {
            "json": {"()": "config.logging.JsonFormatter"},
            "plain": {"()": "config.logging.PlainFormatter"},
        },
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "json" if fmt == "json" else "plain",
                "filters": ["request_id", "redact"],
            }
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            # Django's default handlers (a DEBUG console and mail_admins, neither with the
            # redaction filter: "Bad Request: /webhooks/<token>/" went out as it was) are
            # removed: django.* records reach root's console, redacted.
            "django": {"level": "INFO"},
            "django.request": {"level": "INFO", "filters": ["client_error"]},
            # runserver's request lines ("POST /webhooks/<token>/ 200"), through the same handler.
            "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
            # SQL logs never (they hold data).
            "django.db.backends": {"level": "WARNING"},
            "django_q": {"level": q_level},
            # urllib3 at DEBUG logs full URLs, which may hold provider credentials
            "urllib3": {"level": "WARNING"},
        },
    }
