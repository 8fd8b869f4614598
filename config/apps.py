"""`config` as an app: connects the login lockout signals, the cache-table hook and the checks."""

from django.apps import AppConfig
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.db.models.signals import post_migrate


class LoaConfig(AppConfig):
    name = "config"
    label = "loa_config"
    verbose_name = "Loa"

    def ready(self) -> None:
        # Imported here, not at the top: config.security uses the admin's and auth's forms, which
        # need the app registry this module is loaded to fill. Importing it registers the checks.
        from config import security

        user_login_failed.connect(security.on_login_failed, dispatch_uid="loa_login_failed")
        user_logged_in.connect(security.on_logged_in, dispatch_uid="loa_logged_in")
        post_migrate.connect(security.ensure_cache_table, dispatch_uid="loa_cache_table")
