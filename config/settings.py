"""Loa settings: everything that differs between machines comes from the environment.

Every variable read here is listed, with its default, in .env.example. `DJANGO_ENV=production`
turns on the hardened profile: no secret has a default there, cookies are HTTPS-only, HSTS is on.
"""

from pathlib import Path

import environ
from django.utils.translation import gettext_lazy as _

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

DEBUG = env.bool("DEBUG", default=not PRODUCTION)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[] if PRODUCTION else ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# Where providers reach our webhooks from the internet, e.g. https://loa.example.com
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_q",
    "providers",
    "templates_app",
    "campaigns",
    "webhooks",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
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

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = env.str("LANGUAGE_CODE", default="vi")
LANGUAGES = [("vi", _("Vietnamese")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env.str("TIME_ZONE", default="Asia/Ho_Chi_Minh")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
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

# Uploads: Django itself has no maximum size; ours is checked before a file is read.
CONTACT_UPLOAD_MAX_BYTES = env.int("CONTACT_UPLOAD_MAX_BYTES", default=200 * 1024 * 1024)
CONTACT_UPLOAD_MAX_ROWS = env.int("CONTACT_UPLOAD_MAX_ROWS", default=5_000_000)
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FIELDS = 5000

# ---- django-q2 -------------------------------------------------------------------------------
# timeout < retry, always: the ORM broker re-presents a task after `retry` seconds, so a retry
# shorter than a task's run would start it twice (django-q2 docs). Our driver tasks stop
# themselves well inside `timeout` and re-enqueue, and correctness never depends on the queue.
REDIS_URL = env.str("REDIS_URL", default="")
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
    "label": "Django Q2",
    "sync": env.bool("Q_SYNC", default=False),
    "poll": 0.2,
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
    # A driver task stops after this many seconds and re-enqueues itself (well below Q timeout).
    "DRIVER_TIME_BUDGET": env.int("LOA_DRIVER_TIME_BUDGET", default=60),
    "DRIVERS_PER_CAMPAIGN": env.int("LOA_DRIVERS_PER_CAMPAIGN", default=2),
    # Rows stuck in `sending` longer than this go to reconciliation, never blindly back to pending.
    "STUCK_SENDING_SECONDS": env.int("LOA_STUCK_SENDING_SECONDS", default=600),
    # How long the sandbox provider waits before "delivering" its simulated callbacks.
    "SANDBOX_CALLBACK_DELAY": env.float("LOA_SANDBOX_CALLBACK_DELAY", default=3.0),
    "HTTP_CONNECT_TIMEOUT": env.float("LOA_HTTP_CONNECT_TIMEOUT", default=5.0),
    "HTTP_READ_TIMEOUT": env.float("LOA_HTTP_READ_TIMEOUT", default=20.0),
}

# ---- Security --------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    # Webhooks must answer providers over HTTPS too; /healthz stays reachable for the proxy.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]

# Keys that encrypt provider secrets at rest (comma-separated, newest first; see OPERATIONS.md).
FIELD_ENCRYPTION_KEYS = env.list(
    "FIELD_ENCRYPTION_KEYS",
    default=[] if PRODUCTION else ["ZGV2LW9ubHktbG9hLWZpZWxkLWtleS0wMDAwMDAwMDA="],
)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "django_q": {"level": env.str("Q_LOG_LEVEL", default="WARNING")},
    },
}
