"""A few seconds of memory, per process, for what every POST of a message reads and rarely
changes: the key (its hash, scopes, expiry, revocation, application), the channels it may use,
the template, the channel and the template's parameters.

Without it a POST is a dozen SELECTs before its one INSERT; with it, one statement. The price:
a key revoked or expired, an application deactivated, a template unapproved or a channel
switched off in another process is honoured within LOA_API_CACHE_SECONDS (5) — docs/API.md
says so. A save or delete of one of those rows in this process clears the cache at once
(campaigns.api.apps connects the signals). LOA_API_CACHE_SECONDS=0 turns it off."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from django.conf import settings

T = TypeVar("T")
_MAX_ENTRIES = 10_000
_store: dict[tuple, tuple[float, object]] = {}


def cache_seconds() -> float:
    return float(settings.LOA.get("API_CACHE_SECONDS", 5))


def cached(name: str, key: object, load: Callable[[], T]) -> T:
    """load(), remembered for cache_seconds() under (name, key). Exceptions are not kept."""
    ttl = cache_seconds()
    if ttl <= 0:
        return load()
    now = time.monotonic()
    hit = _store.get((name, key))
    if hit is not None and hit[0] > now:
        return hit[1]  # type: ignore[return-value]
    value = load()
    if len(_store) >= _MAX_ENTRIES:
        _store.clear()  # many keys or templates: start over rather than track ages
    _store[(name, key)] = (now + ttl, value)
    return value


def cache_clear(*_args, **_kwargs) -> None:
    """Forget everything (a signal receiver too: any save of a key, template, channel...)."""
    _store.clear()
