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
        _privacy_connect()


def _privacy_connect() -> None:
    """An erase ends by rewriting the stored import files (campaigns.signals.erasure_finished);
    the subject-access export lists the imports that held the number."""
    # Imported here: these modules import models, which Django loads after the app configs.
    from django.utils.translation import gettext_lazy

    from campaigns.contacts.importing.redact import import_files_redact, subject_imports
    from campaigns.privacy.subject import subject_section_add
    from campaigns.signals import erasure_finished

    erasure_finished.connect(import_files_redact, dispatch_uid="campaigns.import_files_redact")
    subject_section_add("imports", gettext_lazy("Imports"), subject_imports)
