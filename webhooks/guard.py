"""The guard in front of /webhooks/<token>/: the token's shape, the one not-found answer, and the
throttle on token guessing.

Tokens are 256 random bits and every bad token gets the same 404, so guessing cannot succeed;
the throttle keeps a flood of guesses from costing a database query each. Only tokens that
never belonged to any account count: an account that was deactivated while its provider still
calls back answers 404 too, and those callbacks come from the provider's addresses, which other
accounts' callbacks share, so they must never get the provider throttled.

Used by Django's path (`WebhookGuardMiddleware`, settings.MIDDLEWARE; the view's 404) and by the
WSGI fast path (webhooks/wsgi.py). The counters are config.security's fail-open cache counters.
"""

from __future__ import annotations

import logging
import re
import time

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, JsonResponse

from config.security import cache_call, cache_incr, key_hash
from providers.models import ProviderAccount

# The throttle's warnings and cache failures are security events, logged with the lockout's.
logger = logging.getLogger("loa.security")

# What providers.models.new_webhook_token() makes (secrets.token_urlsafe) fits this; anything
# else cannot be a token and is answered before any database work (a NUL byte, for one, makes
# PostgreSQL raise instead of finding nothing).
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
WEBHOOK_PREFIX = "/webhooks/"


def webhook_not_found() -> JsonResponse:
    """The one answer for a wrong, malformed or inactive token: nothing to enumerate."""
    return JsonResponse({"error": "not found"}, status=404)


# ---- the not-found throttle --------------------------------------------------------------------


def _limit() -> int:
    return int(getattr(settings, "LOA_WEBHOOK_NOT_FOUND_LIMIT", 50))


def webhook_throttle_enabled() -> bool:
    return _limit() > 0


_block_seen: dict[str, tuple[float, float]] = {}


def webhook_throttled_for(ip: str) -> int:
    """Seconds this address stays blocked. Remembered for 2 s per process: providers call back
    hundreds of times a second from a few addresses, and each lookup is a cache (database) read."""
    now = time.time()
    seen = _block_seen.get(ip)
    if seen is None or now - seen[0] > 2:
        until = cache_call(lambda: cache.get(f"loa:wh404:block:{key_hash(ip)}"), None)
        seen = (now, float(until) if until else 0.0)
        if len(_block_seen) > 10_000:
            _block_seen.clear()
        _block_seen[ip] = seen
    return max(0, int(seen[1] - now + 0.999)) if seen[1] else 0


def webhook_note_not_found(ip: str) -> None:
    """Count one unknown token from this address; block the address when the limit is reached."""
    window = int(getattr(settings, "LOA_WEBHOOK_NOT_FOUND_WINDOW", 600))
    limit = _limit()
    key = f"loa:wh404:count:{key_hash(ip)}"
    count = cache_call(lambda: cache_incr(key, window), 0)
    if count >= limit:
        until = time.time() + window
        cache_call(lambda: cache.set(f"loa:wh404:block:{key_hash(ip)}", until, window), None)
        _block_seen[ip] = (time.time(), until)
        cache_call(lambda: cache.delete(key), None)
        logger.warning(
            "webhook throttle: %s unknown tokens from one address; answering 429 for %s s",
            count,
            window,
            extra={"client_ip": ip},
        )


def webhook_token_ever_existed(token: str) -> bool:
    if not token or len(token) > 64:
        return False
    return ProviderAccount.objects.filter(webhook_token=token).exists()


# ---- Django's path ------------------------------------------------------------------------------


class WebhookGuardMiddleware:
    """Answer impossible webhook tokens at once, and slow down token guessing (module docstring)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith(WEBHOOK_PREFIX):
            return self.get_response(request)
        throttle = webhook_throttle_enabled()
        ip = request.META.get("REMOTE_ADDR", "")
        wait = webhook_throttled_for(ip) if throttle else 0
        if wait:
            response = JsonResponse({"error": "too many requests"}, status=429)
            response["Retry-After"] = str(wait)
            return response
        rest = request.path[len(WEBHOOK_PREFIX) :]
        token = rest[:-1] if rest.endswith("/") else rest
        if "/" not in token and not TOKEN_RE.match(token):
            if throttle:
                webhook_note_not_found(ip)
            return webhook_not_found()
        response = self.get_response(request)
        if throttle and response.status_code == 404 and not webhook_token_ever_existed(token):
            webhook_note_not_found(ip)
        return response
