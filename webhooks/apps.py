from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = _("Webhooks")

    def ready(self) -> None:
        from webhooks.privacy import privacy_connect  # app loading: it imports models
        from webhooks.receivers import receivers_connect  # app loading: it imports django_q.tasks

        receivers_connect()
        privacy_connect()  # erase: scrub events and replies; subject export: replies, callbacks
