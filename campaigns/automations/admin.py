"""The automations page, its create/edit form, the preview of a day, and the holiday table.
Thin: the schedule and the runs are services.py's, the preview selectors.py's."""

from __future__ import annotations

from datetime import date

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import formats, timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_POST

from campaigns.automations import schedule
from campaigns.automations.forms import AutomationForm, PreviewForm
from campaigns.automations.models import Automation, AutomationRun, Holiday
from campaigns.automations.selectors import (
    automation_preview,
    automation_upcoming,
    automation_when,
)
from campaigns.automations.services import (
    automation_pause,
    automation_reschedule,
    automation_resume,
    holidays_changed,
    holidays_seed,
)
from providers.shared.phone_display import phone_html

# The holiday action's years: this one and the next five (the data migration seeds the same).
SEED_YEARS = 6


def _when_local(when) -> str:
    """A moment in Asia/Ho_Chi_Minh, the lunar day beside the solar one."""
    local = timezone.localtime(when, schedule.LOCAL)
    return "{} · {}".format(
        formats.date_format(local, "DATETIME_FORMAT"), schedule.describe_lunar(local.date())
    )


@admin.register(Automation)
class AutomationAdmin(admin.ModelAdmin):
    form = AutomationForm
    list_display = ["name", "when", "next_run", "last_run", "status"]
    list_filter = ["status", "kind"]
    search_fields = ["name"]
    list_select_related = ["channel"]
    actions = ["pause", "resume"]
    readonly_fields = ["status", "next_run", "upcoming", "runs_table"]
    fieldsets = [
        (None, {"fields": ["name", "kind", "status", "next_run", "upcoming"]}),
        (
            gettext_lazy("Message"),
            {
                "fields": [
                    "from_campaign",
                    "channel",
                    "template",
                    "content",
                    "subject",
                    "param_mapping",
                ]
            },
        ),
        (gettext_lazy("Audience"), {"fields": ["lists", "segments"]}),
        (
            gettext_lazy("When"),
            {
                "fields": ["send_time", "frequency", "weekday", "month_day"],
                "description": gettext_lazy(
                    "Local time, Asia/Ho_Chi_Minh (UTC+7). Repeats, weekday and day of the "
                    "month are for recurring automations."
                ),
            },
        ),
        (
            gettext_lazy("Date in a contact attribute"),
            {
                "fields": [
                    "attribute_key",
                    "direction",
                    "offset_days",
                    "ignore_year",
                    "lunar_date",
                    "feb29",
                ],
                "description": gettext_lazy(
                    "For date-triggered automations: evaluated every day at the time above. "
                    "The attribute holds a date as YYYY-MM-DD (a date attribute). Each contact "
                    "gets it at most once per date (once a year with “every year”)."
                ),
            },
        ),
        (gettext_lazy("Lunar calendar"), {"fields": ["lunar_day", "lunar_month"]}),
        (
            gettext_lazy("Limits and holidays"),
            {"fields": ["holiday_policy", "end_date", "max_runs"]},
        ),
        (gettext_lazy("Recent runs"), {"fields": ["runs_table"]}),
    ]

    @admin.display(description=gettext_lazy("what runs when"))
    def when(self, obj: Automation) -> str:
        return automation_when(obj)

    @admin.display(description=gettext_lazy("next run (Asia/Ho_Chi_Minh)"), ordering="next_run_at")
    def next_run(self, obj: Automation) -> str:
        if obj.status == Automation.Status.PAUSED:
            return _("Paused")
        if obj.next_run_at is None:
            return _("No more runs")
        return _when_local(obj.next_run_at)

    @admin.display(description=gettext_lazy("next runs"))
    def upcoming(self, obj: Automation):
        runs = automation_upcoming(automation=obj, now=timezone.now())
        if not runs:
            return "—"
        return format_html(
            '<ul id="automation-upcoming">{}</ul>',
            format_html_join(
                "",
                "<li>{}{}</li>",
                (
                    (
                        _when_local(run_at),
                        ""
                        if run_at.astimezone(schedule.LOCAL).date() == occ
                        else " "
                        + _("(moved from %(day)s)")
                        % {"day": formats.date_format(occ, "SHORT_DATE_FORMAT")},
                    )
                    for occ, run_at in runs
                ),
            ),
        )

    @admin.display(description=gettext_lazy("last run"))
    def last_run(self, obj: Automation):
        run = obj.runs.select_related("campaign").order_by("-occurrence").first()
        return _run_summary(run) if run else "—"

    @admin.display(description=gettext_lazy("recent runs"))
    def runs_table(self, obj: Automation):
        if obj.pk is None:
            return "—"
        runs = list(obj.runs.select_related("campaign").order_by("-occurrence")[:20])
        if not runs:
            return _("No run yet.")
        every = format_html(
            '<p><a href="{}?automation__id__exact={}" id="all-runs">{}</a></p>',
            reverse("admin:automations_automationrun_changelist"),
            obj.pk,
            _("All runs"),
        )
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    "{} · {}".format(
                        formats.date_format(r.occurrence, "SHORT_DATE_FORMAT"),
                        schedule.describe_lunar(r.occurrence),
                    ),
                    _run_summary(r),
                    r.reason_text(),
                )
                for r in runs
            ),
        )
        return format_html(
            '<table id="automation-runs"><thead><tr><th>{}</th><th>{}</th><th>{}</th></tr>'
            "</thead><tbody>{}</tbody></table>{}",
            _("Occurrence"),
            _("Result"),
            _("Reason"),
            rows,
            every,
        )

    def get_urls(self):
        return [
            path(
                "<path:object_id>/preview/",
                self.admin_site.admin_view(self.preview_view),
                name="automations_automation_preview",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = extra_context or {}
        extra_context["preview_url"] = reverse(
            "admin:automations_automation_preview", args=[object_id]
        )
        return super().change_view(request, object_id, form_url, extra_context)

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        automation = automation_reschedule(automation_id=form.instance.pk)
        if automation.next_run_at:
            self.message_user(
                request, _("Next run: %(when)s.") % {"when": _when_local(automation.next_run_at)}
            )

    def response_add(self, request, obj, post_url_continue=None):
        # Straight to the preview: who would get it, and when.
        if "_continue" not in request.POST and "_addanother" not in request.POST:
            return HttpResponseRedirect(
                reverse("admin:automations_automation_preview", args=[obj.pk])
            )
        return super().response_add(request, obj, post_url_continue)

    @admin.action(
        description=gettext_lazy("Pause the selected automations"), permissions=["change"]
    )
    def pause(self, request, queryset):
        n = sum(automation_pause(automation_id=pk) for pk in queryset.values_list("pk", flat=True))
        self.message_user(
            request, ngettext("%(n)s automation paused.", "%(n)s automations paused.", n) % {"n": n}
        )

    @admin.action(
        description=gettext_lazy("Resume the selected automations"), permissions=["change"]
    )
    def resume(self, request, queryset):
        n = sum(automation_resume(automation_id=pk) for pk in queryset.values_list("pk", flat=True))
        self.message_user(
            request,
            ngettext("%(n)s automation resumed.", "%(n)s automations resumed.", n) % {"n": n},
        )

    def preview_view(self, request, object_id):
        automation = get_object_or_404(Automation, pk=object_id)
        if not self.has_view_permission(request, automation):
            raise PermissionDenied
        today = timezone.localtime(timezone.now(), schedule.LOCAL).date()
        initial_day = automation.next_occurrence or today
        form = PreviewForm(request.GET or None, initial={"day": initial_day})
        day: date = form.cleaned_data["day"] if form.is_bound and form.is_valid() else initial_day
        preview = (
            None
            if form.is_bound and not form.is_valid()
            else automation_preview(automation=automation, day=day)
        )
        if preview:
            for c in preview.contacts:
                c.phone_html = phone_html(c.phone)
                c.date_value = (c.attributes or {}).get(automation.attribute_key, "")
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Who would get it on a day: %(name)s") % {"name": automation.name},
            "automation": automation,
            "when": automation_when(automation),
            "next_run": _when_local(automation.next_run_at) if automation.next_run_at else "",
            "form": form,
            "preview": preview,
            "day_text": formats.date_format(day, "SHORT_DATE_FORMAT"),
        }
        return TemplateResponse(request, "admin/automations/automation/preview.html", context)


@admin.register(AutomationRun)
class AutomationRunAdmin(admin.ModelAdmin):
    """Every run of every automation: read-only (a log), linked to each run's campaign."""

    list_display = ["occurrence_days", "automation", "status", "result", "scheduled_for"]
    list_filter = ["status", "automation"]
    list_select_related = ["automation", "campaign"]
    date_hierarchy = "occurrence"
    show_full_result_count = False

    @admin.display(description=gettext_lazy("occurrence"), ordering="occurrence")
    def occurrence_days(self, obj: AutomationRun) -> str:
        return "{} · {}".format(
            formats.date_format(obj.occurrence, "SHORT_DATE_FORMAT"),
            schedule.describe_lunar(obj.occurrence),
        )

    @admin.display(description=gettext_lazy("result"))
    def result(self, obj: AutomationRun):
        return _run_summary(obj)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def _run_summary(run: AutomationRun):
    if run.status == AutomationRun.Status.CREATED and run.campaign_id:
        c = run.campaign
        return format_html(
            '<a href="{}">{}</a> · {}',
            reverse("admin:campaigns_campaign_change", args=[c.pk]),
            c.get_status_display(),
            _("recipients %(total)s, sent %(sent)s, delivered %(delivered)s, failed %(failed)s")
            % {
                "total": c.total_count,
                "sent": c.sent_count,
                "delivered": c.delivered_count,
                "failed": c.failed_count,
            },
        )
    return format_html("{}: {}", run.get_status_display(), run.reason_text())


@admin.register(Holiday)
class HolidayAdmin(admin.ModelAdmin):
    list_display = ["date", "lunar", "holiday_name", "key", "is_active"]
    list_editable = ["is_active"]
    list_filter = ["is_active"]
    date_hierarchy = "date"
    search_fields = ["label", "key"]
    fields = ["date", "label", "key", "is_active"]

    def get_changelist_form(self, request, **kwargs):
        base = super().get_changelist_form(request, **kwargs)

        class LabelledRow(base):
            # The list's "active" checkboxes say which holiday they switch (screen readers).
            def __init__(self, *args, **kw):
                super().__init__(*args, **kw)
                if self.instance.pk:
                    self.fields["is_active"].widget.attrs["aria-label"] = _(
                        "Active: %(holiday)s"
                    ) % {"holiday": str(self.instance)}

        return LabelledRow

    @admin.display(description=gettext_lazy("name"), ordering="label")
    def holiday_name(self, obj: Holiday) -> str:
        return obj.name()

    @admin.display(description=gettext_lazy("lunar date"))
    def lunar(self, obj: Holiday) -> str:
        return schedule.describe_lunar(obj.date)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        holidays_changed()

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        holidays_changed()

    def delete_queryset(self, request, queryset):
        super().delete_queryset(request, queryset)
        holidays_changed()

    change_list_template = "admin/automations/holiday/change_list.html"

    def get_urls(self):
        return [
            path(
                "seed/",
                self.admin_site.admin_view(require_POST(self.seed_view)),
                name="automations_holiday_seed",
            ),
            *super().get_urls(),
        ]

    def seed_view(self, request):
        if not self.has_add_permission(request):
            raise PermissionDenied
        year = timezone.localtime(timezone.now(), schedule.LOCAL).year
        n = holidays_seed(years=list(range(year, year + SEED_YEARS)))
        holidays_changed()
        messages.success(
            request,
            ngettext("%(n)s holiday added.", "%(n)s holidays added.", n) % {"n": n},
        )
        return HttpResponseRedirect(reverse("admin:automations_holiday_changelist"))
