import json

from django.contrib import admin, messages
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from providers.shared.phone_display import phone_html
from providers.shared.phones import format_local
from webhooks.applier import webhook_event_reprocess
from webhooks.models import InboundMessage, WebhookEvent


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

    def has_reapply_permission(self, request) -> bool:
        """Re-applying writes (statuses, counters, opt-outs): the change permission, although
        nobody edits an event's fields (has_change_permission stays False for the form)."""
        opts = self.opts
        return request.user.has_perm(f"{opts.app_label}.change_{opts.model_name}")

    @admin.action(description=_("Re-apply the selected events"), permissions=["reapply"])
    def reapply(self, request, queryset):
        # Exactly the chosen events, each on its own (not whichever events are oldest).
        results = [
            webhook_event_reprocess(event_id=pk)
            for pk in queryset.order_by("pk").values_list("pk", flat=True)[:1000]
        ]
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
        "local_phone",
        "text",
        "opted_out",
        "opt_out_state",
        "contact",
    ]
    list_filter = ["opt_out_state", "account", "opted_out"]
    raw_id_fields = ["contact", "event"]
    list_select_related = ["account", "contact"]
    search_fields = ["=phone", "text"]
    show_full_result_count = False
    readonly_fields = ["phone_local_form"]

    @admin.display(description=_("phone"), ordering="phone")
    def local_phone(self, obj):
        """The local form (0912 345 678), the stored international form as its title."""
        return phone_html(obj.phone)

    @admin.display(description=_("Local form"))
    def phone_local_form(self, obj):
        return format_local(obj.phone) if obj.phone else "—"
