"""The status callbacks' delivery log: read-only (it is a record of what the client was told and
answered), filtered per application, event and state, with a "resend" action over
services.callbacks_resend. Also hosts the "API messages" overview's URLs
(campaigns.api.overview.views), under this admin's URL prefix."""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.db.models import Q
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from campaigns.admin.paginators import EstimatedCountPaginator
from campaigns.api import statuses
from campaigns.api.callbacks.services import callbacks_resend
from campaigns.api.models import CallbackDelivery
from campaigns.api.overview import views as overview_views

State = CallbackDelivery.State
# The 202 answers "queued"; a message's later trip through "sending" is not called back.
NEVER_CALLED_BACK = {statuses.QUEUED, statuses.SENDING}


class StateFilter(admin.SimpleListFilter):
    title = _("state")
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return State.choices

    def queryset(self, request, queryset):
        value = self.value()
        open_ = Q(delivered_at__isnull=True, given_up_at__isnull=True)
        if value == State.PENDING:
            return queryset.filter(open_, attempts=0)
        if value == State.RETRYING:
            return queryset.filter(open_, attempts__gt=0)
        if value == State.DELIVERED:
            return queryset.filter(delivered_at__isnull=False)
        if value == State.GIVEN_UP:
            return queryset.filter(given_up_at__isnull=False)
        return queryset


class StatusFilter(admin.SimpleListFilter):
    """The API's statuses as choices (a DISTINCT over the whole log would scan it)."""

    title = _("status")
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [
            (s, overview_views.status_label(s))
            for s in statuses.PUBLIC_STATUSES
            if s not in NEVER_CALLED_BACK
        ]

    def queryset(self, request, queryset):
        return queryset.filter(status=self.value()) if self.value() else queryset


@admin.register(CallbackDelivery)
class CallbackDeliveryAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "application",
        "message_link",
        "event",
        "status",
        "state_badge",
        "attempts",
        "last_status_code",
        "last_error",
        "next_attempt_at",
        "created_at",
    ]
    list_filter = ["application", StateFilter, "event", StatusFilter]
    list_select_related = ["application", "api_message"]
    search_fields = ["=api_message__client_reference"]
    search_help_text = _("A client reference or an API message id.")
    list_per_page = 50
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    actions = ["resend"]
    readonly_fields = [
        "application",
        "message_link",
        "event",
        "status",
        "state_badge",
        "payload_pretty",
        "attempts",
        "last_attempt_at",
        "last_status_code",
        "last_error",
        "next_attempt_at",
        "retry_until",
        "delivered_at",
        "given_up_at",
        "created_at",
    ]
    fields = readonly_fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_resend_permission(self, request):
        # The log is read-only; re-queueing is its one write.
        return request.user.has_perm("api.change_callbackdelivery")

    def get_search_results(self, request, queryset, search_term):
        """A client reference, or an API message id (digits)."""
        term = search_term.strip()
        if not term:
            return queryset, False
        match = Q(api_message__client_reference=term)
        if term.isdigit() and len(term) < 19:
            match |= Q(api_message_id=int(term))
        return queryset.filter(match), False

    @admin.display(description=_("message"))
    def message_link(self, obj):
        msg = obj.api_message
        label = msg.client_reference or f"#{msg.pk}"
        url = reverse("admin:campaigns_message_change", args=[msg.message_id])
        return format_html('<a href="{}">{}</a>', url, label)

    @admin.display(description=_("state"))
    def state_badge(self, obj):
        return format_html(
            '<span class="loa-badge loa-cb-{}">{}</span>', obj.state, obj.get_state_display()
        )

    @admin.display(description=_("payload"))
    def payload_pretty(self, obj):
        return format_html(
            "<pre>{}</pre>", json.dumps(obj.payload, ensure_ascii=False, indent=2, sort_keys=True)
        )

    @admin.action(description=_("Send again"), permissions=["resend"])
    def resend(self, request, queryset):
        report = callbacks_resend(delivery_ids=list(queryset.values_list("pk", flat=True)))
        if report.queued:
            self.message_user(
                request,
                ngettext(
                    "%(n)d callback queued to be sent again now (retried for 24 hours if the "
                    "client does not answer 2xx).",
                    "%(n)d callbacks queued to be sent again now (retried for 24 hours if the "
                    "client does not answer 2xx).",
                    report.queued,
                )
                % {"n": report.queued},
                messages.SUCCESS,
            )
        if report.no_url:
            self.message_user(
                request,
                ngettext(
                    "%(n)d callback was not queued: its application has no callback URL.",
                    "%(n)d callbacks were not queued: their application has no callback URL.",
                    report.no_url,
                )
                % {"n": report.no_url},
                messages.WARNING,
            )

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path(
                "overview/",
                wrap(overview_views.OverviewView.as_view(admin_site=self.admin_site)),
                name="api_overview",
            ),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra = {"overview_url": reverse("admin:api_overview"), "now": timezone.now()}
        return super().changelist_view(request, {**extra, **(extra_context or {})})
