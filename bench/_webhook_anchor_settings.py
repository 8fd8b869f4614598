"""Settings of the bench-only anchor of bench/webhooks.py: Loa's settings (same database, same
apps, same server setup) with the anchor's URLconf and the middleware `django-admin
startproject` writes, as a plain Django project would have. Never used by the product."""

from config.settings import *  # noqa: F403 - an override of the project's settings

ROOT_URLCONF = "bench._webhook_anchor"
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
