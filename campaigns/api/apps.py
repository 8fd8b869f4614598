from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ApiConfig(AppConfig):
    name = "campaigns.api"
    label = "api"
    verbose_name = _("Transactional API")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """The engine announces API messages' status changes (campaigns.engine.signals); the
        status callbacks queue one outbox row per change. Creating a key is audited."""
        # Imported here: the receivers import models, which Django loads after the app configs.
        from django.db.models.signals import post_save

        from campaigns.api.callbacks.receivers import receivers_connect
        from campaigns.api.models import ApiKey
        from campaigns.privacy.receivers import api_key_created_receiver

        receivers_connect()
        # A key's creation is in the audit trail (campaigns.privacy), never its secret.
        post_save.connect(api_key_created_receiver, sender=ApiKey, dispatch_uid="privacy_api_key")
