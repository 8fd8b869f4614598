"""When an automation runs: its occurrences (nominal days) and the day each one runs on, as pure
functions of the automation's fields, a day and the set of holidays. No database here: the
services pass the holidays in, so the tests and the preview compute the same days."""

from __future__ import annotations

import calendar as pycalendar
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.utils.translation import gettext as _

from campaigns.automations.calendar.lunar import solar_to_lunar

LOCAL = ZoneInfo("Asia/Ho_Chi_Minh")
# How far ahead to look for the next occurrence: a lunar date comes back within 13 lunar months
# (a leap year), about 385 days; anything longer means the automation can never run.
HORIZON_DAYS = 400


def local_datetime(day: date, at: time) -> datetime:
    return datetime.combine(day, at, tzinfo=LOCAL)


def last_day_of_month(year: int, month: int) -> int:
    return pycalendar.monthrange(year, month)[1]


def _is_lunar_day(day: date, lunar_day: int, lunar_month: int | None) -> bool:
    lun = solar_to_lunar(day)
    if lunar_month is not None and (lun.month != lunar_month or lun.leap):
        # A yearly lunar date (mùng 1 Tết, rằm tháng Giêng) is the regular month's, not a leap
        # month's of the same number.
        return False
    if lun.day == lunar_day:
        return True
    # Day 30 asked, and this lunar month has only 29 days: its last day stands in.
    return lunar_day == 30 and lun.day == 29 and solar_to_lunar(day + timedelta(days=1)).day == 1


def is_occurrence(automation, day: date) -> bool:
    """Whether `day` is one of the automation's nominal occurrences (before the holiday policy)."""
    kind = automation.kind
    if kind == "date_trigger":
        return True  # evaluated every day: the day decides whose date matches
    if kind == "lunar":
        return _is_lunar_day(day, automation.lunar_day, automation.lunar_month)
    if automation.frequency == "weekly":
        return day.weekday() == automation.weekday
    if automation.frequency == "monthly":
        wanted = min(automation.month_day, last_day_of_month(day.year, day.month))
        return day.day == wanted
    return True  # daily


def next_occurrence(automation, start: date) -> date | None:
    """The first nominal occurrence on or after `start`, within the end date; None: no more."""
    day = start
    for _i in range(HORIZON_DAYS):
        if automation.end_date and day > automation.end_date:
            return None
        if is_occurrence(automation, day):
            return day
        day += timedelta(days=1)
    return None


def run_day(occurrence: date, *, policy: str, holidays: Collection[date]) -> date:
    """The day an occurrence runs: itself, or with the "shift" policy the first day after it that
    is not a public holiday (assumed: Saturdays and Sundays count as working days, shops are
    open; only the holiday table moves a run)."""
    day = occurrence
    if policy == "shift":
        while day in holidays:
            day += timedelta(days=1)
    return day


@dataclass(frozen=True)
class DateMatch:
    """Whose attribute date a date-triggered occurrence matches: exact ISO dates, or month-days
    ("MM-DD") when the year is ignored; `key` is the occurrence key of AutomationDelivery."""

    target: date
    key: str
    month_days: tuple[str, ...] = ()
    exact: str = ""


def date_match(automation, day: date) -> DateMatch:
    """For a run on `day`: the attribute date it is about (N days before the date means the date
    is N days after the run) and how it is matched."""
    offset = automation.offset_days or 0
    if automation.direction == "before":
        target = day + timedelta(days=offset)
    elif automation.direction == "after":
        target = day - timedelta(days=offset)
    else:
        target = day
    if automation.lunar_date:
        return _lunar_match(target)
    if not automation.ignore_year:
        return DateMatch(target=target, key=target.isoformat(), exact=target.isoformat())
    md = [target.strftime("%m-%d")]
    if not pycalendar.isleap(target.year):
        # Someone born on 29 February is greeted on 28 February (default) or 1 March, once.
        if automation.feb29 == "feb28" and (target.month, target.day) == (2, 28):
            md.append("02-29")
        if automation.feb29 == "mar1" and (target.month, target.day) == (3, 1):
            md.append("02-29")
    # The key is the year of the date it is about: one greeting per contact and birthday year,
    # even when "7 days before 3 January" runs in December.
    return DateMatch(target=target, key=str(target.year), month_days=tuple(md))


def _lunar_match(target: date) -> DateMatch:
    """A lunar anniversary: the contacts whose stored lunar date has the month and day of
    `target`'s lunar date (whatever the year, and a leap month's day counts in the regular month
    of that number). During a leap month nobody's anniversary falls (it was the month before);
    on the 29th of a short month, day 30 counts too. The key is the lunar year."""
    lun = solar_to_lunar(target)
    if lun.leap:
        return DateMatch(target=target, key=f"{lun.year}L", month_days=())
    md = [f"{lun.month:02d}-{lun.day:02d}"]
    if lun.day == 29 and solar_to_lunar(target + timedelta(days=1)).day == 1:
        md.append(f"{lun.month:02d}-30")
    return DateMatch(target=target, key=str(lun.year), month_days=tuple(md))


def describe_lunar(day: date) -> str:
    """ "15/8 lunar" (or "15/4 leap month lunar"): the lunar day beside a solar one on every page."""
    lun = solar_to_lunar(day)
    if lun.leap:
        return _("%(day)s/%(month)s (leap month) lunar") % {"day": lun.day, "month": lun.month}
    return _("%(day)s/%(month)s lunar") % {"day": lun.day, "month": lun.month}
