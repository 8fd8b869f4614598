"""Segments in the admin: the rule builder (segment_builder.js) over the rules' JSON, which stays
as an "Advanced" view; a live count and sample (a small JSON endpoint the builder calls as the
rules change); the count on the list and the page.

Thin: the query is campaigns.contacts.segments', the rules' checks campaigns.segment_rules'.
"""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin
from django.db import transaction
from django.http import HttpResponseRedirect, JsonResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join, json_script
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext

from campaigns.admin.contacts import export_response
from campaigns.contacts.segments import (
    LIST_EXACT_MAX,
    attribute_keys,
    contacts_table_rows,
    count_estimate,
    count_within,
    newest_within,
    segment_count,
    segment_estimate_cached,
    segment_matching_for_count,
    segment_preview,
    segment_queryset,
)
from campaigns.models import Segment, Tag
from campaigns.segment_rules import iter_rules, segment_rules_errors
from providers.shared.phone_display import phone_html

SEGMENT_INDEX_TASK = "campaigns.tasks.segment_index_build_task"
LIST_COUNT_TIMEOUT_MS = 300  # per segment on the list: a slow one shows "—", never a slow page
# The change page's count: beyond a second it shows the estimate (the rule builder below it
# counts again in the background, with a 2 s budget, and estimates beyond it).
CHANGE_COUNT_TIMEOUT_MS = 1000


def operator_labels() -> dict[str, str]:
    """Each operator as the builder and the summary write it."""
    return {
        "eq": pgettext("segment rule", "is"),
        "neq": pgettext("segment rule", "is not"),
        "contains": pgettext("segment rule", "contains"),
        "not_contains": pgettext("segment rule", "does not contain"),
        "starts_with": pgettext("segment rule", "starts with"),
        "in": pgettext("segment rule", "is one of"),
        "empty": pgettext("segment rule", "is empty"),
        "not_empty": pgettext("segment rule", "is not empty"),
        "gt": pgettext("segment rule", "greater than"),
        "gte": pgettext("segment rule", "at least"),
        "lt": pgettext("segment rule", "less than"),
        "lte": pgettext("segment rule", "at most"),
        "before": pgettext("segment rule", "before"),
        "after": pgettext("segment rule", "after"),
        "on": pgettext("segment rule", "on"),
        "last_days": pgettext("segment rule", "in the last N days"),
        "birthday_days": pgettext("segment rule", "birthday in the next N days"),
        "next_days": pgettext("segment rule", "in the next N days"),
        "anniversary_in": pgettext("segment rule", "anniversary in N days (any year)"),
        "has_tag": pgettext("segment rule", "has tag"),
        "not_has_tag": pgettext("segment rule", "does not have tag"),
    }


class SegmentBuilderWidget(forms.Textarea):
    """The rules' JSON textarea inside "Advanced", below the point-and-click builder."""

    class Media:
        js = ["loa/segment_builder.js"]
        css = {"all": ["loa/segment_builder.css"]}

    def __init__(self, attrs=None):
        super().__init__({"rows": 6, "cols": 80, **(attrs or {})})
        self.config: dict = {}

    def render(self, name, value, attrs=None, renderer=None):
        textarea = super().render(name, value, attrs, renderer)
        return format_html(
            '<div class="loa-segment-builder" data-field="{}">'
            '<div class="loa-sb-rules" role="group" aria-label="{}"></div>'
            '<p class="loa-sb-actions" hidden><button type="button" class="button loa-sb-add">'
            "{}</button> "
            '<button type="button" class="button loa-sb-add-group">{}</button></p>'
            '<div class="loa-sb-preview" aria-live="polite" hidden>'
            '<p><span>{}</span> <strong id="segment-live-count">…</strong></p>'
            '<ul id="segment-live-sample"></ul></div>'
            '<details class="loa-sb-advanced"><summary>{}</summary>{}</details>{}</div>',
            name,
            _("Rules"),
            _("+ Add a rule"),
            _("+ Add a group (any of its rules)"),
            _("Contacts matching now:"),
            _("Advanced: the rules as JSON"),
            textarea,
            json_script(self.config, "segment-builder-config"),
        )


class RulesField(forms.JSONField):
    """The rules' JSON; a text typed in the advanced view that is not JSON gets a sentence,
    never Django's "Enter a valid JSON"."""

    default_error_messages = {
        "invalid": gettext_lazy(
            "The rules in the advanced view are not valid JSON. Build them with the rule "
            "builder above, or correct the text."
        )
    }

    def prepare_value(self, value):
        if value in (None, ""):
            value = []
        return super().prepare_value(value)


class SegmentForm(forms.ModelForm):
    rules = RulesField(
        label=gettext_lazy("Rules"),
        required=False,
        widget=SegmentBuilderWidget,
        help_text=gettext_lazy(
            "Pick an attribute, an operator and a value; text ignores accents and case "
            "(“ha noi” finds “Hà Nội”)."
        ),
    )

    class Meta:
        model = Segment
        fields = ["name", "description", "contact_lists", "match", "rules"]

    def clean_rules(self):
        value = self.cleaned_data.get("rules")
        return [] if value in (None, "") else value


def builder_config(preview_url: str) -> dict:
    return {
        "previewUrl": preview_url,
        "keys": attribute_keys(),
        "tags": list(Tag.objects.order_by("name").values_list("name", flat=True)[:500]),
        "ops": operator_labels(),
        "text": {
            "attribute": _("Attribute"),
            "operator": _("Operator"),
            "value": _("Value"),
            "choose": _("Choose…"),
            "tag": _("Tag"),
            "remove": _("Remove this rule"),
            "removeGroup": _("Remove this group"),
            "group": _("Any of these rules (OR)"),
            "groupAll": _("All of these rules (AND)"),
            "addInGroup": _("+ Add a rule to this group"),
            "date": _("dd/mm/yyyy"),
            "days": _("days"),
            "list": _("values separated by commas"),
            "timeout": _("more than can be counted quickly"),
            "none": _("No contact matches yet."),
            "error": _("The count could not be computed."),
        },
    }


@admin.register(Segment)
class SegmentAdmin(admin.ModelAdmin):
    form = SegmentForm
    list_display = ["name", "match", "rule_summary", "list_count", "updated_at"]
    search_fields = ["name"]
    filter_horizontal = ["contact_lists"]
    readonly_fields = ["live_count", "sample"]

    def get_fields(self, request, obj=None):
        fields = ["name", "description", "contact_lists", "match", "rules"]
        return [*fields, "live_count", "sample"] if obj is not None else fields

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        if "rules" in form.base_fields:
            widget = form.base_fields["rules"].widget
            if isinstance(widget, SegmentBuilderWidget):
                widget.config = builder_config(reverse("admin:campaigns_segment_preview"))
        return form

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        # The segment index gets slots for the attributes the rules read, and fills them, in the
        # background: the page's count reads the index once they are ready (the contacts until).
        from django_q.tasks import async_task

        transaction.on_commit(lambda: async_task(SEGMENT_INDEX_TASK))

    @admin.display(description=gettext_lazy("Rules"))
    def rule_summary(self, obj):
        labels = operator_labels()
        joiner = f" {_('and') if obj.match == Segment.Match.ALL else _('or')} "
        return joiner.join(
            " ".join(
                str(p)
                for p in (
                    r.get("attribute") or "",
                    labels.get(r.get("op"), r.get("op")),
                    r.get("value", ""),
                )
                if p not in (None, "")
            )
            for r in iter_rules(obj.rules)
            if isinstance(r, dict)
        )

    @admin.display(description=gettext_lazy("Contacts"))
    def list_count(self, obj):
        if (contacts_table_rows() or 0) <= LIST_EXACT_MAX:
            n = segment_count(obj, timeout_ms=LIST_COUNT_TIMEOUT_MS)
            if n is not None:
                return f"{n:,}"
        # Too many to count within the page's budget: an estimate from a sample of the table.
        estimate = segment_estimate_cached(obj)
        return "—" if estimate is None else f"≈ {estimate:,}"

    @admin.display(description=gettext_lazy("Contacts now"))
    def live_count(self, obj):
        matches = segment_matching_for_count(obj)
        n = count_within(matches, timeout_ms=CHANGE_COUNT_TIMEOUT_MS)
        url = reverse("admin:campaigns_segment_export", args=[obj.pk])
        if n is None:
            # At millions of contacts an exact count of attribute rules reads every contact
            # (docs/BENCHMARKS.md, "10M tenant"): say so, and show the sample's estimate.
            estimate = count_estimate(matches)
            if estimate is None:
                return _("More than can be counted quickly (the count timed out).")
            return format_html(
                '<strong id="segment-count">≈ {}</strong> {} · <a href="{}">{}</a>',
                f"{estimate:,}",
                _(
                    "(estimated from a sample of the contacts: the exact count took too long. A "
                    "campaign's build counts exactly.)"
                ),
                url,
                _("Export (CSV)"),
            )
        return format_html(
            '<strong id="segment-count">{}</strong> · <a href="{}">{}</a>',
            f"{n:,}",
            url,
            _("Export (CSV)"),
        )

    @admin.display(description=gettext_lazy("First contacts"))
    def sample(self, obj):
        rows = newest_within(segment_matching_for_count(obj))
        if rows is None:
            return _("The newest matches take too long to find among this many contacts.")
        if not rows:
            return "-"
        return format_html(
            "<ul>{}</ul>",
            format_html_join("", "<li>{} {}</li>", ((phone_html(p), n) for p, n in rows)),
        )

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("preview/", wrap(self.preview_view), name="campaigns_segment_preview"),
            path("<int:pk>/export/", wrap(self.export_view), name="campaigns_segment_export"),
            *super().get_urls(),
        ]

    def preview_view(self, request):
        """The builder's live count and sample: POST {"rules", "match", "lists"} -> {"count",
        "sample"} or {"errors"}. For those who may see or edit segments."""
        if not (self.has_view_permission(request) or self.has_add_permission(request)):
            return JsonResponse({"error": _("Permission denied.")}, status=403)
        if request.method != "POST":
            return JsonResponse({"error": "POST"}, status=405)
        try:
            body = json.loads(request.body or b"{}")
        except ValueError:
            return JsonResponse({"errors": [_("The request is not valid JSON.")]}, status=400)
        rules = body.get("rules") or []
        errors = segment_rules_errors(rules)
        if errors:
            return JsonResponse({"errors": errors})
        match = body.get("match") if body.get("match") in Segment.Match.values else "all"
        list_ids = [int(i) for i in body.get("lists") or [] if str(i).isdigit()]
        preview = segment_preview(rules=rules, match=match, list_ids=list_ids)
        count = preview.count
        if count is not None:
            count_text = f"{count:,}"
        elif preview.estimate is not None:
            count_text = _("≈ {n} (estimated from a sample of the contacts)").format(
                n=f"{preview.estimate:,}"
            )
        else:
            count_text = _("more than can be counted quickly")
        return JsonResponse(
            {
                "count": count,
                "estimate": preview.estimate,
                "count_text": count_text,
                "sample": preview.sample,
            }
        )

    def export_view(self, request, pk):
        segment = self.get_object(request, str(pk))
        if segment is None or not self.has_view_permission(request, segment):
            return HttpResponseRedirect(reverse("admin:index"))
        return export_response(
            segment_queryset(segment),
            name=segment.name,
            request=request,
            what="segment",
            target=segment,
        )
