"""WSGI entry point. Provider callbacks to /webhooks/<token>/ take a lean path in front of Django
(webhooks.wsgi explains why and what it hands over to Django)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_application = get_wsgi_application()

from webhooks.wsgi import WebhookFastPath  # noqa: E402  (needs the apps loaded above)

application = WebhookFastPath(django_application)
