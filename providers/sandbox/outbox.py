"""The sandbox's outbox: callbacks the sandbox provider will deliver later, as a real provider would.

Its own module, beside the adapter rather than in providers/models.py, because the adapter writes
these rows and providers.models imports the registry, which imports the adapter: the model lives
below both. providers/models.py imports it so that Django registers it with the app's models.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class SandboxCallback(models.Model):
    """A callback the sandbox provider will deliver later, as a real provider would."""

    account = models.ForeignKey(
        "providers.ProviderAccount", on_delete=models.CASCADE, related_name="+"
    )
    due_at = models.DateTimeField(db_index=True)
    payload = models.JSONField()

    class Meta:
        app_label = "providers"
        verbose_name = _("sandbox callback")
        verbose_name_plural = _("sandbox callbacks")

    def __str__(self) -> str:
        return f"{self.account_id} @ {self.due_at}"
