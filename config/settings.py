"""Loa settings: everything that differs between machines comes from the environment.

Every variable read here is listed, with its default, in .env.example. `DJANGO_ENV=production`
turns on the hardened profile: no secret has a default there (SECRET_KEY, FIELD_ENCRYPTION_KEYS and
ALLOWED_HOSTS must be set or the process refuses to start), cookies are HTTPS-only, HSTS is on,
logs are JSON lines. `DJANGO_ENV=production python manage.py check --deploy` reports nothing.
Operations (deployment, backups, key rotation, monitoring): docs/OPERATIONS.md.
"""

from pathlib import Path

import environ
from django.utils.translation import gettext_lazy as _

from config.logging import logging_config

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# A local .env is a developer convenience; production reads the real environment only.
if (BASE_DIR / ".env").exists():
    env.read_env(str(BASE_DIR / ".env"))

DJANGO_ENV = env.str("DJANGO_ENV", default="development")
PRODUCTION = DJANGO_ENV == "production"

if PRODUCTION:
    SECRET_KEY = env.str("SECRET_KEY")  # no default: refuse to start without one
else:
    SECRET_KEY = env.str("SECRET_KEY", default="dev-insecure-loa-key-change-me-for-anything-public")
# Rotating SECRET_KEY: put the old one here (comma-separated) for a session lifetime, so
# sessions and password-reset links made with it stay valid (docs/OPERATIONS.md).
SECRET_KEY_FALLBACKS = env.list("SECRET_KEY_FALLBACKS", default=[])

DEBUG = env.bool("DEBUG", default=not PRODUCTION)
if PRODUCTION:
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS")  # no default: e.g. loa.example.com
else:
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
# Origins allowed to POST forms, e.g. https://loa.example.com (needed when the admin is served
# under another origin than the Host the proxy passes on).
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# Where providers reach our webhooks from the internet, e.g. https://loa.example.com. Required
# in production: a wrong default would send every provider callback to nowhere.
PUBLIC_BASE_URL = (
    env.str("PUBLIC_BASE_URL")
    if PRODUCTION
    # In development the webhook URLs shown in the admin follow the port the server listens on
    # (`PORT=8110 make run`; loa_serve passes its port to the processes it starts).
    else env.str("PUBLIC_BASE_URL", default=f"http://127.0.0.1:{env.str('PORT', default='8000')}")
).rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_q",
    # django-ninja: its templates and the Swagger UI files it ships (the API docs page loads no CDN).
    "ninja",
    "config.apps.LoaConfig",
    "providers",
    "templates_app",
    "campaigns",
    "campaigns.privacy",
    # The transactional REST API (campaigns/api/, /api/v1/).
    "campaigns.api",
    # The automations room (campaigns/automations/): its own app label and migrations.
    "campaigns.automations",
    "webhooks",
]

MIDDLEWARE = [
    # First, so every later line (even a security redirect) has the request id and real address.
    "config.middleware.RequestIdMiddleware",
    "config.middleware.ClientIpMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "webhooks.guard.WebhookGuardMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # The request for the audit trail of services that are not given it (its address, its user).
    "campaigns.privacy.middleware.AuditRequestMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "config" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'loa.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web and worker processes share one file: wait for the writer instead of failing at once,
    # and WAL lets readers (the admin) proceed while a worker writes.
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["OPTIONS"].update(
        {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DB_CONN_MAX_AGE", default=60))
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# ---- Cache -----------------------------------------------------------------------------------
# Shared by every process: the login lockout and the webhook throttle count here. A database
# table by default (one machine, or several on one PostgreSQL), Redis when REDIS_URL is set.
# `migrate` makes the table (config.security.ensure_cache_table, on post_migrate): `make run`
# needs no `createcachetable` of its own, which only said "already exists" on a new database.
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": env.str("CACHE_REDIS_URL", default="") or REDIS_URL,
            "KEY_PREFIX": "loa",
            "TIMEOUT": 300,
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "loa_cache",
            "TIMEOUT": 300,
            "OPTIONS": {"MAX_ENTRIES": 50_000},
        }
    }
# The API's per-key request counters (campaigns/api/auth.py): Redis when configured (shared by
# every web process), else each process's memory (no database write per request).
CACHES["api"] = (
    dict(CACHES["default"])
    if REDIS_URL
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "api"}
)
# django-q2's cluster statistics (with the ORM broker; the Redis broker keeps them in Redis).
# The guard loop saves them twice a second per cluster: kept in process memory on SQLite, so the
# single write lock serves the send engine, and shared through the database cache on PostgreSQL.
CACHES["qstats"] = (
    {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "qstats"}
    if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3"
    else dict(CACHES["default"])
)

# ModelBackend that first refuses locked username+address pairs (config/security.py).
AUTHENTICATION_BACKENDS = ["config.security.LockoutModelBackend"]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = env.str("LANGUAGE_CODE", default="vi")
LANGUAGES = [("vi", _("Vietnamese")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
FORMAT_MODULE_PATH = ["config.formats"]  # Vietnamese numbers 1.000.000 (config/formats/vi)
TIME_ZONE = env.str("TIME_ZONE", default="Asia/Ho_Chi_Minh")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(BASE_DIR / "media")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

# Uploads: Django itself has no maximum file size; ours is checked by the import form before
# the file is read, and the reverse proxy refuses bigger bodies before they reach us (nginx
# client_max_body_size, see docs/OPERATIONS.md: keep it a little above CONTACT_UPLOAD_MAX_BYTES).
CONTACT_UPLOAD_MAX_BYTES = env.int("CONTACT_UPLOAD_MAX_BYTES", default=200 * 1024 * 1024)
CONTACT_UPLOAD_MAX_ROWS = env.int("CONTACT_UPLOAD_MAX_ROWS", default=5_000_000)
# Files above this size are streamed to a temporary file on disk instead of memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = env.int("FILE_UPLOAD_MAX_MEMORY_SIZE", default=5 * 1024 * 1024)
FILE_UPLOAD_TEMP_DIR = env.str("FILE_UPLOAD_TEMP_DIR", default="") or None
FILE_UPLOAD_PERMISSIONS = 0o640
FILE_UPLOAD_DIRECTORY_PERMISSIONS = 0o750
# Non-file request bodies (forms, webhook JSON) are read into memory: 2.5 MB is Django's default
# and ten times the largest webhook we keep (webhooks.services.MAX_BODY = 256 KB).
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=2_621_440)
DATA_UPLOAD_MAX_NUMBER_FIELDS = 5000
DATA_UPLOAD_MAX_NUMBER_FILES = 10

# ---- django-q2 -------------------------------------------------------------------------------
# timeout < retry, always: the ORM broker re-presents a task after `retry` seconds, so a retry
# shorter than a task's run would start it twice (django-q2 docs). Our driver tasks stop
# themselves well inside `timeout` and re-enqueue, and correctness never depends on the queue.
Q_CLUSTER = {
    "name": "loa",
    "workers": env.int("Q_WORKERS", default=2),
    "timeout": env.int("Q_TIMEOUT", default=300),
    "retry": env.int("Q_RETRY", default=360),
    "max_attempts": 3,
    "save_limit": env.int("Q_SAVE_LIMIT", default=50),
    "ack_failures": True,
    "queue_limit": 50,
    "catch_up": False,  # a restored server must not replay every missed schedule tick
    # The admin's name for django-q2's app, in the reader's language ("Django Q2" was English).
    "label": _("Background tasks"),
    "sync": env.bool("Q_SYNC", default=False),
    "poll": 0.2,
    # Every cluster runs the scheduler by default: django-q2 reads due schedules under
    # SELECT ... FOR UPDATE, so one tick fires once however many clusters run. Q_SCHEDULER=false
    # on worker machines + one dedicated scheduler process is the other layout (Procfile).
    "scheduler": env.bool("Q_SCHEDULER", default=True),
    "cache": "qstats",
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

# ---- Loa behaviour ---------------------------------------------------------------------------
LOA = {
    # Messages claimed per driver round; the driver sends them concurrently then writes in bulk.
    "SEND_BATCH_SIZE": env.int("LOA_SEND_BATCH_SIZE", default=200),
    "SEND_CONCURRENCY": env.int("LOA_SEND_CONCURRENCY", default=16),
    # The share of a provider account's rate kept for API messages: campaigns on the account
    # send at most (1 - share) x its rate, so an API message never queues behind them.
    "API_RATE_SHARE": env.float("LOA_API_RATE_SHARE", default=0.1),
    # Requests per second per API key (429 beyond), and the largest request body (413 beyond).
    "API_KEY_RATE": env.int("LOA_API_KEY_RATE", default=50),
    "API_MAX_BODY": env.int("LOA_API_MAX_BODY", default=2_000_000),
    "API_BATCH_MAX": env.int("LOA_API_BATCH_MAX", default=1000),
    # How long an Idempotency-Key's first answer is replayed; after it the key is new again.
    "API_IDEMPOTENCY_HOURS": env.float("LOA_API_IDEMPOTENCY_HOURS", default=24),
    # Seconds a web process remembers an API key, its channels, templates and channels
    # (campaigns/api/cache.py): a revocation elsewhere is honoured within this; 0 turns it off.
    "API_CACHE_SECONDS": env.float("LOA_API_CACHE_SECONDS", default=5),
    # A driver task stops after this many seconds and re-enqueues itself (well below Q timeout).
    "DRIVER_TIME_BUDGET": env.int("LOA_DRIVER_TIME_BUDGET", default=60),
    "DRIVERS_PER_CAMPAIGN": env.int("LOA_DRIVERS_PER_CAMPAIGN", default=2),
    # PostgreSQL work_mem for building a campaign's messages (one transaction at a time): a
    # million recipients de-duplicated and joined in memory instead of spilled to disk.
    "MATERIALIZE_WORK_MEM": env.str("LOA_MATERIALIZE_WORK_MEM", default="256MB"),
    # Rows stuck in `sending` longer than this go to reconciliation, never blindly back to pending.
    "STUCK_SENDING_SECONDS": env.int("LOA_STUCK_SENDING_SECONDS", default=600),
    # How long the sandbox provider waits before "delivering" its simulated callbacks.
    "SANDBOX_CALLBACK_DELAY": env.float("LOA_SANDBOX_CALLBACK_DELAY", default=3.0),
    "HTTP_CONNECT_TIMEOUT": env.float("LOA_HTTP_CONNECT_TIMEOUT", default=5.0),
    "HTTP_READ_TIMEOUT": env.float("LOA_HTTP_READ_TIMEOUT", default=20.0),
    # Promotion (tag-3) messages only inside this local window (Decree 91/2020: 07:00-22:00).
    "QUIET_HOURS": env.str("LOA_QUIET_HOURS", default="07:00-22:00"),
    # At most N promotion messages per contact per day / per 7 days across campaigns (0 = no cap).
    "FREQUENCY_CAP_DAY": env.int("LOA_FREQUENCY_CAP_DAY", default=1),
    "FREQUENCY_CAP_WEEK": env.int("LOA_FREQUENCY_CAP_WEEK", default=3),
    # A scheduled campaign older than this does not fire by itself (a restored server must not
    # blast yesterday's campaign): it waits for a human.
    "SCHEDULE_GRACE_SECONDS": env.int("LOA_SCHEDULE_GRACE_SECONDS", default=3600),
    # Auto-pause when this share of messages fails, once this many were handled.
    "FAILURE_PAUSE_RATE": env.float("LOA_FAILURE_PAUSE_RATE", default=0.5),
    "FAILURE_PAUSE_MIN": env.int("LOA_FAILURE_PAUSE_MIN", default=50),
    # Poll the provider for `sent` messages with no receipt after this long.
    "RECONCILE_AFTER_MINUTES": env.int("LOA_RECONCILE_AFTER_MINUTES", default=30),
    # Resend an `unknown` message the provider positively has no record of, after this long.
    "RESEND_NOT_FOUND_AFTER_MINUTES": env.int("LOA_RESEND_NOT_FOUND_AFTER_MINUTES", default=10),
    # Connection failures in a row (refused, timed out: nothing reached the provider) after which
    # a campaign pauses as a provider outage (campaigns.engine.outage); the messages stay pending.
    "OUTAGE_PAUSE_AFTER": env.int("LOA_OUTAGE_PAUSE_AFTER", default=10),
    # Callbacks for messages never recorded are retried, then marked expired, after this long.
    "UNMATCHED_RETENTION_HOURS": env.int("LOA_UNMATCHED_RETENTION_HOURS", default=72),
    # Inbound replies that opt the contact out of the channel (compared without diacritics).
    "OPT_OUT_KEYWORDS": env.list(
        "LOA_OPT_OUT_KEYWORDS", default=["TU CHOI", "TUCHOI", "HUY", "STOP", "UNSUBSCRIBE"]
    ),
    # Test sends of a campaign (the wizard's review step) one user may make per local day.
    "TEST_SENDS_PER_DAY": env.int("LOA_TEST_SENDS_PER_DAY", default=5),
}

# ---- Data retention (manage.py purge_old_data, daily schedule) ----------------------------------
# Days to keep each kind of row; 0 keeps them forever. Messages are deleted only for campaigns
# that ended (completed or cancelled) that long ago; the campaign and its counters stay.
LOA_RETENTION_ATTEMPT_DAYS = env.int("LOA_RETENTION_ATTEMPT_DAYS", default=30)
LOA_RETENTION_WEBHOOK_DAYS = env.int("LOA_RETENTION_WEBHOOK_DAYS", default=90)
LOA_RETENTION_MESSAGE_DAYS = env.int("LOA_RETENTION_MESSAGE_DAYS", default=365)
# Replies and other inbound messages (a person's own words, their phone): deleted this many days
# after they arrived, except opt-out requests still waiting for a person to match them.
LOA_RETENTION_INBOUND_DAYS = env.int("LOA_RETENTION_INBOUND_DAYS", default=365)
LOA_RETENTION_BATCH_SIZE = env.int("LOA_RETENTION_BATCH_SIZE", default=2000)
# Messages of an ended campaign are purged by ranges of this many consecutive ids, each in its
# own short transaction (webhooks purge_old_data.messages_purge); an explicit batch size wins.
LOA_RETENTION_MESSAGE_SLICE = env.int("LOA_RETENTION_MESSAGE_SLICE", default=20000)
# Uploaded contact files and their error reports (personal data: names, phones) are deleted this
# many days after the import; the import row and its counts stay. 0 keeps them forever.
LOA_IMPORT_FILE_RETENTION_DAYS = env.int("LOA_IMPORT_FILE_RETENTION_DAYS", default=30)
# Raw webhook bodies (phones, reply texts) are blanked this many days after they arrived; the
# event row with its outcome and message link stays until LOA_RETENTION_WEBHOOK_DAYS.
LOA_WEBHOOK_BODY_RETENTION_DAYS = env.int("LOA_WEBHOOK_BODY_RETENTION_DAYS", default=14)
# The audit trail (campaigns.privacy: who viewed, exported, erased, sent...) is kept this many
# days, then removed by the daily purge (privacy_audit_purge). 0 keeps it forever.
LOA_AUDIT_RETENTION_DAYS = env.int("LOA_AUDIT_RETENTION_DAYS", default=400)

# ---- Erasure (campaigns.privacy.erasure) ---------------------------------------------------------
# The key of the HMAC that turns an erased phone into its token. Changing it makes every erased
# number importable again (the tokens no longer match): set it once, keep it with SECRET_KEY.
# Empty: derived from SECRET_KEY (so rotating SECRET_KEY has the same effect).
LOA_ERASURE_KEY = env.str("LOA_ERASURE_KEY", default="")
# Contacts per transaction of a bulk erase (bench/erase_contacts.py measured 2,000 and 5,000).
LOA_ERASURE_BATCH_SIZE = env.int("LOA_ERASURE_BATCH_SIZE", default=2000)

# ---- Security --------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=12 * 3600)  # a working day
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# Reverse proxies in front of the web processes (nginx = 1). The client's address is then read
# from X-Forwarded-For (config.middleware.ClientIpMiddleware); 0 = use the socket's address.
# Production assumes one proxy: with a proxy and 0, every client would share the proxy's address
# for the login lockout and the webhook throttle.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=1 if PRODUCTION else 0)
if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
    # Webhooks must answer providers over HTTPS too; the health endpoints stay reachable for a
    # load balancer probing the web process directly over HTTP.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]

# Login lockout (config/security.py): failures per username+address within the window lock the
# pair; failures per address (any username) lock the address.
LOGIN_LOCKOUT_FAILURES = env.int("LOGIN_LOCKOUT_FAILURES", default=5)
LOGIN_LOCKOUT_IP_FAILURES = env.int("LOGIN_LOCKOUT_IP_FAILURES", default=50)
LOGIN_LOCKOUT_WINDOW = env.int("LOGIN_LOCKOUT_WINDOW", default=900)
LOGIN_LOCKOUT_SECONDS = env.int("LOGIN_LOCKOUT_SECONDS", default=900)
# Unknown webhook tokens per address within the window before /webhooks/ answers 429 (0 = off).
LOA_WEBHOOK_NOT_FOUND_LIMIT = env.int("LOA_WEBHOOK_NOT_FOUND_LIMIT", default=50)
LOA_WEBHOOK_NOT_FOUND_WINDOW = env.int("LOA_WEBHOOK_NOT_FOUND_WINDOW", default=600)
# Refused callbacks (malformed, too large) per account within the window before /webhooks/
# answers 429 and stops storing them (0 = off); accepted callbacks are never limited.
LOA_WEBHOOK_REFUSED_LIMIT = env.int("LOA_WEBHOOK_REFUSED_LIMIT", default=60)
LOA_WEBHOOK_REFUSED_WINDOW = env.int("LOA_WEBHOOK_REFUSED_WINDOW", default=600)

# Provider addresses carry the account's secrets with every call: only https:// ones are accepted
# (account form and transport), unless this is true, for a test environment whose fake provider
# listens on http (the test settings, the e2e workers and bench set it). Default: true only in
# development with DEBUG on.
LOA_ALLOW_HTTP_PROVIDER_URLS = env.bool(
    "LOA_ALLOW_HTTP_PROVIDER_URLS", default=DEBUG and not PRODUCTION
)

# Keys that encrypt provider secrets at rest (comma-separated, newest first; see OPERATIONS.md).
if PRODUCTION:
    FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS")  # no default in production
else:
    FIELD_ENCRYPTION_KEYS = env.list(
        "FIELD_ENCRYPTION_KEYS", default=["ZGV2LW9ubHktbG9hLWZpZWxkLWtleS0wMDAwMDAwMDA="]
    )

# JSON lines in production (one object per record, with request_id), plain text in development
# (config/logging.py); both pass through the redaction filter. That filter knows the secrets, so
# it lives in providers: named here by its dotted path, Django's normal way to plug an app's
# class into the configuration (as INSTALLED_APPS and MIDDLEWARE do), so config imports no app.
LOG_FORMAT = env.str("LOG_FORMAT", default="json" if PRODUCTION else "plain")
LOGGING = logging_config(
    fmt=LOG_FORMAT,
    level=env.str("LOG_LEVEL", default="INFO").upper(),
    q_level=env.str("Q_LOG_LEVEL", default="WARNING").upper(),
    redact_filter="providers.logfilter.RedactFilter",
)
