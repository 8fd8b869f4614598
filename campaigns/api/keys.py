"""Issuing secrets: an API key (shown once, stored as its sha256 and a short clear prefix) and an
application's status-callback secret (stored encrypted: the signer needs it in clear)."""

from __future__ import annotations

import secrets

from campaigns.api.models import PREFIX_LENGTH, ApiApplication, ApiKey


def key_issue(*, key: ApiKey) -> str:
    """Give an unsaved key its secret: sets prefix and hash, returns the key to show once."""
    raw = ApiKey.generate()
    key.prefix = raw[:PREFIX_LENGTH]
    key.key_hash = ApiKey.hash(raw)
    return raw


def key_create(
    *, application: ApiApplication, name: str, scopes: list[str], **fields
) -> tuple[ApiKey, str]:
    """A saved key and its secret (the admin uses key_issue; scripts and the benchmark this)."""
    key = ApiKey(application=application, name=name, scopes=scopes, **fields)
    raw = key_issue(key=key)
    key.save()
    return key, raw


def application_secret_new(*, application: ApiApplication) -> str:
    """A new status-callback secret for the application, saved encrypted; returned to show once."""
    secret = "whsec_" + secrets.token_urlsafe(32)
    application.callback_secret = secret
    application.save(update_fields=["callback_secret_encrypted"])
    return secret
