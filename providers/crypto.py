"""Encryption of provider secrets at rest.

Keys come from FIELD_ENCRYPTION_KEYS (newest first). MultiFernet decrypts with any listed key and
encrypts with the first, so rotation is: prepend the new key, run `manage.py rotate_secrets`,
then drop the old key (docs/OPERATIONS.md, "Key rotation").

Every secret value this process decrypts is also remembered (in memory only) so the logging
filter (providers/logfilter.py) can mask it wherever it shows up, even without a field name.
"""

import json
import threading
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

# Values shorter than this are not masked by value (they would mask ordinary words and digits);
# the field-name patterns of providers/redact.py still catch them.
MIN_MASKED_LENGTH = 6
_KNOWN_MAX = 10_000
_known: set[str] = set()
_known_lock = threading.Lock()


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEYS is empty: provider secrets cannot be stored."
        )
    return MultiFernet([_key(k) for k in keys])


def _key(k: str | bytes) -> Fernet:
    try:
        return Fernet(k.encode() if isinstance(k, str) else k)
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEYS holds a value that is not a Fernet key (32 url-safe base64 "
            "bytes; make one with `python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())'`)."
        ) from exc


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS))


def primary() -> Fernet:
    """The key new ciphertexts are made with (the first of FIELD_ENCRYPTION_KEYS)."""
    keys = tuple(settings.FIELD_ENCRYPTION_KEYS)
    if not keys:
        _fernet(keys)  # raises the clear message
    return _key(keys[0])


def validate_keys(keys: list[str] | tuple[str, ...]) -> list[str]:
    """Problems with a list of keys, in words (used by the system checks)."""
    problems = []
    for i, k in enumerate(keys):
        try:
            _key(k)
        except ImproperlyConfigured:
            problems.append(f"FIELD_ENCRYPTION_KEYS[{i}] is not a valid Fernet key.")
    return problems


def remember_secret_values(values) -> None:
    with _known_lock:
        if len(_known) > _KNOWN_MAX:
            _known.clear()
        for v in values:
            if isinstance(v, str) and len(v) >= MIN_MASKED_LENGTH:
                _known.add(v)


def known_secret_values() -> list[str]:
    """Secrets seen by this process, longest first (so a secret containing another is masked
    whole)."""
    with _known_lock:
        return sorted(_known, key=len, reverse=True)


def encrypt_json(value: dict) -> str:
    if not value:
        return ""
    remember_secret_values(value.values())
    return fernet().encrypt(json.dumps(value, sort_keys=True).encode()).decode()


def decrypt_json(token: str) -> dict:
    if not token:
        return {}
    try:
        value = json.loads(fernet().decrypt(token.encode()))
    except InvalidToken as exc:
        raise ImproperlyConfigured(
            "A stored provider secret cannot be decrypted with FIELD_ENCRYPTION_KEYS "
            "(was a key removed before `rotate_secrets` ran?)."
        ) from exc
    if isinstance(value, dict):
        remember_secret_values(value.values())
    return value


def is_current(token: str) -> bool:
    """True when `token` is already encrypted with the primary key (nothing to rotate)."""
    if not token:
        return True
    try:
        primary().decrypt(token.encode())
    except InvalidToken:
        return False
    return True


def rotate(token: str) -> str:
    """Re-encrypt with the primary key; raises ImproperlyConfigured if no key can decrypt it."""
    if not token:
        return token
    try:
        return fernet().rotate(token.encode()).decode()
    except InvalidToken as exc:
        raise ImproperlyConfigured(
            "A stored provider secret cannot be decrypted with any of FIELD_ENCRYPTION_KEYS."
        ) from exc
