from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from templates_app.models import Template, TemplateParam


class TemplateParamInline(admin.TabularInline):
    model = TemplateParam
    fields = ["position", "name", "param_type", "required", "min_length", "max_length"]
    extra = 0


@admin.register(Template)
class TemplateAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "provider_template_id",
        "account",
        "official_account",
        "tag",
        "status",
        "price",
        "synced_at",
    ]
    list_filter = ["status", "tag", "account"]
    search_fields = ["name", "provider_template_id"]
    list_select_related = ["account", "official_account"]
    inlines = [TemplateParamInline]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "account",
                    "official_account",
                    "provider_template_id",
                    "name",
                    "tag",
                    "price",
                ]
            },
        ),
        (_("Status"), {"fields": ["status", "status_reason", "synced_at"]}),
        (_("Content"), {"fields": ["body", "preview_url", "buttons"]}),
    ]
    readonly_fields = ["synced_at"]
