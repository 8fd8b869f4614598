"""providers' system check: the keys that encrypt provider secrets at rest must be usable.

Registered by ProvidersConfig.ready(); runs with every `manage.py` command that checks (and
`check`), in every environment: a malformed or missing key would make every stored credential
unreadable.
"""

from __future__ import annotations

from django.conf import settings
from django.core import checks

from providers.crypto import validate_keys


def check_encryption_keys(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    errors = [
        checks.Error(p, hint="Fix FIELD_ENCRYPTION_KEYS in the environment.", id="loa.E001")
        for p in validate_keys(settings.FIELD_ENCRYPTION_KEYS)
    ]
    if not settings.FIELD_ENCRYPTION_KEYS:
        errors.append(
            checks.Error(
                "FIELD_ENCRYPTION_KEYS is empty: provider credentials cannot be stored.",
                id="loa.E001",
            )
        )
    return errors
