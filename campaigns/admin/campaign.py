"""Campaigns in the admin: the list, the campaign page (the live panel, history, replies), the
actions people take on a campaign (send, pause, resume, cancel, back to draft, retry failed
recipients: each a service of campaigns.engine.lifecycle or campaigns.drafts; send again the
messages whose outcome could not be proven: campaigns.engine.reconcile; a refusal becomes an
error message), the provider outage banner (campaigns.engine.outage) and the result exports. "Add campaign" opens the wizard (campaigns/admin/wizard/); the per-campaign
validation pages (validation.py) and the wizard's URLs hang under this admin's."""

from __future__ import annotations

import tempfile
from functools import partial

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import formats, timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from campaigns.admin.charts import timeline_chart
from campaigns.admin.downloads import audit_on_done, csv_download, download_stamp
from campaigns.admin.validation import validation_urls
from campaigns.admin.wizard.fallback import FallbackPages
from campaigns.admin.wizard.forms import speed_number
from campaigns.admin.wizard.testsend import (
    testsend_contacts_view,
    testsend_row,
    testsend_view,
)
from campaigns.admin.wizard.views import CampaignWizard
from campaigns.drafts import campaign_unschedule
from campaigns.engine.lifecycle import (
    campaign_cancel,
    campaign_pause,
    campaign_resume,
    campaign_retry_failed,
    campaign_send_now,
)
from campaigns.engine.outage import campaign_outage, pause_after
from campaigns.engine.reconcile import messages_resend_unknown
from campaigns.models import Campaign, CampaignEvent
from campaigns.privacy.models import AuditAction
from campaigns.privacy.services import audit_record
from campaigns.selectors.campaign import (
    campaign_allowed_actions,
    campaign_excluded_reasons,
    campaign_failure_reasons,
    campaign_preflight,
    campaign_replies,
    campaign_retryable_failures,
    campaign_send_timeline,
    campaign_stats,
    campaign_unproven_messages,
)
from campaigns.selectors.export import campaign_export_rows
from campaigns.selectors.export_xlsx import campaign_export_xlsx
from campaigns.selectors.fallback import campaign_recipient_steps, campaign_step_funnel
from campaigns.selectors.wizard import STEP_MAPPING
from campaigns.testsends import campaign_test_sends
from providers.shared.errors import Refused
from templates_app.formatting import FORMAT_CHOICES
from templates_app.rendering import SOURCE_CHOICES


class CampaignForm(forms.ModelForm):
    class Meta:
        model = Campaign
        fields = [
            "name",
            "channel",
            "template",
            "lists",
            "segments",
            "param_mapping",
            "content",
            "subject",
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


# Statuses after the send began: the campaign page is read-only (CampaignAdmin.
# has_change_permission); IN_FLIGHT ones still have drivers or reconciliation working on them.
STARTED = frozenset(set(Campaign.Status) - {Campaign.Status.DRAFT, Campaign.Status.SCHEDULED})
IN_FLIGHT = frozenset({Campaign.Status.RUNNING, Campaign.Status.PAUSED, Campaign.Status.SETTLING})


def _resend_unproven(*, campaign_id: int, user=None) -> int:
    """The campaign's messages whose outcome could not be proven, sent again (a person decided,
    after the confirmation page said they may arrive twice)."""
    ids = list(
        campaign_unproven_messages(campaign=Campaign(pk=campaign_id)).values_list("pk", flat=True)
    )
    return messages_resend_unknown(message_ids=ids)


class OriginFilter(admin.SimpleListFilter):
    """Campaigns built by people by default: each transactional API message is a one-recipient
    campaign of origin "api" (campaigns/api/), thousands a day, which would bury them. The API's
    own page (admin:api_overview) counts those by application and day."""

    title = _("origin")
    parameter_name = "origin"
    ALL = "all"

    def lookups(self, request, model_admin):
        return [
            (None, _("Campaigns")),
            (Campaign.Origin.API, _("API messages")),
            (self.ALL, _("All")),
        ]

    def choices(self, changelist):
        for value, label in self.lookup_choices:
            yield {
                "selected": self.value() == value,
                "query_string": changelist.get_query_string(
                    {self.parameter_name: value} if value else {}, [self.parameter_name]
                ),
                "display": label,
            }

    def queryset(self, request, queryset):
        value = self.value()
        if value == self.ALL:
            return queryset
        if value == Campaign.Origin.API:
            return queryset.filter(origin=Campaign.Origin.API)
        return queryset.filter(origin=Campaign.Origin.CAMPAIGN)


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
    list_filter = [OriginFilter, "status", "channel"]
    search_fields = ["name"]
    list_select_related = ["channel", "template"]
    autocomplete_fields = []
    filter_horizontal = ["lists", "segments"]
    inlines = [CampaignEventInline]
    readonly_fields = ["status", "reason", "created_by", "started_at", "finished_at"]

    def has_change_permission(self, request, obj=None):
        """A campaign that has started (running, paused, settling, completed, cancelled,
        failed) is a record: its page is read-only, with no field and no Save button, and Django
        refuses a POST to it (PermissionDenied); what may still happen to it are the actions on
        the page (action_view: pause, resume, cancel, retry, each per status and permission)."""
        if obj is not None and obj.status in STARTED:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        # A campaign still sending or settling cannot vanish under its drivers: cancel it first.
        if obj is not None and obj.status in IN_FLIGHT:
            return False
        return super().has_delete_permission(request, obj)

    @admin.display(description=_("Speed"))
    def speed_display(self, obj):
        rate = obj.rate_limit or obj.channel.account.rate_limit
        if not rate:
            return _("As fast as the provider answers")
        return _("{n} messages per second ({m} per minute)").format(
            n=speed_number(rate), m=speed_number(rate * 60)
        )

    def _draft_fieldsets(self, request, obj):
        """A draft's parameters as the table people read, changed with the wizard's own
        mapping step (linked); the JSON only behind "Advanced"."""
        fields = [
            f
            for f in super().get_fieldsets(request, obj)[0][1]["fields"]
            if f not in ("param_mapping", "mapping_display")
        ]
        parameters = {"fields": ["mapping_display"]}
        if self.has_change_permission(request, obj):
            parameters["description"] = format_html(
                '<a class="button" id="draft-mapping-wizard" href="{}">{}</a>',
                reverse("admin:campaigns_campaign_wizard", args=[obj.pk, STEP_MAPPING]),
                _("Change the parameters in the wizard"),
            )
        return [
            (None, {"fields": fields}),
            (_("Parameters"), parameters),
            (
                _("Advanced: the parameters as JSON"),
                {"fields": ["param_mapping"], "classes": ["collapse"]},
            ),
        ]

    def get_readonly_fields(self, request, obj=None):
        ro = list(self.readonly_fields)
        if obj is not None and obj.status == Campaign.Status.DRAFT:
            ro.append("mapping_display")  # beside the wizard's link (_draft_fieldsets)
        if obj is not None and obj.status != Campaign.Status.DRAFT:
            ro += [
                "channel",
                "template",
                "lists",
                "segments",
                "mapping_display",
                "content",
                "subject",
                "test_mode",
                "speed_display",
            ]
            if obj.status != Campaign.Status.SCHEDULED:
                ro.append("scheduled_at")
        return ro

    def get_fieldsets(self, request, obj=None):
        if obj is not None and obj.status == Campaign.Status.DRAFT:
            return self._draft_fieldsets(request, obj)
        if obj is None:
            return super().get_fieldsets(request, obj)
        # Once sent, the page is about following the campaign: what may still change comes
        # first (name, pace, time for a scheduled one); what was sent is a record.
        sent = ["channel", "template", "lists", "segments", "mapping_display", "test_mode"]
        if not obj.template_id:
            sent.insert(2, "content")
            if obj.channel.kind == "email":
                sent.insert(3, "subject")  # a free-text email's own
        pace = "rate_limit" if obj.status == Campaign.Status.SCHEDULED else "speed_display"
        return [
            (None, {"fields": ["name", "scheduled_at", pace]}),
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
        sources = dict(SOURCE_CHOICES)
        formats = dict(FORMAT_CHOICES)
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
                "<int:pk>/wizard/fallback/<int:position>/",
                wrap(FallbackPages(wizard).view),
                name="campaigns_campaign_wizard_fallback",
            ),
            path(
                "<int:pk>/wizard/count/",
                wrap(wizard.count_view),
                name="campaigns_campaign_wizard_count",
            ),
            path(
                "<int:pk>/test-send/",
                wrap(partial(testsend_view, self)),
                name="campaigns_campaign_test_send",
            ),
            path(
                "<int:pk>/test-send/contacts/",
                wrap(partial(testsend_contacts_view, self)),
                name="campaigns_campaign_test_send_contacts",
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
        "unschedule": (_("Back to draft"), campaign_unschedule),
        "send": (_("Send now"), campaign_send_now),
        "pause": (_("Pause"), campaign_pause),
        "resume": (_("Resume"), campaign_resume),
        "cancel": (_("Cancel the campaign"), campaign_cancel),
        "retry_failed": (_("Retry failed recipients"), campaign_retry_failed),
        "resend_unproven": (
            _("Send again the messages whose outcome could not be proven"),
            _resend_unproven,
        ),
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
                if action in _COUNTED:
                    self.message_user(request, *_counted_outcome(action, result, campaign))
                elif result is False or result is None:
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
            "preflight": campaign_preflight(campaign=campaign) if action == "send" else None,
            "retryable": campaign_retryable_failures(campaign=campaign).count()
            if action == "retry_failed"
            else None,
            "unproven": campaign_unproven_messages(campaign=campaign).count()
            if action == "resend_unproven"
            else None,
            "stats": campaign_stats(campaign=campaign),
            "title": _("{action}: {name}").format(action=label, name=campaign.name),
        }
        return TemplateResponse(request, "admin/campaigns/campaign/confirm_action.html", context)

    def progress_view(self, request, pk):
        """JSON for the live panel; ?full=1 adds the failure reasons and the timeline chart."""
        campaign = self._get_campaign(request, pk)
        data = campaign_stats(campaign=campaign)
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
        on_done = audit_on_done(
            request, action=AuditAction.EXPORT_CAMPAIGN, target=campaign, detail={"format": "csv"}
        )
        return csv_download(
            campaign_export_rows(campaign=campaign, on_done=on_done),
            name=f"campaign-{campaign.pk}",
        )

    def export_xlsx_view(self, request, pk):
        campaign = self._get_campaign(request, pk)
        # openpyxl's write-only mode streams rows to a temporary file, not to memory.
        fh = tempfile.TemporaryFile()  # noqa: SIM115 - FileResponse closes it
        rows = campaign_export_xlsx(campaign=campaign, fileobj=fh)
        # The results workbook (its "no receipt" rows are the missing-receipts export).
        audit_record(
            action=AuditAction.EXPORT_CAMPAIGN,
            request=request,
            target=campaign,
            rows=rows,
            detail={"format": "xlsx", "complete": True},
        )
        fh.seek(0)
        return FileResponse(
            fh,
            as_attachment=True,
            filename=f"campaign-{campaign.pk}-{download_stamp()}.xlsx",
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
            extra_context["replies"] = campaign_replies(campaign=campaign)
            # A fallback chain's funnel per step (one aggregate; only for a chained campaign).
            extra_context["funnel"] = campaign_step_funnel(campaign=campaign)
            if extra_context["funnel"] is not None:
                # Per recipient, which step reached them: a keyset page (?after=<message id>).
                after = request.GET.get("after", "")
                extra_context["recipient_steps"] = campaign_recipient_steps(
                    campaign=campaign,
                    # at most 18 digits: a bigint, whatever the address says
                    after=int(after) if after.isdigit() and len(after) <= 18 else 0,
                )
            extra_context["test_sends"] = [
                testsend_row(r) for r in campaign_test_sends(campaign=campaign)
            ]
        return super().change_view(request, object_id, form_url, extra_context)


# Actions that answer how many messages they moved, and what that means for the person.
_COUNTED = {"retry_failed", "resend_unproven"}


def _counted_outcome(action: str, n: int, campaign: Campaign) -> tuple[str, int]:
    if not n:
        return str(_("Nothing changed: no message to send again.")), messages.WARNING
    if action == "retry_failed":
        text = ngettext(
            "{n} failed recipient queued again.",
            "{n} failed recipients queued again.",
            n,
        )
    else:
        text = ngettext("{n} message will be sent again.", "{n} messages will be sent again.", n)
    text = text.format(n=n)
    if campaign.status == Campaign.Status.PAUSED:
        text += " " + str(_("The campaign is paused: they are sent when you resume it."))
    return text, messages.SUCCESS


def _allowed_actions(campaign: Campaign) -> list[str]:
    """The engine's allowed actions, plus "back to draft" for a scheduled campaign (to edit it
    in the wizard before its time comes)."""
    actions = list(campaign_allowed_actions(campaign=campaign))
    if campaign.status == Campaign.Status.SCHEDULED:
        actions.insert(0, "unschedule")
    return actions


def _charts_context(campaign: Campaign) -> dict:
    """The campaign page's live panel: counters (never COUNT(*)), failure reasons from the most
    recent failures, and a sampled timeline, so it renders fast at a million messages."""
    stats = campaign_stats(campaign=campaign)
    total = stats["messages"]  # recipients + a fallback chain's messages
    stats["pct"]["queued"] = round(100 * stats["queued"] / total, 1) if total else 0
    outage = campaign_outage(campaign)
    failures = campaign_failure_reasons(campaign=campaign)
    timeline = campaign_send_timeline(campaign=campaign)
    return {
        "campaign": campaign,
        "stats": stats,
        "failures": failures,
        "timeline": timeline_chart(timeline),
        "has_timeline": bool(timeline["buckets"]),
        "excluded": campaign_excluded_reasons(campaign=campaign),
        "outage": outage,
        "outage_pause_after": pause_after(),
        "outage_since": _since_label(outage.since) if outage else "",
        "unproven": campaign_unproven_messages(campaign=campaign).count(),
    }


def _since_label(when) -> str:
    """HH:MM in local time, with the day when it was not today."""
    local = timezone.localtime(when)
    if local.date() == timezone.localdate():
        return formats.time_format(local, "TIME_FORMAT")
    return formats.date_format(local, "DATETIME_FORMAT")
