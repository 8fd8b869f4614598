"""Typed contact attributes: what a declared type (campaigns.models.AttributeDefinition) does to
a cell on import, and the stored forms other rooms read. Pure (no model import).

Stored forms in Contact.attributes (strings, so one JSON dict holds every attribute):
- date:        ISO "YYYY-MM-DD" ("1990-02-05"), whatever the file wrote: dd/mm/yyyy (default),
               an Excel serial number (32909), or ISO. Sorts and compares as text; the segment
               rules and the date-triggered automations read this form.
- lunar_date:  the lunar (Vietnamese calendar) date as "YYYY-MM-DD" of the lunar year, month
               and day, with "L" appended for a day of a leap month ("2023-02-15L" is 15 of the
               leap second month of Quý Mão). parse_lunar_value() reads it back. The file writes
               dd/mm/yyyy (lunar), optionally followed by "nhuận" / "(nhuận)" / "N" / "leap" / "L".
- number:      the number in plain form ("1500000", "0.5"): "1.500.000", "1,500,000" and "0,5"
               are read as Vietnamese files write them (segment_rules.number_value).
- text:        the cell as it is (trimmed), as before types existed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, timedelta
from functools import lru_cache

from django.utils.translation import gettext as _

from campaigns.segment_rules import number_value

TEXT, NUMBER, DATE, LUNAR_DATE = "text", "number", "date", "lunar_date"
DMY, ISO, EXCEL = "dmy", "iso", "excel"

# Excel's day 0 is 1899-12-30 for serials past 60 (it counts the non-existent 29/02/1900);
# serials 1-60 are January-February 1900, which no contact file holds: refused.
_EXCEL_EPOCH = date(1899, 12, 30)
_EXCEL_MIN, _EXCEL_MAX = 61, 109574  # 1900-03-01 .. 2199-12-31
_YEARS = (1900, 2199)

_DMY_RX = re.compile(r"(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4})")
_ISO_RX = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?")
_SERIAL_RX = re.compile(r"\d{2,6}(?:\.\d+)?")
_LUNAR_RX = re.compile(
    r"(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4})\s*(?:\(?\s*(nhuận|nhuan|n|leap|l)\s*\)?)?",
    re.IGNORECASE,
)
_STORED_LUNAR_RX = re.compile(r"(\d{4})-(\d{2})-(\d{2})(L?)")


def _date_or_none(y: str | int, m: str | int, d: str | int) -> date | None:
    try:
        result = date(int(y), int(m), int(d))
    except ValueError:
        return None
    return result if _YEARS[0] <= result.year <= _YEARS[1] else None


def _iso_date(text: str) -> date | None:
    m = _ISO_RX.fullmatch(text)
    return _date_or_none(*m.groups()) if m else None


def excel_serial_date(text: str) -> date | None:
    """Excel's serial day number (32909 -> 1990-02-05; a time fraction is dropped)."""
    if not _SERIAL_RX.fullmatch(text):
        return None
    serial = int(float(text))
    if not _EXCEL_MIN <= serial <= _EXCEL_MAX:
        return None
    return _EXCEL_EPOCH + timedelta(days=serial)


def parse_typed_date(text: str, date_format: str = DMY) -> date | None:
    """A cell of a date column in its declared format. An XLSX cell Excel stored as a date
    arrives as ISO whatever the format (the reader writes dates ISO): accepted in every format.
    """
    text = text.strip()
    if date_format == EXCEL:
        return excel_serial_date(text) or _iso_date(text)
    if date_format == ISO:
        return _iso_date(text)
    m = _DMY_RX.fullmatch(text)
    if m:
        d, mo, y = m.groups()
        return _date_or_none(y, mo, d)
    return _iso_date(text)


def parse_lunar_input(text: str) -> tuple[int, int, int, bool] | None:
    """A lunar date as a file writes it: "15/08/1990", "15/02/2023 nhuận" -> (y, m, d, leap).

    Checks the ranges only (month 1-12, day 1-30, year 1900-2199): whether day 30 exists that
    month, or the year has that leap month, is the calendar's business (the automations read it
    with campaigns.automations.calendar.lunar.lunar_anniversary, which keeps a missing day 30
    on day 29 and a leap month's date in the regular month).
    """
    m = _LUNAR_RX.fullmatch(text.strip())
    if not m:
        return None
    d, mo, y, leap = m.groups()
    d, mo, y = int(d), int(mo), int(y)
    if not (1 <= d <= 30 and 1 <= mo <= 12 and _YEARS[0] <= y <= _YEARS[1]):
        return None
    return y, mo, d, bool(leap)


def lunar_value(year: int, month: int, day: int, leap: bool = False) -> str:
    """The stored form of a lunar date: "1990-08-15", "2023-02-15L"."""
    return f"{year:04d}-{month:02d}-{day:02d}{'L' if leap else ''}"


def parse_lunar_value(stored: object) -> tuple[int, int, int, bool] | None:
    """The stored form back: "2023-02-15L" -> (2023, 2, 15, True); None when it is not one."""
    m = _STORED_LUNAR_RX.fullmatch(str(stored or ""))
    if not m:
        return None
    y, mo, d, leap = m.groups()
    return int(y), int(mo), int(d), leap == "L"


def _number_text(text: str) -> str | None:
    if text.isascii() and text.isdigit():  # the common cell ("7012000"): no regex (import speed)
        return str(int(text))
    value = number_value(text)
    if value is None:
        return None
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


def converter(kind: str, date_format: str = DMY) -> Callable[[str], str | None] | None:
    """What an import does to a non-empty cell of a column of this type: the stored form, or
    None when the cell does not parse. None for text (nothing to do: the fast path)."""
    if kind == DATE:
        # Cached: a million contacts hold a few tens of thousands of distinct birthdays, so most
        # cells cost a dict lookup (0.1 µs) instead of a parse (several µs): import speed.

        @lru_cache(maxsize=65536)
        def convert_date(text: str) -> str | None:
            parsed = parse_typed_date(text, date_format)
            return parsed.isoformat() if parsed else None

        return convert_date
    if kind == LUNAR_DATE:

        def convert_lunar(text: str) -> str | None:
            if parse_lunar_value(text):  # already the stored form (a re-import, a conversion)
                return text
            parsed = parse_lunar_input(text)
            return lunar_value(*parsed) if parsed else None

        return convert_lunar
    if kind == NUMBER:
        return _number_text
    return None


def expected_text(kind: str, date_format: str = DMY) -> str:
    """What a value of this type looks like, in words ("a date dd/mm/yyyy")."""
    if kind == DATE:
        return {
            DMY: _("a date dd/mm/yyyy"),
            ISO: _("a date yyyy-mm-dd"),
            EXCEL: _("an Excel date (a serial number such as 32909)"),
        }.get(date_format, _("a date"))
    if kind == LUNAR_DATE:
        return _("a lunar date dd/mm/yyyy (optionally followed by “nhuận”)")
    return _("a number")


def unparsed_reason(key: str, kind: str, date_format: str, value: str) -> str:
    """The import report's reason for a cell of a typed column that does not parse."""
    return _(
        "Imported without “{key}”: “{value}” is not {expected}; the row’s other values were imported."
    ).format(key=key, value=value[:100], expected=expected_text(kind, date_format))
