from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AutomationsConfig(AppConfig):
    """The automations room (campaigns/automations/): recurring, date-triggered and lunar sends.
    Its own app label, so its tables and migrations are its own; each run creates an ordinary
    campaign through the engine."""

    name = "campaigns.automations"
    label = "automations"
    verbose_name = _("Automations")
