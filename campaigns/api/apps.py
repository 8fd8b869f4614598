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
        _cache_invalidation_connect()
        # A key's creation is in the audit trail (campaigns.privacy), never its secret.
        post_save.connect(api_key_created_receiver, sender=ApiKey, dispatch_uid="privacy_api_key")


def _cache_invalidation_connect() -> None:
    """A change in this process to what campaigns.api.cache remembers clears it at once (other
    processes forget within LOA_API_CACHE_SECONDS)."""
    from django.db.models.signals import m2m_changed, post_delete, post_save

    from campaigns.api.cache import cache_clear
    from campaigns.api.models import ApiApplication, ApiKey
    from providers.models import Channel, ProviderAccount
    from templates_app.models import Template, TemplateParam

    for model in (ApiKey, ApiApplication, Channel, ProviderAccount, Template, TemplateParam):
        uid = f"api_cache_{model._meta.label_lower}"
        post_save.connect(cache_clear, sender=model, dispatch_uid=f"{uid}_save")
        post_delete.connect(cache_clear, sender=model, dispatch_uid=f"{uid}_delete")
    for through in (ApiKey.channels.through, ApiApplication.channels.through):
        m2m_changed.connect(cache_clear, sender=through, dispatch_uid=f"api_cache_{through}")
