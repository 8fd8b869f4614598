import tempfile

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, HttpResponseRedirect, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import formats, timezone
from django.utils.functional import cached_property
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from campaigns import (
    admin_contacts,  # noqa: F401  (registers the contact admins)
    dashboard,
    selectors,
    wizard,
)
from campaigns.engine.keys import idempotency_key_parse
from campaigns.engine.lifecycle import (
    campaign_cancel,
    campaign_pause,
    campaign_resume,
    campaign_send_now,
)
from campaigns.models import (
    Campaign,
    CampaignEvent,
    Contact,
    Message,
    MessageAttempt,
)
from campaigns.paginator import EstimatedCountPaginator
from campaigns.validation_admin import validation_urls
from campaigns.wizard import CampaignWizard
from providers.shared.errors import Refused
from providers.shared.phones import normalize_phone

_HAS_SEGMENTS = wizard.segments_enabled()


class CampaignForm(forms.ModelForm):
    class Meta:
        model = Campaign
        fields = [
            "name",
            "channel",
            "template",
            "lists",
            *(["segments"] if _HAS_SEGMENTS else []),
            "param_mapping",
            "content",
            "scheduled_at",
            "rate_limit",
            "test_mode",
        ]
        widgets = {"param_mapping": forms.Textarea(attrs={"rows": 6, "cols": 80})}
        help_texts = {
            "param_mapping": _(
                'For each template parameter: {"customer_name": {"source": "field", "value": "name"}, '
                '"order_code": {"source": "attribute", "value": "order"}, '
                '"shop": {"source": "constant", "value": "Loa"}}. '
                "Formats: trim, upper, amount, currency, date, title."
            ),
        }


class CampaignEventInline(admin.TabularInline):
    model = CampaignEvent
    fields = ["when", "from_label", "to_label", "note_text", "who"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name_plural = _("History")
    classes = ["loa-history"]

    def has_add_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("user")

    @admin.display(description=_("When"))
    def when(self, obj):
        return formats.date_format(timezone.localtime(obj.created_at), "SHORT_DATETIME_FORMAT")

    @admin.display(description=_("From"))
    def from_label(self, obj):
        return _status_label(obj.from_status)

    @admin.display(description=_("To"))
    def to_label(self, obj):
        return _status_label(obj.to_status)

    @admin.display(description=_("Note"))
    def note_text(self, obj):
        return obj.note_text() or "-"

    @admin.display(description=_("By"))
    def who(self, obj):
        return obj.user.get_username() if obj.user_id else _("Loa (automatic)")


def _status_label(value: str) -> str:
    try:
        return Campaign.Status(value).label
    except ValueError:
        return value or "-"


# The admin is the product: name it so.
admin.site.site_header = _("Loa · campaign manager")
admin.site.site_title = _("Loa")
admin.site.index_title = _("Dashboard")


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    form = CampaignForm
    change_form_template = "admin/campaigns/campaign/change_form.html"
    list_display = [
        "name",
        "status_badge",
        "channel",
        "template",
        "progress_bar",
        "total_count",
        "delivered_count",
        "read_count",
        "failed_count",
        "scheduled_at",
        "created_at",
    ]
    list_filter = ["status", "channel"]
    search_fields = ["name"]
    list_select_related = ["channel", "template"]
    autocomplete_fields = []
    filter_horizontal = ["lists", *(["segments"] if _HAS_SEGMENTS else [])]
    inlines = [CampaignEventInline]
    readonly_fields = ["status", "reason", "created_by", "started_at", "finished_at"]

    def get_readonly_fields(self, request, obj=None):
        ro = list(self.readonly_fields)
        if obj is not None and obj.status != Campaign.Status.DRAFT:
            ro += ["channel", "template", "lists", "mapping_display", "content", "test_mode"]
            if _HAS_SEGMENTS:
                ro.append("segments")
            if obj.status != Campaign.Status.SCHEDULED:
                ro.append("scheduled_at")
        return ro

    def get_fieldsets(self, request, obj=None):
        if obj is None or obj.status == Campaign.Status.DRAFT:
            return super().get_fieldsets(request, obj)
        # Once sent, the page is about following the campaign: what may still change comes
        # first (name, pace, time for a scheduled one); what was sent is a record.
        sent = ["channel", "template", "lists", "mapping_display", "test_mode"]
        if _HAS_SEGMENTS:
            sent.insert(3, "segments")
        if not obj.template_id:
            sent.insert(2, "content")
        return [
            (None, {"fields": ["name", "scheduled_at", "rate_limit"]}),
            (_("What is sent"), {"fields": sent}),
            (_("When"), {"fields": ["reason", "created_by", "started_at", "finished_at"]}),
        ]

    @admin.display(description=_("Status reason"))
    def reason(self, obj):
        return obj.reason_text() or "-"

    @admin.display(description=_("Parameters"))
    def mapping_display(self, obj):
        mapping = obj.param_mapping or {}
        if not mapping:
            return "-"
        sources = dict(wizard.SOURCE_CHOICES)
        formats = dict(wizard.FORMAT_CHOICES)
        rows = format_html_join(
            "",
            "<tr><th scope='row'><code>{}</code></th><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    name,
                    sources.get(spec.get("source"), spec.get("source", "")),
                    spec.get("value", ""),
                    formats.get(spec.get("format", ""), spec.get("format", "")) or "",
                )
                for name, spec in mapping.items()
                if isinstance(spec, dict)
            ),
        )
        return format_html('<table class="loa-mapping-display">{}</table>', rows)

    @admin.display(description=_("Status"), ordering="status")
    def status_badge(self, obj):
        return format_html(
            '<span class="loa-badge loa-badge-{}">{}</span>', obj.status, obj.get_status_display()
        )

    @admin.display(description=_("Progress"))
    def progress_bar(self, obj):
        return format_html(
            '<progress max="100" value="{}" aria-label="{}"></progress> {}%',
            obj.progress_percent,
            _("Progress"),
            obj.progress_percent,
        )

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    # ---- custom views (all wrapped in admin_view: login, staff and CSRF as every admin page) ----
    def get_urls(self):
        wrap = self.admin_site.admin_view
        wizard = CampaignWizard(self)
        return [
            path("wizard/", wrap(wizard.start_view), name="campaigns_campaign_wizard_start"),
            path(
                "<int:pk>/wizard/<int:step>/",
                wrap(wizard.step_view),
                name="campaigns_campaign_wizard",
            ),
            path(
                "<int:pk>/wizard/count/",
                wrap(wizard.count_view),
                name="campaigns_campaign_wizard_count",
            ),
            path(
                "<int:pk>/action/<str:action>/",
                wrap(self.action_view),
                name="campaigns_campaign_action",
            ),
            path(
                "<int:pk>/progress/", wrap(self.progress_view), name="campaigns_campaign_progress"
            ),
            path("<int:pk>/export/", wrap(self.export_view), name="campaigns_campaign_export"),
            path(
                "<int:pk>/export.xlsx",
                wrap(self.export_xlsx_view),
                name="campaigns_campaign_export_xlsx",
            ),
            *validation_urls(self.admin_site),
            *super().get_urls(),
        ]

    def add_view(self, request, form_url="", extra_context=None):
        """ "Add campaign" opens the wizard; the plain form stays reachable with ?plain=1."""
        if request.method == "GET" and "plain" not in request.GET and "_popup" not in request.GET:
            return HttpResponseRedirect(reverse("admin:campaigns_campaign_wizard_start"))
        return super().add_view(request, form_url, extra_context)

    ACTIONS = {
        "unschedule": (_("Back to draft"), wizard.campaign_unschedule),
        "send": (_("Send now"), campaign_send_now),
        "pause": (_("Pause"), campaign_pause),
        "resume": (_("Resume"), campaign_resume),
        "cancel": (_("Cancel the campaign"), campaign_cancel),
    }

    def _get_campaign(self, request, pk) -> Campaign:
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        return get_object_or_404(
            Campaign.objects.select_related(
                "channel__account", "channel__official_account", "template"
            ),
            pk=pk,
        )

    def action_view(self, request, pk, action):
        campaign = self._get_campaign(request, pk)
        if action not in self.ACTIONS:
            raise PermissionDenied
        if not request.user.has_perm("campaigns.send_campaign"):
            raise PermissionDenied
        label, func = self.ACTIONS[action]
        change_url = reverse("admin:campaigns_campaign_change", args=[campaign.pk])
        if action not in _allowed_actions(campaign):
            self.message_user(
                request,
                _("“{action}” is not possible while the campaign is {status}.").format(
                    action=label, status=campaign.get_status_display()
                ),
                messages.WARNING,
            )
            return HttpResponseRedirect(change_url)
        if request.method == "POST":
            try:
                result = func(campaign_id=campaign.pk, user=request.user)
                if result is False or result is None:
                    self.message_user(
                        request,
                        _("Nothing changed: the campaign moved on meanwhile."),
                        messages.WARNING,
                    )
                else:
                    self.message_user(
                        request, _("{action}: done.").format(action=label), messages.SUCCESS
                    )
            except Refused as exc:
                self.message_user(request, exc.message, messages.ERROR)
            return HttpResponseRedirect(change_url)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "campaign": campaign,
            "action": action,
            "action_label": label,
            "preflight": wizard.campaign_preflight(campaign=campaign) if action == "send" else None,
            "stats": selectors.campaign_stats(campaign=campaign),
            "title": _("{action}: {name}").format(action=label, name=campaign.name),
        }
        return TemplateResponse(request, "admin/campaigns/campaign/confirm_action.html", context)

    def progress_view(self, request, pk):
        """JSON for the live panel; ?full=1 adds the failure reasons and the timeline chart."""
        campaign = self._get_campaign(request, pk)
        data = selectors.campaign_stats(campaign=campaign)
        if request.GET.get("full"):
            campaign.refresh_from_db()
            data["panel"] = render_to_string(
                "admin/campaigns/campaign/_charts.html",
                _charts_context(campaign),
                request=request,
            )
        return JsonResponse(data)

    def export_view(self, request, pk):
        campaign = self._get_campaign(request, pk)
        response = StreamingHttpResponse(
            selectors.campaign_export_rows(campaign=campaign),
            content_type="text/csv; charset=utf-8",
        )
        stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
        response["Content-Disposition"] = (
            f'attachment; filename="campaign-{campaign.pk}-{stamp}.csv"'
        )
        return response

    def export_xlsx_view(self, request, pk):
        campaign = self._get_campaign(request, pk)
        # openpyxl's write-only mode streams rows to a temporary file, not to memory.
        fh = tempfile.TemporaryFile()  # noqa: SIM115 - FileResponse closes it
        selectors.campaign_export_xlsx(campaign=campaign, fileobj=fh)
        fh.seek(0)
        stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
        return FileResponse(
            fh,
            as_attachment=True,
            filename=f"campaign-{campaign.pk}-{stamp}.xlsx",
            content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = extra_context or {}
        campaign = self.get_object(request, object_id)
        if campaign is not None:
            extra_context.update(_charts_context(campaign))
            extra_context["allowed_actions"] = [
                (a, self.ACTIONS[a][0]) for a in _allowed_actions(campaign)
            ]
            extra_context["can_send"] = request.user.has_perm("campaigns.send_campaign")
            extra_context["is_draft"] = campaign.status == Campaign.Status.DRAFT
            extra_context["can_edit"] = self.has_change_permission(request, campaign)
            extra_context["show_save_and_add_another"] = False
            extra_context["replies"] = selectors.campaign_replies(campaign=campaign)
        return super().change_view(request, object_id, form_url, extra_context)


def _allowed_actions(campaign: Campaign) -> list[str]:
    """The engine's allowed actions, plus "back to draft" for a scheduled campaign (to edit it
    in the wizard before its time comes)."""
    actions = list(selectors.campaign_allowed_actions(campaign=campaign))
    if campaign.status == Campaign.Status.SCHEDULED:
        actions.insert(0, "unschedule")
    return actions


def _charts_context(campaign: Campaign) -> dict:
    """The campaign page's live panel: counters (never COUNT(*)), failure reasons from the most
    recent failures, and a sampled timeline, so it renders fast at a million messages."""
    stats = selectors.campaign_stats(campaign=campaign)
    total = stats["total"]
    stats["pct"]["queued"] = round(100 * stats["queued"] / total, 1) if total else 0
    failures = selectors.campaign_failure_reasons(campaign=campaign)
    timeline = selectors.campaign_send_timeline(campaign=campaign)
    return {
        "campaign": campaign,
        "stats": stats,
        "failures": failures,
        "timeline": dashboard.timeline_chart(timeline),
        "has_timeline": bool(timeline["buckets"]),
        "excluded": wizard.excluded_reasons(campaign),
    }


class MessageAttemptInline(admin.TabularInline):
    model = MessageAttempt
    fields = [
        "created_at",
        "status_code",
        "duration_ms",
        "error_class",
        "error",
        "request_body",
        "response_body",
    ]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


class CampaignFilter(admin.SimpleListFilter):
    """Messages of one campaign. Offers the recent campaigns (never all of them: the sidebar must
    not grow with the history) plus the one selected."""

    title = _("campaign")
    parameter_name = "campaign__id__exact"
    RECENT = 15

    def lookups(self, request, model_admin):
        recent = list(
            Campaign.objects.order_by("-created_at").values_list("pk", "name")[: self.RECENT]
        )
        chosen = self.value()
        if chosen and chosen.isdigit() and int(chosen) not in {pk for pk, _name in recent}:
            recent += list(Campaign.objects.filter(pk=int(chosen)).values_list("pk", "name"))
        return [(str(pk), name) for pk, name in recent]

    def queryset(self, request, queryset):
        value = self.value()
        if value and value.isdigit():
            return queryset.filter(campaign_id=int(value))
        return queryset


class ErrorClassFilter(admin.SimpleListFilter):
    """The engine's error classes, from the enum: the automatic filter would run a DISTINCT over
    every message to discover five known values."""

    title = _("error class")
    parameter_name = "error_class__exact"

    def lookups(self, request, model_admin):
        from providers.base import ErrorClass

        labels = {
            ErrorClass.RETRYABLE: _("Retryable"),
            ErrorClass.AMBIGUOUS: _("Outcome unknown"),
            ErrorClass.DEFERRED: _("Deferred (quota, night)"),
            ErrorClass.PERMANENT: _("Permanent"),
            ErrorClass.CONFIGURATION: _("Configuration"),
        }
        return [(c.value, labels.get(c, c.value)) for c in ErrorClass]

    def queryset(self, request, queryset):
        return queryset.filter(error_class=self.value()) if self.value() else queryset


class CampaignCountPaginator(EstimatedCountPaginator):
    """When the list shows exactly one campaign's messages (or its failures), the campaign row
    already knows how many there are: no COUNT(*) over a million rows."""

    known_count: int | None = None

    @cached_property
    def count(self) -> int:
        if self.known_count is not None:
            return self.known_count
        return super().count


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = [
        "phone",
        "campaign",
        "status",
        "error",
        "sent_at",
        "delivered_at",
        "read_at",
        "fee",
    ]
    # 50 rows: rendering a row costs more than finding it; a million-row list stays fast.
    list_per_page = 50
    list_filter = [CampaignFilter, "status", ErrorClassFilter]
    # A phone and an idempotency key are searched in get_search_results, through indexes (the
    # message's own phone and key have none: a million-row materialization would pay for them).
    search_fields = ["=provider_message_id", "=error_code"]
    search_help_text = _(
        "A phone (any format), provider message id, idempotency key or error code (error codes: "
        "choose a campaign first)."
    )
    list_select_related = ["campaign"]
    raw_id_fields = ["campaign", "contact"]
    show_full_result_count = False
    paginator = CampaignCountPaginator
    inlines = [MessageAttemptInline]
    readonly_fields = [
        "campaign",
        "contact",
        "phone",
        "template_data",
        "idempotency_key",
        "provider_message_id",
        "status",
        "error_class",
        "error_code",
        "explained_error",
        "error_message",
        "fee",
        "attempts",
        "next_attempt_at",
        "claimed_at",
        "sent_at",
        "delivered_at",
        "read_at",
        "failed_at",
        "created_at",
        "updated_at",
    ]
    fields = readonly_fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        # Messages are the record of what was sent (and paid for): never deleted by hand.
        return False

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        ids = idempotency_key_parse(term)
        if ids is not None:
            found = queryset.filter(campaign_id=ids[0], contact_id=ids[1], idempotency_key=term)
            return found, False
        phone = normalize_phone(term, mobile_only=False) if term else None
        if phone is not None and phone.ok:
            # "Did this customer get our message?": the contact by its unique phone, then its
            # messages by the contact index (measured at 2M messages: 5.6 s scanning them, about 1 ms this way).
            contacts = Contact.objects.filter(phone=phone.phone).values_list("pk", flat=True)
            found = queryset.filter(contact_id__in=list(contacts), phone=phone.phone)
            return found, False
        return super().get_search_results(request, queryset, search_term)

    @admin.display(description=_("Meaning"))
    def explained_error(self, obj):
        from providers.errors import explain

        return explain(obj.error_code) if obj.error_code else ""

    @admin.display(description=_("Error"), ordering="error_code")
    def error(self, obj):
        if not obj.error_code:
            return ""
        from providers.errors import explain

        meaning = explain(obj.error_code)
        if not meaning:
            return obj.error_code
        return format_html("<code>{}</code> {}", obj.error_code, meaning)

    def get_paginator(self, request, queryset, per_page, orphans=0, allow_empty_first_page=True):
        paginator = super().get_paginator(
            request, queryset, per_page, orphans, allow_empty_first_page
        )
        paginator.known_count = _known_message_count(request.GET)
        return paginator


# Parameters that do not change which rows a changelist shows.
_NEUTRAL_PARAMS = {"p", "o", "_changelist_filters"}


def _known_message_count(params) -> int | None:
    """The campaign's own counter when the list is exactly "messages of campaign X" or "failed
    messages of campaign X"; None (count for real, with a timeout) for anything else."""
    keys = set(params) - _NEUTRAL_PARAMS
    campaign = params.get("campaign__id__exact", "")
    if not campaign.isdigit() or params.get("q"):
        return None
    counters = (
        Campaign.objects.filter(pk=int(campaign)).values("total_count", "failed_count").first()
    )
    if counters is None:
        return 0
    if keys == {"campaign__id__exact"}:
        return counters["total_count"]
    if keys == {"campaign__id__exact", "status__exact"} and params.get("status__exact") == "failed":
        return counters["failed_count"]
    return None
