"""The Vietnamese lunar calendar (âm lịch), computed for UTC+7.

Why our own code and not a package: the Vietnamese calendar is the Chinese lunisolar rule set
evaluated at Hà Nội's meridian (UTC+7, since the 1967 decree of the DRV) instead of Beijing's
(UTC+8). A new moon or a solar term that falls between 23:00 and 24:00 UTC+8 lands on a different
day, so some months (and some Tết: 21/01/1985 in Vietnam, 20/02/1985 in China) differ. Chinese
calendar libraries (lunardate, lunar-python, cnlunar) are tables or rules for UTC+8 and are wrong
for Vietnam in those years; python-holidays keeps only a few holiday dates per year, not a
converter; lunar-vn, a young single-author port of this same algorithm, lets day 30 of a 29-day
month roll over (see docs/DEPENDENCIES.md). So this module implements the published algorithm:

    Hồ Ngọc Đức, "Thuật toán tính âm lịch" / "Computing the Vietnamese lunar calendar"
    (https://www.informatik.uni-leipzig.de/~duc/amlich/calrules.html, and its amlich.js),
    which uses the astronomical formulas of Jean Meeus, "Astronomical Algorithms" (1998):
    - the day of each new moon (Meeus ch. 49, the truncated series HND gives),
    - the sun's apparent longitude (Meeus ch. 25, low precision),
    and the Chinese calendar rules: the month containing the winter solstice is month 11; a lunar
    year with 13 months has as leap month the first month after month 11 that contains no major
    solar term (trung khí); the month number repeats (leap months keep the previous number).

Accuracy: the algorithm's stated range is 1800-2199; tests/automations/test_lunar.py checks Tết for
every year 1900-2100 against the published Vietnamese table. Days are Julian Day Numbers (JDN),
integers; dates are proleptic Gregorian (``date.toordinal`` based, no Julian-calendar branch
needed for 1900+).

Everything here is pure and cached: no models, no settings, no time zone other than the constant.
"""

from __future__ import annotations

import math
from datetime import date, timedelta
from functools import lru_cache
from typing import NamedTuple

# Vietnam's official time zone (UTC+7). The whole point of this module: do not change it to 8.
TIME_ZONE = 7.0

# date.toordinal() is 1 for 0001-01-01 (proleptic Gregorian), whose JDN is 1721426.
_ORDINAL_TO_JDN = 1721425
# JDN of the first new moon (k = 0) of HND's series: 1900-01-01 13:52 UTC, and the mean
# synodic month; both from calrules.html.
_NEW_MOON_EPOCH = 2415021.076998695
_SYNODIC_MONTH = 29.530588853


class LunarDate(NamedTuple):
    """A day of the Vietnamese lunar calendar. ``year`` is the lunar year that begins at Tết."""

    year: int
    month: int
    day: int
    leap: bool = False

    def iso(self) -> str:
        """``YYYY-MM-DD`` of the lunar date (leap flag not included): the storage form."""
        return f"{self.year:04d}-{self.month:02d}-{self.day:02d}"


def _jdn(d: date) -> int:
    return d.toordinal() + _ORDINAL_TO_JDN


def _date(jdn: int) -> date:
    return date.fromordinal(jdn - _ORDINAL_TO_JDN)


def _new_moon(k: int) -> float:
    """Julian date (UTC, fractional) of the k-th new moon after 1900-01-01 13:52 UTC.

    HND's NewMoon(k), i.e. Meeus ch. 49 with the terms HND keeps; T in Julian centuries from
    1900-01-00.5, then the Delta T correction HND gives.
    """
    t = k / 1236.85
    t2 = t * t
    t3 = t2 * t
    dr = math.pi / 180
    jd1 = 2415020.75933 + 29.53058868 * k + 0.0001178 * t2 - 0.000000155 * t3
    jd1 += 0.00033 * math.sin((166.56 + 132.87 * t - 0.009173 * t2) * dr)  # mean new moon
    m = 359.2242 + 29.10535608 * k - 0.0000333 * t2 - 0.00000347 * t3  # sun's mean anomaly
    mpr = 306.0253 + 385.81691806 * k + 0.0107306 * t2 + 0.00001236 * t3  # moon's mean anomaly
    f = 21.2964 + 390.67050646 * k - 0.0016528 * t2 - 0.00000239 * t3  # moon's argument of latitude
    c1 = (0.1734 - 0.000393 * t) * math.sin(m * dr) + 0.0021 * math.sin(2 * dr * m)
    c1 = c1 - 0.4068 * math.sin(mpr * dr) + 0.0161 * math.sin(dr * 2 * mpr)
    c1 = c1 - 0.0004 * math.sin(dr * 3 * mpr)
    c1 = c1 + 0.0104 * math.sin(dr * 2 * f) - 0.0051 * math.sin(dr * (m + mpr))
    c1 = c1 - 0.0074 * math.sin(dr * (m - mpr)) + 0.0004 * math.sin(dr * (2 * f + m))
    c1 = c1 - 0.0004 * math.sin(dr * (2 * f - m)) - 0.0006 * math.sin(dr * (2 * f + mpr))
    c1 = c1 + 0.0010 * math.sin(dr * (2 * f - mpr)) + 0.0005 * math.sin(dr * (2 * mpr + m))
    if t < -11:
        deltat = 0.001 + 0.000839 * t + 0.0002261 * t2 - 0.00000845 * t3 - 0.000000081 * t * t3
    else:
        deltat = -0.000278 + 0.000265 * t + 0.000262 * t2
    return jd1 + c1 - deltat


@lru_cache(maxsize=8192)
def _new_moon_day(k: int) -> int:
    """JDN of the local (UTC+7) day containing the k-th new moon: HND's getNewMoonDay."""
    return math.floor(_new_moon(k) + 0.5 + TIME_ZONE / 24)


def _sun_longitude(jd: float) -> float:
    """Sun's apparent longitude in radians, 0..2π, at Julian date ``jd`` (UTC): Meeus ch. 25."""
    t = (jd - 2451545.0) / 36525  # Julian centuries from J2000.0
    t2 = t * t
    dr = math.pi / 180
    m = 357.52910 + 35999.05030 * t - 0.0001559 * t2 - 0.00000048 * t * t2  # mean anomaly
    l0 = 280.46645 + 36000.76983 * t + 0.0003032 * t2  # mean longitude
    dl = (1.914600 - 0.004817 * t - 0.000014 * t2) * math.sin(dr * m)
    dl += (0.019993 - 0.000101 * t) * math.sin(dr * 2 * m) + 0.000290 * math.sin(dr * 3 * m)
    lon = (l0 + dl) * dr
    return lon - math.pi * 2 * math.floor(lon / (math.pi * 2))


@lru_cache(maxsize=8192)
def _sun_sector(jdn: int) -> int:
    """Which 30° sector (0..11) the sun is in at local midnight starting day ``jdn``.

    HND's getSunLongitude: sector 9 starts at 270°, the winter solstice. A month "contains a major
    term" when the sector changes during it.
    """
    return math.floor(_sun_longitude(jdn - 0.5 - TIME_ZONE / 24) / math.pi * 6)


@lru_cache(maxsize=512)
def _month11_start(solar_year: int) -> int:
    """JDN of the first day of lunar month 11 (the month with the winter solstice) of ``solar_year``.

    HND's getLunarMonth11: the last new moon before 31/12; if the sun is already past the solstice
    at that new moon (sector >= 9) month 11 began one new moon earlier.
    """
    off = _jdn(date(solar_year, 12, 31)) - 2415021
    k = math.floor(off / _SYNODIC_MONTH)
    nm = _new_moon_day(k)
    if _sun_sector(nm) >= 9:
        nm = _new_moon_day(k - 1)
    return nm


@lru_cache(maxsize=512)
def _leap_month_offset(a11: int) -> int:
    """Months after month 11 (starting ``a11``) to the leap month, in a 13-month year.

    HND's getLeapMonthOffset: the leap month is the first one during which the sun's sector does not
    change (no major solar term), counted from the month after month 11.
    """
    k = math.floor((a11 - _NEW_MOON_EPOCH) / _SYNODIC_MONTH + 0.5)
    i = 1
    arc = _sun_sector(_new_moon_day(k + i))
    while True:
        last = arc
        i += 1
        arc = _sun_sector(_new_moon_day(k + i))
        if arc == last or i >= 14:
            break
    return i - 1


def solar_to_lunar(d: date) -> LunarDate:
    """The Vietnamese lunar date of the Gregorian date ``d`` (HND's convertSolar2Lunar)."""
    day_number = _jdn(d)
    k = math.floor((day_number - _NEW_MOON_EPOCH) / _SYNODIC_MONTH)
    # HND takes new moon k+1, else k. The mean-month estimate of k can be one off when a new moon
    # falls right at local midnight (e.g. 2054-05-07, 2062-04-09 would give "day 0"), so walk to
    # the new moon that really starts the month containing day_number.
    while _new_moon_day(k + 1) > day_number:
        k -= 1
    while _new_moon_day(k + 2) <= day_number:
        k += 1
    month_start = _new_moon_day(k + 1)
    a11 = _month11_start(d.year)
    b11 = a11
    if a11 >= month_start:
        lunar_year = d.year
        a11 = _month11_start(d.year - 1)
    else:
        lunar_year = d.year + 1
        b11 = _month11_start(d.year + 1)
    lunar_day = day_number - month_start + 1
    diff = math.floor((month_start - a11) / 29)
    leap = False
    lunar_month = diff + 11
    if b11 - a11 > 365:  # 13 lunar months between the two solstice months: one is leap
        leap_month_diff = _leap_month_offset(a11)
        if diff >= leap_month_diff:
            lunar_month = diff + 10
            if diff == leap_month_diff:
                leap = True
    if lunar_month > 12:
        lunar_month -= 12
    if lunar_month >= 11 and diff < 4:
        lunar_year -= 1
    return LunarDate(lunar_year, lunar_month, lunar_day, leap)


def _month_index(year: int, month: int, leap: bool) -> int | None:
    """The new-moon index k of lunar month (year, month, leap), or None when it does not exist."""
    if not 1 <= month <= 12:
        return None
    if month < 11:
        a11 = _month11_start(year - 1)
        b11 = _month11_start(year)
    else:
        a11 = _month11_start(year)
        b11 = _month11_start(year + 1)
    off = month - 11
    if off < 0:
        off += 12
    if b11 - a11 > 365:
        leap_off = _leap_month_offset(a11)
        leap_month = leap_off - 2
        if leap_month <= 0:
            leap_month += 12
        if leap and month != leap_month:
            return None
        if leap or off >= leap_off:
            off += 1
    elif leap:
        return None
    k = math.floor(0.5 + (a11 - _NEW_MOON_EPOCH) / _SYNODIC_MONTH)
    return k + off


def lunar_month_length(year: int, month: int, leap: bool = False) -> int | None:
    """29 or 30: the days of lunar month (year, month, leap); None when that month does not exist."""
    k = _month_index(year, month, leap)
    if k is None:
        return None
    return _new_moon_day(k + 1) - _new_moon_day(k)


def lunar_to_solar(year: int, month: int, day: int, leap: bool = False) -> date | None:
    """The Gregorian date of a Vietnamese lunar date (HND's convertLunar2Solar).

    None when that lunar day does not exist that year: a leap month the year does not have, day 30
    of a 29-day month, month or day out of range. Never rolls over into the next month.
    """
    k = _month_index(year, month, leap)
    if k is None or not 1 <= day <= 30:
        return None
    start = _new_moon_day(k)
    if day > _new_moon_day(k + 1) - start:
        return None
    return _date(start + day - 1)


def leap_month(year: int) -> int | None:
    """The number of the leap month of lunar year ``year`` (e.g. 2 for 2023), or None."""
    for month in range(1, 13):
        if _month_index(year, month, True) is not None:
            return month
    return None


def tet(year: int) -> date:
    """Mùng 1 Tết (1/1 lunar) of lunar year ``year``, in the Gregorian calendar."""
    result = lunar_to_solar(year, 1, 1)
    assert result is not None  # month 1 always exists and day 1 always does
    return result


def lunar_anniversary(year: int, month: int, day: int) -> date:
    """The day a yearly lunar date (a lunar birthday, a giỗ) falls on in lunar year ``year``.

    Custom, not law: a date of a leap month is kept in the regular month of the same number
    (leap months recur only every few years), and day 30 of a month that has 29 days this year is
    kept on day 29 (the last day of that month). ``month`` 1..12, ``day`` 1..30.
    """
    exact = lunar_to_solar(year, month, day)
    if exact is not None:
        return exact
    # Only day 30 can be missing from a regular month: take the month's last day.
    last = lunar_to_solar(year, month, 29)
    if last is None:
        raise ValueError(f"Invalid lunar date {day}/{month}")
    return last


def lunar_dates_between(start: date, end: date) -> list[tuple[date, LunarDate]]:
    """Every day from ``start`` to ``end`` inclusive with its lunar date (for calendars, previews)."""
    days = (end - start).days
    return [(start + timedelta(n), solar_to_lunar(start + timedelta(n))) for n in range(days + 1)]
