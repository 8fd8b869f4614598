"""Encryption of provider secrets at rest.

Keys come from FIELD_ENCRYPTION_KEYS (newest first). MultiFernet decrypts with any listed key and
encrypts with the first, so rotation is: prepend the new key, run `manage.py rotate_secrets`,
then drop the old key.
"""

import json
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEYS is empty: provider secrets cannot be stored."
        )
    return MultiFernet([Fernet(k.encode() if isinstance(k, str) else k) for k in keys])


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS))


def encrypt_json(value: dict) -> str:
    if not value:
        return ""
    return fernet().encrypt(json.dumps(value, sort_keys=True).encode()).decode()


def decrypt_json(token: str) -> dict:
    if not token:
        return {}
    try:
        return json.loads(fernet().decrypt(token.encode()))
    except InvalidToken as exc:
        raise ImproperlyConfigured(
            "A stored provider secret cannot be decrypted with FIELD_ENCRYPTION_KEYS "
            "(was a key removed before `rotate_secrets` ran?)."
        ) from exc


def rotate(token: str) -> str:
    return fernet().rotate(token.encode()).decode() if token else token
