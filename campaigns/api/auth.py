"""Who is calling: `Authorization: Bearer <key>` checked against the stored sha256 (constant-time
compare), the key's expiry and revocation, its application, its IP allow-list, the scope the
endpoint needs, the request's size and the key's rate. Every refusal is an ApiError.

last_used_at is written at most once a minute per key (a conditional UPDATE), not per request.
"""

from __future__ import annotations

import hmac
import ipaddress
import math
import time
from datetime import timedelta
from functools import lru_cache

from django.conf import settings
from django.core.cache import caches
from django.db.models import Q
from django.utils import timezone

from campaigns.api.cache import cached
from campaigns.api.errors import ApiError
from campaigns.api.models import PREFIX_LENGTH, ApiKey

LAST_USED_EVERY = timedelta(minutes=1)


def api_settings() -> dict:
    return settings.LOA


def request_size_check(request) -> None:
    """413 before anything reads the body: Content-Length above LOA_API_MAX_BODY."""
    limit = int(api_settings().get("API_MAX_BODY", 2_000_000))
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > limit:
        raise ApiError("body_too_large")


def key_authenticate(request, raw: str | None, scope: str) -> ApiKey:
    """The key of a request, checked; raises ApiError. Sets request.api_key."""
    request_size_check(request)
    if not raw:
        raise ApiError("unauthenticated")
    digest = ApiKey.hash(raw)
    # Remembered a few seconds per process (campaigns.api.cache): revocation, expiry and the
    # application's deactivation are honoured within LOA_API_CACHE_SECONDS.
    key = cached("key", digest, lambda: _key_load(raw, digest))
    if key is None:
        raise ApiError("invalid_key")
    now = timezone.now()
    if key.revoked_at is not None:
        raise ApiError("key_revoked")
    if key.expires_at is not None and key.expires_at <= now:
        raise ApiError("key_expired")
    if not key.application.active:
        raise ApiError("application_inactive")
    ip = request.META.get("REMOTE_ADDR", "")
    if key.allowed_ips.strip() and not ip_allowed(key.allowed_ips, ip):
        raise ApiError("ip_not_allowed", ip=ip)
    if scope not in (key.scopes or []):
        raise ApiError("scope_missing", scope=scope)
    rate_check(key.pk)
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_EVERY:
        ApiKey.objects.filter(pk=key.pk).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_EVERY)
        ).update(last_used_at=now)
        # The remembered key too: this process writes again in a minute, not every request.
        key.last_used_at = now
    request.api_key = key
    return key


def _key_load(raw: str, digest: str) -> ApiKey | None:
    candidates = (
        ApiKey.objects.select_related("application")
        .filter(prefix=raw[:PREFIX_LENGTH])
        .only(
            "id",
            "key_hash",
            "name",
            "scopes",
            "allowed_ips",
            "expires_at",
            "revoked_at",
            "last_used_at",
            "application__id",
            "application__name",
            "application__active",
        )[:5]
    )
    # The prefix narrows the lookup (indexed); the hash decides, compared in constant time.
    return next((k for k in candidates if hmac.compare_digest(k.key_hash, digest)), None)


@lru_cache(maxsize=256)
def _networks(text: str) -> tuple:
    nets = []
    for line in text.replace(",", "\n").splitlines():
        line = line.strip()
        if line:
            try:
                nets.append(ipaddress.ip_network(line, strict=False))
            except ValueError:
                continue  # the admin form refuses bad lines; an old row's bad line matches nothing
    return tuple(nets)


def ip_allowed(text: str, ip: str) -> bool:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(addr in net for net in _networks(text))


def allowed_ips_errors(text: str) -> list[str]:
    """Lines of an allow-list that are not an address or network (the admin form's check)."""
    bad = []
    for line in (text or "").replace(",", "\n").splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            ipaddress.ip_network(line, strict=False)
        except ValueError:
            bad.append(line)
    return bad


def _clock() -> float:
    return time.time()


def rate_check(key_id: int) -> None:
    """At most LOA_API_KEY_RATE requests per second per key (a one-second window counted in the
    "api" cache: Redis when configured, shared by every process; else this process's memory,
    so each web process counts on its own: docs/API.md says so). 429 with Retry-After."""
    rate = int(api_settings().get("API_KEY_RATE", 50))
    if rate <= 0:
        return
    cache = caches["api"]
    now = _clock()
    window = int(now)
    name = f"api-rl:{key_id}:{window}"
    if cache.add(name, 1, timeout=3):
        return
    try:
        count = cache.incr(name)
    except ValueError:  # expired between add and incr
        cache.add(name, 1, timeout=3)
        return
    if count > rate:
        retry = max(1, math.ceil(window + 1 - now))
        raise ApiError("rate_limited", retry_after=retry, headers={"Retry-After": str(retry)})
