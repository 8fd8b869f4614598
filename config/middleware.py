"""Request-level middleware: the client's real address and a request id (the webhook guard is
webhooks/guard.py)."""

from __future__ import annotations

import ipaddress
import re
import uuid

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from config.logging import request_id_var

# An incoming X-Request-ID is kept only if it is short and plain: it goes into every log line,
# so anything else (newlines, quotes, megabytes) would let a client forge or flood log records.
REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def request_id_or_new(incoming: str) -> str:
    """The incoming X-Request-ID if REQUEST_ID_RE accepts it, else a new one. Also used by the
    webhook fast path (webhooks/wsgi.py), so both paths accept the same ids."""
    return incoming if REQUEST_ID_RE.match(incoming) else uuid.uuid4().hex


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
        rid = request_id_or_new(request.META.get(self.header, ""))
        request.request_id = rid
        token = request_id_var.set(rid)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response["X-Request-ID"] = rid
        return response
