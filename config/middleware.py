"""Request-level middleware: the client's real address, a request id, and the webhook throttle."""

from __future__ import annotations

import ipaddress
import re
import uuid

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from config.logging import request_id_var

# An incoming X-Request-ID is kept only if it is short and plain: it goes into every log line,
# so anything else (newlines, quotes, megabytes) would let a client forge or flood log records.
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def client_ip(meta: dict) -> str:
    """The client's address from a request's META (or a WSGI environ): REMOTE_ADDR, or the entry
    of X-Forwarded-For added by the last of TRUSTED_PROXY_COUNT reverse proxies. Only proxies we
    run are trusted: anything left of their entries was written by the client and may be forged."""
    remote = meta.get("REMOTE_ADDR", "") or ""
    hops = int(getattr(settings, "TRUSTED_PROXY_COUNT", 0) or 0)
    if hops <= 0:
        return remote
    forwarded = [p.strip() for p in meta.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    forwarded = [p for p in forwarded if p]
    candidate = forwarded[-hops] if len(forwarded) >= hops else (forwarded[0] if forwarded else "")
    try:
        # Only a real address: it is stored (WebhookEvent.remote_addr is an inet column on
        # PostgreSQL) and used as a cache key; a misconfigured proxy count must not let a client
        # put arbitrary text there.
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote


class ClientIpMiddleware:
    """Behind a reverse proxy, REMOTE_ADDR is the proxy: put the client's address there, so the
    login lockout, the webhook throttle and WebhookEvent.remote_addr see the real client."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if getattr(settings, "TRUSTED_PROXY_COUNT", 0):
            request.META["REMOTE_ADDR"] = client_ip(request.META)
        return self.get_response(request)


class RequestIdMiddleware:
    """Accept or create X-Request-ID; expose it on the request, the response and log records."""

    header = "HTTP_X_REQUEST_ID"

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.META.get(self.header, "")
        rid = incoming if _REQUEST_ID_RE.match(incoming) else uuid.uuid4().hex
        request.request_id = rid
        token = request_id_var.set(rid)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response["X-Request-ID"] = rid
        return response


# What providers.models.new_webhook_token() makes (secrets.token_urlsafe) fits this; anything
# else cannot be a token and is answered before any database work (a NUL byte, for one, makes
# PostgreSQL raise instead of finding nothing).
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
WEBHOOK_PREFIX = "/webhooks/"


def webhook_not_found() -> JsonResponse:
    # Byte for byte the answer of webhooks.views.receive for an unknown token.
    return JsonResponse({"error": "not found"}, status=404)


class WebhookGuardMiddleware:
    """Answer impossible webhook tokens at once, and slow down token guessing.

    Tokens are 256 random bits and every bad token gets the same 404, so guessing cannot succeed;
    the throttle keeps a flood of guesses from costing a database query each. Only tokens that
    never belonged to any account count: an account that was deactivated while its provider still
    calls back answers 404 too, and those callbacks come from the provider's addresses, which
    other accounts' callbacks share, so they must never get the provider throttled.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        from config import security

        if not request.path.startswith(WEBHOOK_PREFIX):
            return self.get_response(request)
        throttle = security.webhook_throttle_enabled()
        ip = request.META.get("REMOTE_ADDR", "")
        wait = security.webhook_throttled_for(ip) if throttle else 0
        if wait:
            response = JsonResponse({"error": "too many requests"}, status=429)
            response["Retry-After"] = str(wait)
            return response
        rest = request.path[len(WEBHOOK_PREFIX) :]
        token = rest[:-1] if rest.endswith("/") else rest
        if "/" not in token and not _TOKEN_RE.match(token):
            if throttle:
                security.webhook_note_not_found(ip)
            return webhook_not_found()
        response = self.get_response(request)
        if (
            throttle
            and response.status_code == 404
            and not security.webhook_token_ever_existed(token)
        ):
            security.webhook_note_not_found(ip)
        return response
