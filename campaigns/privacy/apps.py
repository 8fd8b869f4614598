from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PrivacyConfig(AppConfig):
    name = "campaigns.privacy"
    label = "privacy"
    verbose_name = _("Privacy")

    def ready(self) -> None:
        # Imported here: receivers import models, which Django loads after the app configs.
        from campaigns.privacy import receivers

        receivers.connect()
