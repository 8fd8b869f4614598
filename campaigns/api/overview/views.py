"""The API overview page (admin): thin; reads come from selectors.py."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views import View

from campaigns.api import statuses
from campaigns.api.models import ApiApplication
from campaigns.api.overview.selectors import (
    SEARCH_LIMIT,
    api_callbacks_health,
    api_daily_counts,
    api_messages_search,
)

DAY_CHOICES = (7, 14, 30, 90)


def _int(value, default=None):
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


class OverviewView(View):
    admin_site = None

    def get(self, request):
        if not (
            request.user.has_perm("api.view_apimessage")
            or request.user.has_perm("api.view_apiapplication")
        ):
            raise PermissionDenied
        days = _int(request.GET.get("days"), 14)
        days = days if days in DAY_CHOICES else 14
        applications = list(ApiApplication.objects.order_by("name").values_list("pk", "name"))
        app_id = _int(request.GET.get("application"))
        if app_id not in {pk for pk, _n in applications}:
            app_id = None
        term = request.GET.get("q", "")[:100]
        today = timezone.localdate()
        rows = api_daily_counts(days=days, today=today, application_id=app_id)
        results = api_messages_search(term=term, application_id=app_id) if term.strip() else None
        for m in results or []:
            # The API's words (the columns' and GET /api/v1/messages'), not the engine's.
            m.public_label = status_label(statuses.public_status(m.message.status))
        context = {
            **self.admin_site.each_context(request),
            "title": _("API messages"),
            "rows": rows,
            "callbacks": api_callbacks_health(days=days, today=today, application_id=app_id),
            "status_columns": [(s, status_label(s)) for s in statuses.PUBLIC_STATUSES],
            "days": days,
            "day_choices": DAY_CHOICES,
            "applications": applications,
            "application_id": app_id,
            "q": term,
            "results": results,
            "results_capped": results is not None and len(results) >= SEARCH_LIMIT,
            "search_limit": SEARCH_LIMIT,
            "totals": {
                "total": sum(r.total for r in rows),
                "cost": sum((r.cost for r in rows), 0),
            },
        }
        return TemplateResponse(request, "admin/api/overview.html", context)


def status_label(status: str) -> str:
    labels = {
        statuses.QUEUED: _("Queued"),
        statuses.SENDING: _("Sending"),
        statuses.SENT: _("Sent"),
        statuses.DELIVERED: _("Delivered"),
        statuses.READ: _("Read"),
        statuses.FAILED: _("Failed"),
        statuses.REJECTED: _("Rejected"),
        statuses.CANCELLED: _("Cancelled"),
    }
    return labels.get(status, status)
