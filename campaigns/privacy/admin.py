"""The privacy room's admin: the audit trail and the consent history, both read-only.

Append-only means the admin offers no add, change or delete, to anyone, superusers included:
has_*_permission return False whatever the user's permissions, so the add and delete pages and a
POST to a change page answer 403. Only the retention purge (LOA_AUDIT_RETENTION_DAYS) removes
audit events.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django import forms
from django.contrib import admin
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from campaigns.privacy.models import AuditEvent, ConsentRecord


class ReadOnlyAdmin(admin.ModelAdmin):
    """No add, change or delete for anyone; viewing needs the model's view permission."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_actions(self, request):
        return {}  # not even "delete selected"


class DateRangeForm(forms.Form):
    since = forms.DateField(label=_("From"), required=False, input_formats=["%Y-%m-%d", "%d/%m/%Y"])
    until = forms.DateField(label=_("To"), required=False, input_formats=["%Y-%m-%d", "%d/%m/%Y"])


class DateRangeFilter(admin.SimpleListFilter):
    """From / to dates (local days, both included), typed in the box above the list."""

    title = _("date range")
    parameter_name = "range"
    template = "admin/privacy/date_range_filter.html"

    def __init__(self, request, params, model, model_admin):
        self.form = DateRangeForm(
            {k: params.pop(k)[-1] for k in ("since", "until") if k in params} or None
        )
        # The other filters and the search, kept when the dates are submitted.
        self.preserved = [
            (k, v)
            for k, values in request.GET.lists()
            if k not in ("since", "until", "p")
            for v in values
        ]
        super().__init__(request, params, model, model_admin)

    def has_output(self) -> bool:
        return True

    def expected_parameters(self):
        return ["since", "until"]

    def lookups(self, request, model_admin):
        return ()

    def choices(self, changelist):
        return []

    def queryset(self, request, queryset):
        if not self.form.is_bound or not self.form.is_valid():
            return queryset
        tz = timezone.get_current_timezone()
        since, until = self.form.cleaned_data["since"], self.form.cleaned_data["until"]
        if since:
            queryset = queryset.filter(
                at__gte=timezone.make_aware(datetime.combine(since, time()), tz)
            )
        if until:
            end = datetime.combine(until + timedelta(days=1), time())
            queryset = queryset.filter(at__lt=timezone.make_aware(end, tz))
        return queryset


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = [
        "at",
        "actor_label",
        "action",
        "target_type",
        "target_label",
        "rows",
        "ip_address",
    ]
    list_filter = [DateRangeFilter, "action"]
    search_fields = ["actor_label", "target_label", "=target_id", "=action"]
    search_help_text = _(
        "Search by user name, what was looked at or exported (a contact's phone or name, a "
        "campaign's name), its id, or an action code such as export.contacts."
    )
    # No date_hierarchy: its drill-down reads every event's date (a full scan of a table that
    # holds a year of contact views); the from/to filter uses the index on "at".
    fields = [
        "at",
        "actor",
        "actor_label",
        "action",
        "target_type",
        "target_id",
        "target_label",
        "rows",
        "ip_address",
        "detail",
    ]
    readonly_fields = fields
    show_full_result_count = False
    list_per_page = 100
    ordering = ["-at", "-id"]


@admin.register(ConsentRecord)
class ConsentRecordAdmin(ReadOnlyAdmin):
    """The consent history of every contact (a contact's own is on its page)."""

    list_display = [
        "at",
        "contact",
        "channel_kind",
        "purpose",
        "granted",
        "source",
        "file_name",
        "actor_label",
    ]
    list_filter = ["purpose", "granted", "source", "channel_kind"]
    list_select_related = ["contact"]
    search_fields = ["=contact__phone", "file_name", "actor_label"]
    search_help_text = _("Search by phone as stored (84…), import file name or user name.")
    fields = [
        "contact",
        "channel_kind",
        "purpose",
        "granted",
        "at",
        "source",
        "contact_import",
        "file_name",
        "note",
        "actor_label",
    ]
    readonly_fields = fields
    show_full_result_count = False
    ordering = ["-id"]  # insertion order: no index on "at" to maintain per imported row


from campaigns.privacy import admin_erasure  # noqa: E402, F401 - bulk erases
