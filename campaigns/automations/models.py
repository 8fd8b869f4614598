"""Automations: sends that repeat (every day, week or month), that follow a date in each
contact's attributes (a birthday, a warranty's end), or that follow the lunar calendar. Each run
creates an ordinary campaign (campaigns.models.Campaign) through the engine: one AutomationRun
per occurrence, and for date triggers one AutomationDelivery per contact and occurrence, the keys
that make a re-run or a restart send nothing twice."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from campaigns import notes
from campaigns.models import Campaign, Contact, ContactList, MessageContent, Segment


class Automation(MessageContent):
    class Kind(models.TextChoices):
        RECURRING = "recurring", _("Recurring (every day, week or month)")
        DATE_TRIGGER = "date_trigger", _("Date in a contact attribute (birthday, renewal)")
        LUNAR = "lunar", _("Lunar calendar date")

    class Frequency(models.TextChoices):
        DAILY = "daily", _("Every day")
        WEEKLY = "weekly", _("Every week")
        MONTHLY = "monthly", _("Every month")

    class Weekday(models.IntegerChoices):
        MONDAY = 0, _("Monday")
        TUESDAY = 1, _("Tuesday")
        WEDNESDAY = 2, _("Wednesday")
        THURSDAY = 3, _("Thursday")
        FRIDAY = 4, _("Friday")
        SATURDAY = 5, _("Saturday")
        SUNDAY = 6, _("Sunday")

    class Direction(models.TextChoices):
        BEFORE = "before", _("days before the date")
        ON = "on", _("on the date")
        AFTER = "after", _("days after the date")

    class Feb29(models.TextChoices):
        FEB_28 = "feb28", _("On 28 February")
        MAR_1 = "mar1", _("On 1 March")

    class HolidayPolicy(models.TextChoices):
        NONE = "none", _("Run on public holidays too")
        SKIP = "skip", _("Skip public holidays")
        SHIFT = "shift", _("Move to the next working day")

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        PAUSED = "paused", _("Paused")
        ENDED = "ended", _("Ended")

    name = models.CharField(_("name"), max_length=200, unique=True)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    # What each run's campaign sends: channel, template, param_mapping, content, subject
    # (campaigns.models.MessageContent, the fields of a campaign's own).
    lists = models.ManyToManyField(
        ContactList, related_name="+", verbose_name=_("contact lists"), blank=True
    )
    segments = models.ManyToManyField(
        Segment, related_name="+", verbose_name=_("segments"), blank=True
    )

    # When: at `send_time` (Asia/Ho_Chi_Minh) on each occurrence day.
    send_time = models.TimeField(_("time of day (Asia/Ho_Chi_Minh)"))
    frequency = models.CharField(
        _("repeats"), max_length=8, choices=Frequency.choices, default=Frequency.DAILY
    )
    weekday = models.PositiveSmallIntegerField(
        _("weekday"), choices=Weekday.choices, null=True, blank=True
    )
    month_day = models.PositiveSmallIntegerField(
        _("day of the month"),
        null=True,
        blank=True,
        help_text=_("1-31; in a shorter month, its last day."),
    )
    # Date trigger: the date in Contact.attributes[attribute_key] ("YYYY-MM-DD").
    attribute_key = models.CharField(_("date attribute"), max_length=100, blank=True)
    offset_days = models.PositiveSmallIntegerField(_("days"), default=0)
    direction = models.CharField(
        _("when"), max_length=8, choices=Direction.choices, default=Direction.ON
    )
    ignore_year = models.BooleanField(
        _("every year (ignore the year)"),
        default=True,
        help_text=_("A birthday or an anniversary: the day and month come back every year."),
    )
    # A lunar date attribute (campaigns AttributeDefinition type "lunar_date", stored as the lunar
    # "YYYY-MM-DD", "L" after a leap month's day): the anniversary comes back each lunar year.
    lunar_date = models.BooleanField(
        _("the attribute holds a lunar date"),
        default=False,
        help_text=_(
            "A lunar birthday or anniversary: it comes back on the same lunar day each year."
        ),
    )
    feb29 = models.CharField(
        _("29 February in other years"), max_length=8, choices=Feb29.choices, default=Feb29.FEB_28
    )
    # Lunar: day 1-30 of the lunar month; a month 1-12, or every lunar month when empty.
    lunar_day = models.PositiveSmallIntegerField(_("lunar day"), null=True, blank=True)
    lunar_month = models.PositiveSmallIntegerField(
        _("lunar month"), null=True, blank=True, help_text=_("Empty: every lunar month.")
    )

    end_date = models.DateField(_("last day"), null=True, blank=True)
    max_runs = models.PositiveIntegerField(_("at most this many runs"), null=True, blank=True)
    holiday_policy = models.CharField(
        _("public holidays"),
        max_length=8,
        choices=HolidayPolicy.choices,
        default=HolidayPolicy.NONE,
    )
    status = models.CharField(
        _("status"), max_length=8, choices=Status.choices, default=Status.ACTIVE, db_index=True
    )
    # The next occurrence (its nominal day, the key of its run) and when it runs (the day moved
    # past a holiday when the policy says so, at send_time). Empty when the automation ended.
    next_occurrence = models.DateField(_("next occurrence"), null=True, blank=True)
    next_run_at = models.DateTimeField(_("next run"), null=True, blank=True, db_index=True)
    last_run_at = models.DateTimeField(_("last run"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("automation")
        verbose_name_plural = _("automations")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class AutomationRun(models.Model):
    class Status(models.TextChoices):
        CREATED = "created", _("Campaign created")
        SKIPPED = "skipped", _("Skipped")
        FAILED = "failed", _("Failed")

    automation = models.ForeignKey(
        Automation, on_delete=models.CASCADE, related_name="runs", verbose_name=_("automation")
    )
    occurrence = models.DateField(_("occurrence"))
    scheduled_for = models.DateTimeField(_("scheduled for"))
    campaign = models.ForeignKey(
        Campaign,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("campaign"),
    )
    status = models.CharField(_("status"), max_length=8, choices=Status.choices)
    reason = models.CharField(_("reason"), max_length=500, blank=True)
    # The reason as a message id and its arguments, shown in each reader's language
    # (campaigns.notes: a worker writes it, with no reader to choose the language).
    reason_i18n = models.JSONField(default=dict, blank=True, editable=False)
    recipient_count = models.PositiveIntegerField(_("recipients"), default=0)
    created_at = models.DateTimeField(_("run at"), auto_now_add=True)

    class Meta:
        verbose_name = _("automation run")
        verbose_name_plural = _("automation runs")
        ordering = ["-occurrence"]
        constraints = [
            models.UniqueConstraint(
                fields=["automation", "occurrence"], name="uniq_automation_occurrence"
            )
        ]

    def __str__(self) -> str:
        return f"{self.automation} · {self.occurrence}"

    def reason_text(self) -> str:
        stored = self.reason_i18n
        args = stored.get("a") if isinstance(stored, dict) else None
        if isinstance(args, dict) and isinstance(args.get("holiday"), str):
            # A holiday's name is stored as the calendar's English message id (or the text an
            # administrator typed, which gettext leaves as it is): shown in the reader's language.
            stored = {**stored, "a": {**args, "holiday": gettext(args["holiday"])}}
        return notes.render(self.reason, stored)


class AutomationDelivery(models.Model):
    """A contact chosen by a date-triggered run: at most one per automation, contact and
    occurrence ("2026" for a birthday, the date for a one-off date), whatever re-runs."""

    automation = models.ForeignKey(Automation, on_delete=models.CASCADE, related_name="+")
    # Written set-based (thousands a run): no per-row constraint trigger for the contact.
    contact = models.ForeignKey(
        Contact, on_delete=models.CASCADE, related_name="+", db_constraint=False
    )
    occurrence = models.CharField(_("occurrence"), max_length=10)
    run = models.ForeignKey(AutomationRun, on_delete=models.CASCADE, related_name="deliveries")
    created_at = models.DateTimeField(_("created"))

    class Meta:
        verbose_name = _("automation delivery")
        verbose_name_plural = _("automation deliveries")
        constraints = [
            models.UniqueConstraint(
                fields=["automation", "contact", "occurrence"], name="uniq_automation_delivery"
            )
        ]

    def __str__(self) -> str:
        return f"{self.automation_id} · {self.contact_id} · {self.occurrence}"


class Holiday(models.Model):
    """A public holiday automations can skip or move past; seeded from the calendar
    (campaigns.automations.calendar.holidays) and editable by an administrator."""

    date = models.DateField(_("date"), unique=True)
    key = models.CharField(_("key"), max_length=40, blank=True)
    label = models.CharField(_("name"), max_length=200)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("public holiday")
        verbose_name_plural = _("public holidays")
        ordering = ["date"]

    def __str__(self) -> str:
        return f"{self.date:%d/%m/%Y} {self.name()}"

    def name(self) -> str:
        """The label in the reader's language: seeded labels are the calendar's English message
        ids (campaigns.automations.calendar.holidays); a label an administrator typed stays."""
        return gettext(self.label)
