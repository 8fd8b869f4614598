"""Reads of the automations room: who a date-triggered occurrence reaches, the preview of a day,
the holidays, the calendars shown beside each other."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.db.models import Q, QuerySet
from django.db.models.fields.json import KT
from django.db.models.functions import Substr
from django.utils import timezone
from django.utils.translation import gettext as _

from campaigns.automations import schedule
from campaigns.automations.models import Automation, AutomationDelivery, AutomationRun, Holiday
from campaigns.engine.audience import audience_contacts
from campaigns.models import Contact

K = Automation.Kind


def holiday_dates(*, start: date, days: int) -> set[date]:
    return set(
        Holiday.objects.filter(
            is_active=True, date__gte=start, date__lte=start + timedelta(days=days)
        ).values_list("date", flat=True)
    )


def next_after(automation: Automation, start: date, *, not_before: datetime | None):
    """(occurrence, run time) of the first occurrence from `start` (whose run time is not before
    `not_before`), or (None, None): ended (end date, run count) or never again."""
    if automation.max_runs is not None:
        done = AutomationRun.objects.filter(
            automation_id=automation.pk, status=AutomationRun.Status.CREATED
        ).count()
        if done >= automation.max_runs:
            return None, None
    holidays = holiday_dates(start=start, days=schedule.HORIZON_DAYS + 60)
    day = start
    for _i in range(schedule.HORIZON_DAYS):
        occ = schedule.next_occurrence(automation, day)
        if occ is None:
            return None, None
        run_on = schedule.run_day(occ, policy=automation.holiday_policy, holidays=holidays)
        run_at = schedule.local_datetime(run_on, automation.send_time)
        if not_before is None or run_at >= not_before:
            return occ, run_at
        day = occ + timedelta(days=1)
    return None, None


def automation_upcoming(*, automation: Automation, now, count: int = 5) -> list[tuple]:
    """The next `count` runs from `now`: (occurrence, run time), what the change page lists with
    both calendars (a lunar automation's solar days, a holiday's shift)."""
    out = []
    if automation.pk is None or automation.status == Automation.Status.PAUSED:
        return out
    day = timezone.localtime(now, schedule.LOCAL).date()
    not_before = now
    for _i in range(count):
        occ, run_at = next_after(automation, day, not_before=not_before)
        if occ is None:
            break
        out.append((occ, run_at))
        day, not_before = occ + timedelta(days=1), None
    return out


def holiday_on(*, day: date) -> Holiday | None:
    return Holiday.objects.filter(is_active=True, date=day).first()


def automation_audience(automation: Automation) -> QuerySet[Contact]:
    """Everyone the automation's lists and segments hold now, minus who opted out of its
    channel's kind (the same definition as a campaign's: campaigns.engine.audience)."""
    chosen = Automation.lists.through.objects.filter(automation_id=automation.pk)
    return audience_contacts(
        list_ids=chosen.values("contactlist_id"),
        segment_ids=automation.segments.values("pk"),
        exclude_opted_out_of=automation.channel.kind,
    )


def date_trigger_candidates(
    automation: Automation, match: schedule.DateMatch, *, include_delivered: bool = False
) -> QuerySet[Contact]:
    """The audience's contacts whose attribute date matches, and (unless `include_delivered`)
    who have no delivery for this occurrence yet. The date is read from the JSON attribute as
    text ("YYYY-MM-DD", what typed date attributes store): one expression the database computes
    per row, month and day by substring when the year is ignored."""
    value = KT(f"attributes__{automation.attribute_key}")
    contacts = automation_audience(automation)
    if match.exact:
        # Through Substr: a text expression (a bare key transform would compare as JSON).
        contacts = contacts.annotate(_auto_date=Substr(value, 1, 10)).filter(_auto_date=match.exact)
    else:
        contacts = contacts.annotate(_auto_md=Substr(value, 6, 5)).filter(
            _auto_md__in=match.month_days
        )
    if not include_delivered:
        done = AutomationDelivery.objects.filter(automation_id=automation.pk, occurrence=match.key)
        contacts = contacts.exclude(pk__in=done.values("contact_id"))
    return contacts


@dataclass
class Preview:
    """What the automation would do on `day`: whether it runs, on which day (holidays), and who
    would get it."""

    day: date
    lunar: str
    runs: bool
    holiday: Holiday | None = None
    run_day: date | None = None
    run_lunar: str = ""
    contacts: list = field(default_factory=list)
    count: int = 0
    already: int = 0
    target: date | None = None
    target_lunar: str = ""
    unreadable: int = 0


def date_trigger_unreadable(automation: Automation) -> int:
    """The audience's contacts whose attribute holds something that is not a stored date
    ("05/02/1990" imported before the attribute was declared a date): never matched, so the
    preview says how many (the attribute types page converts them)."""
    value = KT(f"attributes__{automation.attribute_key}")
    pattern = (
        r"^[0-9]{4}-[0-9]{2}-[0-9]{2}L?$"
        if automation.lunar_date
        else r"^[0-9]{4}-[0-9]{2}-[0-9]{2}"
    )
    return (
        automation_audience(automation)
        .annotate(_auto_raw=Substr(value, 1, 11))
        .exclude(_auto_raw__isnull=True)
        .exclude(_auto_raw="")
        .exclude(_auto_raw__regex=pattern)
        .count()
    )


def automation_preview(*, automation: Automation, day: date, limit: int = 200) -> Preview:
    """Who would get the automation's message on `day` (at most `limit` shown, all counted)."""
    preview = Preview(day=day, lunar=schedule.describe_lunar(day), runs=False)
    preview.holiday = holiday_on(day=day)
    if not schedule.is_occurrence(automation, day) or (
        automation.end_date and day > automation.end_date
    ):
        return preview
    if preview.holiday and automation.holiday_policy == Automation.HolidayPolicy.SKIP:
        return preview
    preview.runs = True
    preview.run_day = schedule.run_day(
        day,
        policy=automation.holiday_policy,
        holidays=holiday_dates(start=day, days=60),
    )
    preview.run_lunar = schedule.describe_lunar(preview.run_day)
    if automation.kind == K.DATE_TRIGGER:
        match = schedule.date_match(automation, day)
        preview.target = match.target
        if automation.lunar_date:
            preview.target_lunar = schedule.describe_lunar(match.target)
        who = date_trigger_candidates(automation, match)
        preview.unreadable = date_trigger_unreadable(automation)
        preview.already = (
            date_trigger_candidates(automation, match, include_delivered=True).count() - who.count()
        )
    else:
        who = automation_audience(automation)
    preview.count = who.count()
    preview.contacts = list(who.order_by("pk").only("pk", "phone", "name", "attributes")[:limit])
    return preview


def automations_due(*, now) -> list[int]:
    return list(
        Automation.objects.filter(
            Q(status=Automation.Status.ACTIVE) & Q(next_run_at__lte=now)
        ).values_list("pk", flat=True)
    )


def automation_when(automation: Automation) -> str:
    """What runs when, in words: "Every Monday at 08:00", "3 days before the date in birthday
    (every year) at 08:00", "Lunar day 15 of every month at 07:00"."""
    at = automation.send_time.strftime("%H:%M") if automation.send_time else "?"
    if automation.kind == K.DATE_TRIGGER:
        if automation.direction == Automation.Direction.ON:
            text = _("On the date in “%(key)s”") % {"key": automation.attribute_key}
        elif automation.direction == Automation.Direction.BEFORE:
            text = _("%(n)s days before the date in “%(key)s”") % {
                "n": automation.offset_days,
                "key": automation.attribute_key,
            }
        else:
            text = _("%(n)s days after the date in “%(key)s”") % {
                "n": automation.offset_days,
                "key": automation.attribute_key,
            }
        if automation.lunar_date:
            text += " " + _("(lunar date, every lunar year)")
        elif automation.ignore_year:
            text += " " + _("(every year)")
    elif automation.kind == K.LUNAR:
        if automation.lunar_month:
            text = _("Lunar day %(day)s of month %(month)s, every year") % {
                "day": automation.lunar_day,
                "month": automation.lunar_month,
            }
        else:
            text = _("Lunar day %(day)s of every lunar month") % {"day": automation.lunar_day}
    elif automation.frequency == Automation.Frequency.WEEKLY:
        text = _("Every %(weekday)s") % {
            "weekday": Automation.Weekday(automation.weekday).label
            if automation.weekday is not None
            else "?"
        }
    elif automation.frequency == Automation.Frequency.MONTHLY:
        text = _("Every month on day %(day)s") % {"day": automation.month_day}
    else:
        text = str(_("Every day"))
    return _("%(when)s at %(time)s") % {"when": text, "time": at}
