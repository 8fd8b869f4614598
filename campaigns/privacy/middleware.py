"""The request being served, for the audit trail of services that are not given it.

Services such as campaign_send_now or a provider account's post_save receiver know the user but
not the request; the audit trail wants the address too. This middleware keeps the request in a
context variable for the time of the request (reset after, so a worker thread never sees a stale
one); campaigns.privacy.services.audit_record reads it when no request is passed.
"""

from __future__ import annotations

from contextvars import ContextVar

from django.http import HttpRequest, HttpResponse

current_request: ContextVar[HttpRequest | None] = ContextVar("loa_audit_request", default=None)


class AuditRequestMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = current_request.set(request)
        try:
            return self.get_response(request)
        finally:
            current_request.reset(token)
