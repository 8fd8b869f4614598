"""A campaign's parameter check in the admin: the JSON summary and the downloadable CSV of every
failing row (campaigns.engine.validation). Registered by CampaignAdmin.get_urls (campaign.py)
through `validation_urls`; each view wrapped in admin_site.admin_view. The URL names keep their
first home's prefix (templates_app_...), which the wizard's pages and the tests reverse."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.urls import URLPattern, path

from campaigns.admin.downloads import audit_on_done, csv_download
from campaigns.engine.validation import (
    campaign_validation_report_rows,
    campaign_validation_summary,
)
from campaigns.models import Campaign
from campaigns.privacy.models import AuditAction


def _campaign_for_validation(request: HttpRequest, campaign_id: int) -> Campaign:
    if not request.user.has_perm("campaigns.view_campaign"):
        raise PermissionDenied
    return get_object_or_404(Campaign.objects.select_related("template", "channel"), pk=campaign_id)


def validation_summary_view(request: HttpRequest, campaign_id: int) -> JsonResponse:
    campaign = _campaign_for_validation(request, campaign_id)
    return JsonResponse(campaign_validation_summary(campaign=campaign))


def validation_report_view(request: HttpRequest, campaign_id: int) -> StreamingHttpResponse:
    campaign = _campaign_for_validation(request, campaign_id)
    on_done = audit_on_done(request, action=AuditAction.EXPORT_VALIDATION, target=campaign)
    return csv_download(
        campaign_validation_report_rows(campaign=campaign, on_done=on_done),
        name=f"campaign-{campaign.pk}-validation",
    )


def validation_urls(admin_site) -> list[URLPattern]:
    """The two pages, for a ModelAdmin's get_urls (they live under the campaign admin's URLs)."""
    wrap = admin_site.admin_view
    return [
        path(
            "validation/<int:campaign_id>/summary/",
            wrap(validation_summary_view),
            name="templates_app_campaign_validation_summary",
        ),
        path(
            "validation/<int:campaign_id>/report.csv",
            wrap(validation_report_view),
            name="templates_app_campaign_validation_report",
        ),
    ]
