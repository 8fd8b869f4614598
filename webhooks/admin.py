import json

from django.contrib import admin, messages
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from webhooks.models import InboundMessage, WebhookEvent
from webhooks.services import webhook_event_reprocess


class ReadOnlyAdmin(admin.ModelAdmin):
    """Log tables: nobody adds or edits rows by hand."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdmin):
    list_display = ["received_at", "account", "method", "outcome", "outcome_detail", "message"]
    list_filter = ["outcome", "account", "method", ("received_at", admin.DateFieldListFilter)]
    list_select_related = ["account"]
    raw_id_fields = ["message"]
    show_full_result_count = False
    search_fields = ["=dedupe_key"]
    date_hierarchy = "received_at"
    fields = [
        "account",
        "received_at",
        "method",
        "remote_addr",
        "query",
        "pretty_body",
        "headers",
        "dedupe_key",
        "outcome",
        "outcome_detail",
        "message",
        "processed_at",
        "attempts",
    ]
    readonly_fields = fields
    actions = ["reapply"]

    @admin.display(description=_("Body"))
    def pretty_body(self, obj):
        try:
            text = json.dumps(json.loads(obj.body), indent=2, ensure_ascii=False)
        except (ValueError, TypeError):
            text = obj.body
        return format_html("<pre style='white-space:pre-wrap;max-width:60em'>{}</pre>", text)

    @admin.action(description=_("Re-apply the selected events"), permissions=["view"])
    def reapply(self, request, queryset):
        results = [webhook_event_reprocess(event_id=e.pk) for e in queryset[:1000]]
        self.message_user(
            request,
            _("{n} event(s) re-applied: {applied} applied, {other} other.").format(
                n=len(results),
                applied=results.count("applied"),
                other=len(results) - results.count("applied"),
            ),
            messages.SUCCESS,
        )


@admin.register(InboundMessage)
class InboundMessageAdmin(ReadOnlyAdmin):
    list_display = [
        "received_at",
        "account",
        "sender_name",
        "phone",
        "text",
        "opted_out",
        "contact",
    ]
    list_filter = ["account", "opted_out"]
    raw_id_fields = ["contact", "event"]
    list_select_related = ["account", "contact"]
    search_fields = ["=phone", "text"]
    show_full_result_count = False
