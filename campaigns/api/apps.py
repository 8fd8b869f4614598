from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ApiConfig(AppConfig):
    name = "campaigns.api"
    label = "api"
    verbose_name = _("Transactional API")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """The engine announces API messages' status changes (campaigns.engine.signals); the
        status callbacks queue one outbox row per change."""
        # Imported here: the receivers import models, which Django loads after the app configs.
        from campaigns.api.callbacks.receivers import receivers_connect

        receivers_connect()
