"""The WSGI fast path for provider callbacks.

Delivery reports arrive by the thousand per second after a big send, from a few provider
addresses, and each must be stored before it is answered. Through Django's full stack a callback
cost ~3.5 ms of CPU (eleven middleware, URL resolution, QueryDict, the ORM's INSERT machinery, an
account query): the two cores could not take more than a few hundred per second. This wrapper
answers `/webhooks/<token>/` for a known, active account itself and hands everything else to
Django unchanged: unknown or malformed tokens (Django's path counts them for the throttle and
answers 404), throttled addresses (429), a Host not in ALLOWED_HOSTS (400), plain HTTP when
HTTPS is required (redirect), other methods (405), bodies over the limit, and a body without a
length from a server that does not end the stream itself (411). A chunked body is read here.

What it does is what the Django view does, through the same service (webhooks.services.
webhook_receive): the same answers, the same stored rows, the same client address and request id.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from http import HTTPStatus

from django.conf import settings
from django.db import DatabaseError, connections
from django.http.request import split_domain_port, validate_host
from django.utils.crypto import constant_time_compare

from config.logging import request_id_var
from config.middleware import client_ip, request_id_or_new
from providers.models import ProviderAccount
from webhooks.guard import (
    TOKEN_RE,
    WEBHOOK_PREFIX,
    webhook_throttle_enabled,
    webhook_throttled_for,
)
from webhooks.services import KEPT_HEADERS, MAX_BODY, Answer, body_read, webhook_receive

logger = logging.getLogger("loa.webhooks")

# How long a token -> account lookup is reused in a process: an account deactivated or given a
# new token in the admin stops being answered here within this time (Django's path sees it at
# once, and the fast path then hands the request to it).
ACCOUNT_TTL = 10.0


class WebhookFastPath:
    def __init__(self, django_app):
        self.django_app = django_app
        self._accounts: dict[str, tuple[float, object]] = {}
        self._hosts: dict[str, bool] = {}
        self._lock = threading.Lock()
        self._headers = _static_headers()

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path.startswith(WEBHOOK_PREFIX) and environ.get("REQUEST_METHOD") in ("GET", "POST"):
            try:
                answered = self._answer(environ, start_response)
            finally:
                _connection_hygiene()
            if answered is not None:
                return answered
        return self.django_app(environ, start_response)

    # ---- the fast path -------------------------------------------------------------------------
    def _answer(self, environ, start_response):
        token = path_token(environ["PATH_INFO"])
        if token is None or not self._host_ok(environ) or not _scheme_ok(environ):
            return None
        content_length = environ.get("CONTENT_LENGTH") or ""
        if content_length:
            if not content_length.isdigit() or int(content_length) > MAX_BODY:
                return None
        elif environ.get("HTTP_TRANSFER_ENCODING") and not environ.get("wsgi.input_terminated"):
            return None  # a body whose end we cannot find: Django's path answers 411
        ip = client_ip(environ)
        if webhook_throttle_enabled() and webhook_throttled_for(ip):
            return None
        rid = request_id_or_new(environ.get("HTTP_X_REQUEST_ID", ""))
        try:
            account = self._account(token)
        except DatabaseError:
            logger.exception("webhook fast path: account lookup failed")
            unavailable = Answer(503, "unavailable", "Could not store the callback; retry later")
            return self._respond(environ, start_response, rid, unavailable)
        if account is None:
            return None
        # A chunked body (gunicorn and granian de-chunk it) is read here, within the size cap.
        body = body_read(environ, limit=MAX_BODY)
        headers = {name: environ[key] for name, key in _HEADER_KEYS if key in environ}
        ctx = request_id_var.set(rid)
        try:
            answer = webhook_receive(
                account=account,
                method=environ["REQUEST_METHOD"],
                query_string=environ.get("QUERY_STRING", ""),
                body=body,
                headers=headers,
                remote_addr=ip or None,
            )
        finally:
            request_id_var.reset(ctx)
        return self._respond(environ, start_response, rid, answer)

    def _respond(self, environ, start_response, rid: str, answer: Answer):
        payload = json.dumps(answer.payload()).encode()
        status = HTTPStatus(answer.status)
        headers = [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(payload))),
            ("X-Request-ID", rid),
            *self._headers,
        ]
        if settings.SECURE_HSTS_SECONDS and _is_secure(environ):
            headers.append(("Strict-Transport-Security", _hsts()))
        headers += answer.headers()
        start_response(f"{status.value} {status.phrase}", headers)
        return [payload]

    def _account(self, token: str):
        now = time.monotonic()
        hit = self._accounts.get(token)
        if hit and hit[0] > now:
            return hit[1]
        account = ProviderAccount.objects.filter(webhook_token=token, is_active=True).first()
        if account is None or not constant_time_compare(account.webhook_token, token):
            return None
        with self._lock:
            if len(self._accounts) > 1000:
                self._accounts.clear()
            self._accounts[token] = (now + ACCOUNT_TTL, account)
        return account

    def _host_ok(self, environ) -> bool:
        if settings.USE_X_FORWARDED_HOST and "HTTP_X_FORWARDED_HOST" in environ:
            return False
        host = environ.get("HTTP_HOST") or environ.get("SERVER_NAME", "")
        ok = self._hosts.get(host)
        if ok is None:
            domain, _port = split_domain_port(host)
            ok = bool(domain) and validate_host(domain, settings.ALLOWED_HOSTS)
            if len(self._hosts) < 100:
                self._hosts[host] = ok
        return ok


def _connection_hygiene() -> None:
    """Django's end-of-request care for connections, without its per-request health check (a
    `SELECT 1` round trip before every callback): drop a connection that raised an error, is in
    a broken state, or outlived CONN_MAX_AGE. A connection that died silently (a database
    restart) fails one callback with 503, is dropped here, and the provider's retry gets a new
    one."""
    for conn in connections.all(initialized_only=True):
        if conn.in_atomic_block:
            continue  # a transaction the caller owns (a test's): never ours to close
        if conn.errors_occurred or (
            conn.close_at is not None and time.monotonic() >= conn.close_at
        ):
            conn.close_if_unusable_or_obsolete()


def path_token(path: str) -> str | None:
    """The token of `/webhooks/<token>/`, or None for any other shape."""
    rest = path[len(WEBHOOK_PREFIX) :]
    if not rest.endswith("/"):
        return None
    token = rest[:-1]
    return token if TOKEN_RE.match(token) else None


def _scheme_ok(environ) -> bool:
    return not settings.SECURE_SSL_REDIRECT or _is_secure(environ)


def _is_secure(environ) -> bool:
    if environ.get("wsgi.url_scheme") == "https":
        return True
    header = settings.SECURE_PROXY_SSL_HEADER
    return bool(header) and environ.get(header[0]) == header[1]


def _hsts() -> str:
    # As django.middleware.security.SecurityMiddleware writes it.
    value = f"max-age={settings.SECURE_HSTS_SECONDS}"
    if settings.SECURE_HSTS_INCLUDE_SUBDOMAINS:
        value += "; includeSubDomains"
    if settings.SECURE_HSTS_PRELOAD:
        value += "; preload"
    return value


def _static_headers() -> list[tuple[str, str]]:
    """The headers Django's security middleware puts on every answer."""
    out = []
    if settings.SECURE_CONTENT_TYPE_NOSNIFF:
        out.append(("X-Content-Type-Options", "nosniff"))
    if settings.SECURE_REFERRER_POLICY:
        out.append(("Referrer-Policy", settings.SECURE_REFERRER_POLICY))
    if settings.SECURE_CROSS_ORIGIN_OPENER_POLICY:
        out.append(("Cross-Origin-Opener-Policy", settings.SECURE_CROSS_ORIGIN_OPENER_POLICY))
    out.append(("X-Frame-Options", settings.X_FRAME_OPTIONS))
    return out


def _environ_key(header: str) -> str:
    if header == "content-type":
        return "CONTENT_TYPE"
    return "HTTP_" + header.upper().replace("-", "_")


_HEADER_KEYS = [(h, _environ_key(h)) for h in KEPT_HEADERS]
