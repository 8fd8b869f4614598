"""Formatters: one raw value from a contact (an attribute, a file column) -> the text a template
parameter expects, the way Vietnamese files and Zalo write it (amounts "1.000.000", dates
dd/mm/yyyy, salutations "Anh"/"Chị", local phone numbers), and the value parsing they share.

A mapping names formatters by key (FORMATTERS, "trim|upper" chains them); templates_app.rendering
compiles mappings over them. Formatting 100,000 recipients' values must take a fraction of a
second: patterns are precompiled and dates are built directly, not by trying strptime formats.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from django.utils import timezone
from django.utils.formats import number_format
from django.utils.translation import gettext_lazy as _

from providers.shared.phones import to_local
from providers.shared.text import fold

# ---- text helpers --------------------------------------------------------------------------------


def nfc(text: str) -> str:
    if text.isascii() or unicodedata.is_normalized("NFC", text):
        return text
    return unicodedata.normalize("NFC", text)


_KEY_SEPARATORS = re.compile(r"[\s_\-.]+")


def column_key(text: str) -> str:
    """Forgiving column-name key: "Thành phố", "thanh_pho" and "THANH PHO" are the same."""
    return _KEY_SEPARATORS.sub("_", fold(str(text)).strip().lower())


# ---- numbers -------------------------------------------------------------------------------------

_CURRENCY_MARKS = re.compile(r"(?i)(vnđ|vnd|đồng|dong|đ|₫)")
_NUMBER_CHARS = re.compile(r"[\d.,]+")
_GROUPED = {
    ".": re.compile(r"\d{1,3}(\.\d{3})+"),
    ",": re.compile(r"\d{1,3}(,\d{3})+"),
}


def parse_number(value: object) -> Decimal | None:
    """Read a number the way Vietnamese files write it.

    "1.500.000", "1,500,000", "1500000", "1500000.0" (Excel), "1.500.000 đ" -> 1500000;
    "0,3" and "0.3" -> 0.3; "1.500,5" and "1,500.5" -> 1500.5. A single "." followed by exactly
    three digits ("1.500") is read as a thousands separator (the Vietnamese convention) unless the
    integer part is 0; likewise a single "," followed by three digits ("1,500").
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int | Decimal):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    text = str(value or "")
    if text.isdigit() and text.isascii():  # the common case, without the regexes below
        return Decimal(text)
    text = _CURRENCY_MARKS.sub("", text).replace("\u00a0", "").replace(" ", "")
    if not text:
        return None
    sign = ""
    if text[0] in "+-":
        sign, text = ("-" if text[0] == "-" else ""), text[1:]
    if not _NUMBER_CHARS.fullmatch(text) or not text[0].isdigit():
        return None
    dots, commas = text.count("."), text.count(",")
    if dots and commas:
        decimal_sep = "." if text.rfind(".") > text.rfind(",") else ","
        thousands = "," if decimal_sep == "." else "."
        text = text.replace(thousands, "").replace(decimal_sep, ".")
    elif dots or commas:
        sep = "." if dots else ","
        count = dots or commas
        grouped = _GROUPED[sep].fullmatch(text)
        if count > 1:
            if not grouped:
                return None
            text = text.replace(sep, "")
        elif grouped and not text.startswith("0"):
            text = text.replace(sep, "")
        else:
            text = text.replace(sep, ".")
    try:
        return Decimal(sign + text)
    except InvalidOperation:
        return None


def format_amount(value: object) -> str:
    """1000000 -> "1.000.000"; 0.3 -> "0,3" (Zalo's documented number format)."""
    if isinstance(value, str) and value.isdigit() and value.isascii():
        return f"{int(value):,}".replace(",", ".")
    number = parse_number(value)
    if number is None:
        return str(value)
    sign = "-" if number < 0 else ""
    number = abs(number)
    integer = int(number)
    frac = number - integer
    text = f"{integer:,}".replace(",", ".")
    if frac:
        text += "," + format(frac.normalize(), "f").split(".")[1]
    return sign + text


def format_currency(value: object) -> str:
    """Digits only, no decimals (Zalo currency type): "1.500.000 đ" -> "1500000";
    1500000.6 -> "1500001" (rounded half up)."""
    number = parse_number(value)
    if number is None:
        return str(value)
    return str(int(number.quantize(Decimal(1), rounding=ROUND_HALF_UP)))


def format_vnd(value: object) -> str:
    """An amount in VND as a person reads it on a page, in their language's grouping and never with
    decimals (VND has no minor unit): 99000.5 -> "99.001 ₫" in Vietnamese, "99,001 ₫" in English;
    None or unreadable -> "—". The one display rule for Message.fee, Campaign.cost and
    Template.price (the `vnd` filter of {% load loa_money %}, the admin lists, the wizard)."""
    number = parse_number(value) if value is not None and value != "" else None
    if number is None:
        return "—"
    whole = int(number.quantize(Decimal(1), rounding=ROUND_HALF_UP))
    return f"{number_format(whole, use_l10n=True, force_grouping=True)}{VND_SIGN}"


# The sign after a VND amount on pages, after a no-break space, as the XLSX export's number format
# writes it (campaigns.selectors.export_xlsx.VND_FORMAT); progress.js appends the same.
VND_SIGN = "\u00a0₫"


# ---- dates and times -----------------------------------------------------------------------------
# Precompiled patterns and direct datetime() construction instead of trying strptime formats one
# after another: formatting 100,000 recipients' dates must take a fraction of a second.

_SPACES = re.compile(r"\s+")
_D = r"(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4}|\d{2})"  # 01/08/2024, 1-8-2024, 01.08.24
_T = r"(\d{1,2}):(\d{2})(?::(\d{2}))?"  # 9:05, 09:05:07
_RX_ISO_DATE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
_RX_ISO_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d")
_RX_YMD = re.compile(r"(\d{4})/(\d{1,2})/(\d{1,2})")
_RX_DATE = re.compile(_D)
_RX_TIME = re.compile(_T)
_RX_DATE_TIME = re.compile(_D + " " + _T)
_RX_TIME_DATE = re.compile(_T + " " + _D)
_RX_MONTH = re.compile(r"(\d{1,2})/(\d{4})|(\d{4})-(\d{1,2})")


@dataclass(frozen=True)
class _When:
    value: datetime
    has_date: bool
    has_time: bool
    month_only: bool = False


def _year(text: str) -> int:
    y = int(text)
    if len(text) == 2:  # as strptime's %y: 69-99 -> 19xx, 00-68 -> 20xx
        y += 1900 if y >= 69 else 2000
    return y


def _dt(y, mo, d, h=0, mi=0, s=0) -> datetime | None:
    try:
        return datetime(int(y), int(mo), int(d), int(h), int(mi), int(s or 0))
    except ValueError:
        return None


def parse_when(value: object) -> _When | None:
    """Read a date, a time or both; aware datetimes are shown in Vietnam time.

    Accepted: ISO dates and datetimes (with a zone or not), dd/mm/yyyy (or with - or .),
    yyyy/mm/dd, dd/mm/yyyy hh:mm[:ss], hh:mm[:ss] dd/mm/yyyy, hh:mm[:ss], mm/yyyy, yyyy-mm.
    """
    if isinstance(value, datetime):
        return _When(_local(value), True, True)
    if isinstance(value, date):
        return _When(datetime(value.year, value.month, value.day), True, False)
    if isinstance(value, time):
        return _When(datetime.combine(date(2000, 1, 1), value), False, True)
    text = str(value or "").strip()
    if not text:
        return None
    if " " in text or "\t" in text or "\n" in text:
        text = _SPACES.sub(" ", text)
    m = _RX_ISO_DATE.fullmatch(text)
    if m:
        dt = _dt(*m.groups())
        return _When(dt, True, False) if dt else None
    if _RX_ISO_DATETIME.match(text):
        try:
            return _When(_local(datetime.fromisoformat(text.replace("Z", "+00:00"))), True, True)
        except ValueError:
            return None
    m = _RX_DATE_TIME.fullmatch(text)
    if m:
        d, mo, y, h, mi, s = m.groups()
        dt = _dt(_year(y), mo, d, h, mi, s)
        return _When(dt, True, True) if dt else None
    m = _RX_TIME_DATE.fullmatch(text)
    if m:
        h, mi, s, d, mo, y = m.groups()
        dt = _dt(_year(y), mo, d, h, mi, s)
        return _When(dt, True, True) if dt else None
    m = _RX_DATE.fullmatch(text)
    if m:
        d, mo, y = m.groups()
        dt = _dt(_year(y), mo, d)
        return _When(dt, True, False) if dt else None
    m = _RX_YMD.fullmatch(text)
    if m:
        dt = _dt(*m.groups())
        return _When(dt, True, False) if dt else None
    m = _RX_TIME.fullmatch(text)
    if m:
        h, mi, s = m.groups()
        dt = _dt(2000, 1, 1, h, mi, s)
        return _When(dt, False, True) if dt else None
    m = _RX_MONTH.fullmatch(text)
    if m:
        mo, y = (m.group(1), m.group(2)) if m.group(1) else (m.group(4), m.group(3))
        dt = _dt(y, mo, 1)
        return _When(dt, True, False, month_only=True) if dt else None
    return None


def _local(dt: datetime) -> datetime:
    if dt.tzinfo is None:
        return dt
    return timezone.localtime(dt).replace(tzinfo=None)


# Output layouts (f-strings: strftime is several times slower and locale-dependent).
def _hm(d: datetime) -> str:
    return f"{d.hour:02d}:{d.minute:02d}"


def _hms(d: datetime) -> str:
    return f"{d.hour:02d}:{d.minute:02d}:{d.second:02d}"


def _dmy(d: datetime) -> str:
    return f"{d.day:02d}/{d.month:02d}/{d.year:04d}"


def _when_formatter(layout, *, needs_date: bool, needs_time: bool, needs_day: bool = True):
    def formatter(value: object) -> str:
        when = parse_when(value)
        if (
            when is None
            or (needs_date and not when.has_date)
            or (needs_time and not when.has_time)
            or (needs_day and when.month_only)
        ):
            return str(value)  # left as it is: validation names the problem
        return layout(when.value)

    return formatter


format_date = _when_formatter(_dmy, needs_date=True, needs_time=False)
format_time_hm = _when_formatter(_hm, needs_date=False, needs_time=True)
format_time_hms = _when_formatter(_hms, needs_date=False, needs_time=True)
format_datetime_hm = _when_formatter(
    lambda d: f"{_hm(d)} {_dmy(d)}", needs_date=True, needs_time=True
)
format_datetime_hms = _when_formatter(
    lambda d: f"{_hms(d)} {_dmy(d)}", needs_date=True, needs_time=True
)
format_month = _when_formatter(
    lambda d: f"{d.month:02d}/{d.year:04d}", needs_date=True, needs_time=False, needs_day=False
)


# ---- people --------------------------------------------------------------------------------------

_MALE = {"m", "male", "nam", "anh", "mr", "mr.", "ông", "ong", "trai"}
_FEMALE = {"f", "female", "nu", "nữ", "chị", "chi", "ms", "ms.", "mrs", "mrs.", "bà", "ba", "gái"}
_TITLES = {"anh": "Anh", "chị": "Chị", "ông": "Ông", "bà": "Bà", "cô": "Cô", "chú": "Chú"}


def format_title(value: object) -> str:
    """Gender attribute -> Vietnamese salutation: male "Anh", female "Chị", a title already written
    (Ông, Bà, Cô, Chú) kept, anything else "Anh/Chị". Note "Anh/Chị" is 7 characters: a Zalo
    title parameter (5) refuses it, and validation says so."""
    v = nfc(str(value or "")).strip().lower()
    if v in _TITLES:
        return _TITLES[v]
    if v in _MALE:
        return "Anh"
    if v in _FEMALE:
        return "Chị"
    return "Anh/Chị"


def format_phone_local(value: object) -> str:
    return to_local(str(value).strip())


def _trim(value: object) -> str:
    return " ".join(str(value).split())


_NON_DIGITS = re.compile(r"\D+")


FORMATTERS: dict[str, Callable[[Any], str]] = {
    "": lambda v: v,
    "trim": _trim,
    "upper": lambda v: str(v).upper(),
    "lower": lambda v: str(v).lower(),
    "capitalize": lambda v: _trim(v).title(),
    "no_accents": lambda v: fold(str(v)),
    "digits": lambda v: _NON_DIGITS.sub("", str(v)),
    "phone_local": format_phone_local,
    "amount": format_amount,
    "currency": format_currency,
    "date": format_date,
    "time_hm": format_time_hm,
    "time_hms": format_time_hms,
    "datetime_hm": format_datetime_hm,
    "datetime_hms": format_datetime_hms,
    "month": format_month,
    "title": format_title,
}

# Formatters that also produce a value from an empty one ("no gender" -> "Anh/Chị").
FORMATTERS_ON_EMPTY = frozenset({"title"})

FORMAT_CHOICES = [
    ("", _("As it is")),
    ("trim", _("Trim spaces")),
    ("upper", _("UPPER CASE")),
    ("lower", _("lower case")),
    ("capitalize", _("Capitalize Each Word")),
    ("no_accents", _("Without diacritics")),
    ("digits", _("Digits only")),
    ("phone_local", _("Phone as 0xxxxxxxxx")),
    ("amount", _("Amount 1.000.000")),
    ("currency", _("Currency, digits only, no decimals")),
    ("date", _("Date dd/mm/yyyy")),
    ("time_hm", _("Time hh:mm")),
    ("time_hms", _("Time hh:mm:ss")),
    ("datetime_hm", _("Time and date hh:mm dd/mm/yyyy")),
    ("datetime_hms", _("Time and date hh:mm:ss dd/mm/yyyy")),
    ("month", _("Month mm/yyyy")),
    ("title", _("Title Anh/Chị from gender")),
]
