from django.apps import AppConfig
from django.core import checks
from django.utils.translation import gettext_lazy as _

from providers.checks import check_encryption_keys


class ProvidersConfig(AppConfig):
    name = "providers"
    verbose_name = _("Providers")

    def ready(self) -> None:
        checks.register(check_encryption_keys, checks.Tags.security)
