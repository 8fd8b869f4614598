"""Attribute types: declare a contact attribute a date (and how files write it), a lunar date, a
number or text. Thin: the import (campaigns.contacts.importing), the segment builder
(campaigns.contacts.segments) and the wizard read the declarations."""

from __future__ import annotations

import re

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from campaigns.contacts.typed import (
    CONVERT_INLINE_MAX,
    attribute_values_convert,
    contacts_with_attribute,
)
from campaigns.models import AttributeDefinition

CONVERT_TASK = "campaigns.tasks.attribute_values_convert_task"

_KEY = re.compile(r"[A-Za-z0-9_]+")


class AttributeDefinitionForm(forms.ModelForm):
    class Meta:
        model = AttributeDefinition
        fields = ["key", "label", "type", "date_format"]

    def clean_key(self):
        key = (self.cleaned_data.get("key") or "").strip()
        if not _KEY.fullmatch(key):
            raise forms.ValidationError(
                _(
                    "Use the key contacts store: letters without accents, digits and “_” "
                    "(an import turns “Ngày sinh” into “ngay_sinh”)."
                )
            )
        if key in ("phone", "name", "tags"):
            raise forms.ValidationError(
                _("“{key}” is a contact field, not an attribute.").format(key=key)
            )
        return key


@admin.register(AttributeDefinition)
class AttributeDefinitionAdmin(admin.ModelAdmin):
    form = AttributeDefinitionForm
    list_display = ["key", "label", "type", "shown_date_format", "conversion_note", "updated_at"]
    readonly_fields = ["converted_at", "conversion_note"]
    actions = ["convert_existing"]
    list_filter = ["type"]
    search_fields = ["key", "label"]
    fieldsets = [
        (
            None,
            {
                "fields": ["key", "label", "type", "date_format"],
                "description": _(
                    "Imports convert the column with this key: dates are stored as yyyy-mm-dd, "
                    "lunar dates as the lunar yyyy-mm-dd (with “L” for a leap month), numbers "
                    "as plain digits. A value that does not fit is left out and its row named "
                    "in the import's report; the row's other values are imported. The segment "
                    "builder offers date or number comparisons on typed attributes, and the "
                    "campaign wizard shows dates as dd/mm/yyyy."
                ),
            },
        ),
        (
            _("Values contacts already hold"),
            {
                "fields": ["converted_at", "conversion_note"],
                "description": _(
                    "Values imported before the type was declared keep the text the file had. "
                    "The list's action “Convert the values contacts already hold” rewrites them "
                    "in the stored form."
                ),
            },
        ),
    ]

    @admin.action(description=_("Convert the values contacts already hold"))
    def convert_existing(self, request, queryset):
        for definition in queryset:
            if definition.type == AttributeDefinition.Type.TEXT:
                self.message_user(
                    request,
                    gettext("“{key}” is text: nothing to convert.").format(key=definition.key),
                    messages.INFO,
                )
                continue
            holding = contacts_with_attribute(definition.key)
            if holding > CONVERT_INLINE_MAX:
                from django_q.tasks import async_task

                transaction.on_commit(lambda pk=definition.pk: async_task(CONVERT_TASK, pk))
                self.message_user(
                    request,
                    gettext(
                        "“{key}”: {n} contacts hold it; their values are being converted in the "
                        "background. The result will show on this list."
                    ).format(key=definition.key, n=f"{holding:,}"),
                    messages.INFO,
                )
                continue
            result = attribute_values_convert(definition_id=definition.pk)
            self.message_user(
                request,
                gettext("“{key}”: {note}").format(key=definition.key, note=result["note"]),
                messages.WARNING if result["unparsed"] else messages.SUCCESS,
            )

    @admin.display(description=_("date format in files"), ordering="date_format")
    def shown_date_format(self, obj: AttributeDefinition) -> str:
        if obj.type != AttributeDefinition.Type.DATE:
            return "—"
        return obj.get_date_format_display()
