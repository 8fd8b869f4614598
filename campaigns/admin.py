from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseRedirect, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from campaigns import (
    admin_contacts,  # noqa: F401  (registers the contact admins)
    selectors,
    services,
)
from campaigns.models import (
    Campaign,
    CampaignEvent,
    Message,
    MessageAttempt,
)
from campaigns.paginator import EstimatedCountPaginator


class CampaignForm(forms.ModelForm):
    class Meta:
        model = Campaign
        fields = [
            "name",
            "channel",
            "template",
            "lists",
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
    fields = ["created_at", "from_status", "to_status", "note", "user"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name_plural = _("History")

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    form = CampaignForm
    change_form_template = "admin/campaigns/campaign/change_form.html"
    list_display = [
        "name",
        "status",
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
    filter_horizontal = ["lists"]
    inlines = [CampaignEventInline]
    readonly_fields = ["status", "status_reason", "created_by", "started_at", "finished_at"]

    def get_readonly_fields(self, request, obj=None):
        ro = list(self.readonly_fields)
        if obj is not None and obj.status != Campaign.Status.DRAFT:
            ro += ["channel", "template", "lists", "param_mapping", "content", "test_mode"]
        return ro

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
        return [
            path(
                "<int:pk>/action/<str:action>/",
                wrap(self.action_view),
                name="campaigns_campaign_action",
            ),
            path(
                "<int:pk>/progress/", wrap(self.progress_view), name="campaigns_campaign_progress"
            ),
            path("<int:pk>/export/", wrap(self.export_view), name="campaigns_campaign_export"),
            *super().get_urls(),
        ]

    ACTIONS = {
        "send": (_("Send now"), services.campaign_send_now),
        "pause": (_("Pause"), services.campaign_pause),
        "resume": (_("Resume"), services.campaign_resume),
        "cancel": (_("Cancel"), services.campaign_cancel),
    }

    def action_view(self, request, pk, action):
        campaign = get_object_or_404(Campaign, pk=pk)
        if action not in self.ACTIONS:
            raise PermissionDenied
        if not request.user.has_perm("campaigns.send_campaign"):
            raise PermissionDenied
        label, func = self.ACTIONS[action]
        if request.method == "POST":
            try:
                func(campaign_id=campaign.pk, user=request.user)
                self.message_user(
                    request, _("{action}: done.").format(action=label), messages.SUCCESS
                )
            except ValidationError as exc:
                self.message_user(request, " ".join(exc.messages), messages.ERROR)
            return HttpResponseRedirect(
                reverse("admin:campaigns_campaign_change", args=[campaign.pk])
            )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "campaign": campaign,
            "action": action,
            "action_label": label,
            "preflight": selectors.campaign_preflight(campaign=campaign)
            if action == "send"
            else None,
            "title": _("{action}: {name}").format(action=label, name=campaign.name),
        }
        return TemplateResponse(request, "admin/campaigns/campaign/confirm_action.html", context)

    def progress_view(self, request, pk):
        campaign = get_object_or_404(Campaign, pk=pk)
        return JsonResponse(selectors.campaign_stats(campaign=campaign))

    def export_view(self, request, pk):
        campaign = get_object_or_404(Campaign, pk=pk)
        response = StreamingHttpResponse(
            selectors.campaign_export_rows(campaign=campaign),
            content_type="text/csv; charset=utf-8",
        )
        stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
        response["Content-Disposition"] = (
            f'attachment; filename="campaign-{campaign.pk}-{stamp}.csv"'
        )
        return response

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = extra_context or {}
        campaign = self.get_object(request, object_id)
        if campaign is not None:
            extra_context["stats"] = selectors.campaign_stats(campaign=campaign)
            extra_context["allowed_actions"] = selectors.campaign_allowed_actions(campaign=campaign)
            extra_context["recent_failures"] = selectors.campaign_recent_failures(campaign=campaign)
            extra_context["can_send"] = request.user.has_perm("campaigns.send_campaign")
        return super().change_view(request, object_id, form_url, extra_context)


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


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = [
        "phone",
        "campaign",
        "status",
        "error_code",
        "explained_error",
        "sent_at",
        "delivered_at",
        "read_at",
        "fee",
    ]
    list_filter = ["status", "error_class"]
    search_fields = ["=phone", "=provider_message_id", "=idempotency_key"]
    list_select_related = ["campaign"]
    raw_id_fields = ["campaign", "contact"]
    show_full_result_count = False
    paginator = EstimatedCountPaginator
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

    @admin.display(description=_("Meaning"))
    def explained_error(self, obj):
        from providers.errors import explain

        return explain(obj.error_code) if obj.error_code else ""

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        campaign = request.GET.get("campaign__id__exact")
        return qs.filter(campaign_id=campaign) if campaign and campaign.isdigit() else qs
