"""Admin for contacts, lists, imports and opt-outs (the Contact staff's rooms)."""

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from campaigns import services
from campaigns.models import Contact, ContactImport, ContactList, ContactListMembership, OptOut
from campaigns.paginator import EstimatedCountPaginator
from campaigns.text import fold


class OptOutInline(admin.TabularInline):
    model = OptOut
    fields = ["channel_kind", "reason", "source", "created_at"]
    readonly_fields = ["created_at"]
    extra = 0


class MembershipInline(admin.TabularInline):
    model = ContactListMembership
    fields = ["contact_list", "added_at"]
    readonly_fields = ["added_at"]
    extra = 0


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    list_display = ["phone", "name", "source", "created_at"]
    search_fields = ["search_text"]
    search_help_text = _("Search by name (accents optional: “nguyen” finds “Nguyễn”) or phone.")
    list_filter = [("opt_outs__channel_kind", admin.AllValuesFieldListFilter)]
    readonly_fields = ["source", "source_import", "source_row", "created_at", "updated_at"]
    fields = [
        "phone",
        "name",
        "attributes",
        "source",
        "source_import",
        "source_row",
        "created_at",
        "updated_at",
    ]
    inlines = [OptOutInline, MembershipInline]
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    list_per_page = 50

    def get_search_results(self, request, queryset, search_term):
        # One indexed column, folded the same way as the stored value; prefix match uses the index.
        term = fold(search_term).lower().strip()
        if not term:
            return queryset, False
        digits = "".join(ch for ch in term if ch.isdigit())
        if (
            digits
            and len(digits) >= 6
            and len(digits) == len(term.replace(" ", "").replace("+", ""))
        ):
            from providers.phones import normalize_phone

            phone = normalize_phone(term).phone or digits
            return queryset.filter(phone__startswith=phone), False
        return queryset.filter(search_text__contains=term), False

    def save_model(self, request, obj, form, change):
        obj.search_text = services.contact_search_key(obj)
        super().save_model(request, obj, form, change)


@admin.register(ContactList)
class ContactListAdmin(admin.ModelAdmin):
    list_display = ["name", "contact_count", "created_at", "import_link"]
    search_fields = ["name"]
    readonly_fields = ["contact_count", "created_at"]

    @admin.display(description=_("Upload"))
    def import_link(self, obj):
        url = reverse("admin:campaigns_contactimport_add") + f"?contact_list={obj.pk}"
        return format_html('<a href="{}">{}</a>', url, _("Upload contacts"))


class ContactImportForm(forms.ModelForm):
    new_list_name = forms.CharField(label=_("…or a new list named"), required=False)

    class Meta:
        model = ContactImport
        fields = ["file", "contact_list", "new_list_name", "merge_policy"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["contact_list"].required = False

    def clean(self):
        data = super().clean()
        if not data.get("contact_list") and not data.get("new_list_name"):
            raise ValidationError(_("Choose a list or name a new one."))
        f = data.get("file")
        if f is not None:
            from django.conf import settings

            if f.size > settings.CONTACT_UPLOAD_MAX_BYTES:
                raise ValidationError(
                    _("The file is larger than the {mb} MB limit.").format(
                        mb=settings.CONTACT_UPLOAD_MAX_BYTES // (1024 * 1024)
                    )
                )
        return data


@admin.register(ContactImport)
class ContactImportAdmin(admin.ModelAdmin):
    form = ContactImportForm
    list_display = [
        "original_name",
        "contact_list",
        "status",
        "total_rows",
        "imported_count",
        "updated_count",
        "duplicate_count",
        "invalid_count",
        "created_at",
    ]
    list_filter = ["status"]
    list_select_related = ["contact_list"]
    readonly_fields = [
        "original_name",
        "contact_list",
        "status",
        "progress",
        "encoding",
        "delimiter",
        "total_rows",
        "imported_count",
        "updated_count",
        "duplicate_count",
        "invalid_count",
        "legacy_rewritten_count",
        "warnings",
        "error_report_link",
        "error_message",
        "created_by",
        "created_at",
        "started_at",
        "finished_at",
    ]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["file", "contact_list", "new_list_name", "merge_policy"]
        return self.readonly_fields

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)

    @admin.display(description=_("Progress"))
    def progress(self, obj):
        return format_html(
            '<progress max="100" value="{}"></progress> {}%',
            obj.progress_percent,
            obj.progress_percent,
        )

    @admin.display(description=_("Error report"))
    def error_report_link(self, obj):
        if not obj.error_report:
            return _("No refused rows.") if obj.status == ContactImport.Status.COMPLETED else "-"
        return format_html(
            '<a href="{}">{}</a>', obj.error_report.url, _("Download the refused rows (CSV)")
        )

    def save_model(self, request, obj, form, change):
        if not obj.contact_list_id:
            obj.contact_list, _created = ContactList.objects.get_or_create(
                name=form.cleaned_data["new_list_name"]
            )
        obj.original_name = obj.original_name or getattr(
            form.cleaned_data.get("file"), "name", "upload"
        )
        obj.created_by = request.user
        obj.status = ContactImport.Status.QUEUED
        super().save_model(request, obj, form, change)
        services.contact_import_enqueue(import_id=obj.pk)
