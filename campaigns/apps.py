from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CampaignsConfig(AppConfig):
    name = "campaigns"
    verbose_name = _("Campaigns")

    def ready(self) -> None:
        """Fill the seams templates_app leaves for the room above it: pause campaigns when a sync
        finds their template unusable, and give the template preview real recipients."""
        # Imported here: these modules import models, which Django loads after the app configs.
        from campaigns.engine.validation import CampaignRecipients
        from campaigns.receivers import campaigns_pause_for_unusable_templates
        from templates_app.preview import recipient_source_install
        from templates_app.signals import templates_unusable

        templates_unusable.connect(
            campaigns_pause_for_unusable_templates,
            dispatch_uid="campaigns_pause_for_unusable_templates",
        )
        recipient_source_install(CampaignRecipients())
