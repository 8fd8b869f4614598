"""Vietnam's public holidays for a year, from the law: a pure function (no models).

Source: Labour Code 2019 (Bộ luật Lao động No. 45/2019/QH14), Article 112(1), in force since
1 January 2021:
  a) Tết Dương lịch: 1 day (1 January);
  b) Tết Âm lịch: 5 days — which 5 the Prime Minister fixes each year; in practice the last day of the
     lunar year (29 or 30 of month 12, "giao thừa") and mùng 1 to mùng 4. We give those five.
     (The Labour Code 2012 gave 5 days from 2013 too; before 2013 it was 4: giao thừa + mùng 1-3.)
  c) Ngày Chiến thắng: 1 day (30 April);
  d) Ngày Quốc tế lao động: 1 day (1 May);
  đ) Quốc khánh: 2 days (2 September and one day before or after it, since 2021);
  e) Giỗ Tổ Hùng Vương: 1 day (10th day of the 3rd lunar month, a paid holiday since 2007).
The day next to 2 September is chosen by the Prime Minister each year; we follow the pattern of the
decisions so far (assumed for future years): Mon/Thu/Sun -> the day after, otherwise the day before
(2024: Mon 2 -> 3/9; 2025: Tue 2 -> 1/9). Compensatory days (nghỉ bù) and working-day swaps are
decided year by year: an administrator adds them in the editable holiday calendar.
Ngày Văn hóa Việt Nam (24 November), a paid day off from 2026 (assumed: per python-holidays 0.108,
citing Resolution 80-NQ/TW; check the 2026 implementing text before relying on it).

Lunar dates come from ``lunar`` (Vietnamese calendar, UTC+7).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import NamedTuple

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from .lunar import lunar_to_solar, tet


class Holiday(NamedTuple):
    date: date
    key: str  # stable identifier, e.g. "tet_1", "national_day"; the seed's natural key with date
    label: str | Promise  # English msgid, Vietnamese through the catalogue


def _national_day_adjacent(sep2: date) -> date:
    # Monday, Thursday, Sunday -> the day after; Tuesday, Wednesday, Friday, Saturday -> before.
    return sep2 + timedelta(days=1 if sep2.weekday() in (0, 3, 6) else -1)


def public_holidays(year: int) -> list[Holiday]:
    """The public holidays of Gregorian ``year`` (Tết of lunar ``year``), sorted by date."""
    new_year = tet(year)
    tet_days = 5 if year >= 2013 else 4
    holidays = [
        Holiday(date(year, 1, 1), "new_year", _("New Year's Day")),
        Holiday(new_year - timedelta(days=1), "tet_eve", _("Lunar New Year's Eve (Tết)")),
    ]
    tet_labels = [
        _("Lunar New Year, day 1 (mùng 1 Tết)"),
        _("Lunar New Year, day 2 (mùng 2 Tết)"),
        _("Lunar New Year, day 3 (mùng 3 Tết)"),
        _("Lunar New Year, day 4 (mùng 4 Tết)"),
    ]
    for n in range(tet_days - 1):
        holidays.append(Holiday(new_year + timedelta(days=n), f"tet_{n + 1}", tet_labels[n]))
    if year >= 2007:
        hung = lunar_to_solar(year, 3, 10)
        assert hung is not None  # day 10 of a regular month always exists
        holidays.append(Holiday(hung, "hung_kings", _("Hùng Kings' Commemoration Day")))
    holidays += [
        Holiday(date(year, 4, 30), "reunification", _("Reunification Day")),
        Holiday(date(year, 5, 1), "labour_day", _("International Labour Day")),
    ]
    sep2 = date(year, 9, 2)
    holidays.append(Holiday(sep2, "national_day", _("National Day")))
    if year >= 2021:
        holidays.append(
            Holiday(_national_day_adjacent(sep2), "national_day_2", _("National Day (second day)"))
        )
    if year >= 2026:
        holidays.append(Holiday(date(year, 11, 24), "culture_day", _("Vietnamese Culture Day")))
    return sorted(holidays, key=lambda h: h.date)
