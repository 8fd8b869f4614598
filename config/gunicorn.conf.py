"""gunicorn settings for the web role: `gunicorn -c config/gunicorn.conf.py config.wsgi:application`
(what `make web-prod` and the Procfile's `web` line run).

Every value can be changed from the environment; the defaults fit a small VM behind nginx
(docs/OPERATIONS.md). Threads: the admin spends most of a request waiting on the database, and
gthread workers keep their heartbeat in the main thread, so a long streamed export does not get
the worker killed by `timeout`.
"""

import os
from pathlib import Path


def _int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, "") or default)
    except ValueError:
        return default


_cpus = os.cpu_count() or 1

# Behind nginx on the same machine by default; GUNICORN_BIND=0.0.0.0:8000 in a container.
bind = os.environ.get("GUNICORN_BIND") or (
    f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
)
# WEB_CONCURRENCY is the convention of Heroku-style platforms; cap the default so a big machine
# does not open hundreds of database connections (workers x threads, each may hold one).
workers = _int("WEB_CONCURRENCY", min(2 * _cpus + 1, 8))
threads = _int("GUNICORN_THREADS", 4)
worker_class = "gthread" if threads > 1 else "sync"
# A request (not a streamed export, see above) that takes longer than this is killed.
timeout = _int("GUNICORN_TIMEOUT", 60)
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)
keepalive = _int("GUNICORN_KEEPALIVE", 5)
# Recycle workers now and then: bounds the damage of any slow memory growth.
max_requests = _int("GUNICORN_MAX_REQUESTS", 2000)
max_requests_jitter = _int("GUNICORN_MAX_REQUESTS_JITTER", 200)
# Request line and header limits (gunicorn's defaults, stated so they are visible).
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190
# Only our own proxy may tell gunicorn the scheme; Django reads X-Forwarded-Proto itself
# (SECURE_PROXY_SSL_HEADER) and the client address through TRUSTED_PROXY_COUNT.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
# Heartbeat files in memory, not on a possibly slow disk (gunicorn docs, "Blocking OS calls").
if Path("/dev/shm").is_dir():
    worker_tmp_dir = "/dev/shm"

# gunicorn >= 25.1 opens a control socket at one fixed path per user, which a second gunicorn on
# the machine would fight over: opt in with GUNICORN_CONTROL_SOCKET=/run/loa/gunicorn.ctl.
if os.environ.get("GUNICORN_CONTROL_SOCKET"):
    control_socket = os.environ["GUNICORN_CONTROL_SOCKET"]
else:
    control_socket_disable = True

accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-")
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
# Plain-text access lines carry the request id set by config.middleware.RequestIdMiddleware
# (the response's X-Request-ID); the path without its query string, which may hold credentials.
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms rid=%({x-request-id}o)s "%(a)s"'

_production = os.environ.get("DJANGO_ENV", "development") == "production"
_json = os.environ.get("LOG_FORMAT", "json" if _production else "plain") == "json"


def _access_handler() -> dict:
    if accesslog in ("", "-"):
        return {"class": "logging.StreamHandler", "stream": "ext://sys.stdout"}
    return {"class": "logging.handlers.WatchedFileHandler", "filename": accesslog}


# gunicorn's own loggers through the redaction filter (providers/logfilter.py, named by its dotted
# path as in settings.LOGGING), in both formats: every access line holds a callback's path, and
# /webhooks/<token>/ carries the webhook token, the only credential of a callback (masked as
# /webhooks/***/); the query string may carry a provider's key. JSON lines (the access formatter
# reads gunicorn's atoms into fields) or gunicorn's plain lines.
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact": {"()": "providers.logfilter.RedactFilter"}},
    "formatters": {
        "json": {"()": "config.logging.JsonFormatter"},
        "access": {"format": "%(message)s"},
        "error": {
            "format": "%(asctime)s [%(process)d] [%(levelname)s] %(message)s",
            "datefmt": "[%Y-%m-%d %H:%M:%S %z]",
        },
    },
    "handlers": {
        "access": {
            **_access_handler(),
            "formatter": "json" if _json else "access",
            "filters": ["redact"],
        },
        "error": {
            "class": "logging.StreamHandler",
            "formatter": "json" if _json else "error",
            "filters": ["redact"],
            "stream": "ext://sys.stderr",
        },
    },
    "loggers": {
        "gunicorn.error": {
            "level": loglevel.upper(),
            "handlers": ["error"],
            "propagate": False,
        },
        "gunicorn.access": {
            "level": "INFO",
            "handlers": ["access"] if accesslog is not None else [],
            "propagate": False,
        },
    },
    "root": {"level": "INFO", "handlers": []},
}
