"""Turning a campaign's parameter mapping and one contact into the template data we send.

A mapping is {param name: {"source": ..., "value": ..., "format": ...}} where source is
- "field": a contact field ("phone", "name");
- "attribute": a key of Contact.attributes;
- "column": a column of the uploaded file. Imports store extra columns as attributes under the
  column's header, so this is an attribute looked up by header, forgiving case, accents and
  spacing ("Thành phố" finds "thanh_pho");
- "constant": the value itself;
- "expression": a small template combining sources, e.g. "{name} - {attr.city}" or
  "{attr.total|amount} đ". Placeholders: {name}, {phone}, {attr.KEY}, {col.HEADER}, each with
  optional "|format" filters; "{{" and "}}" are literal braces. No code is ever evaluated.

"format" is a formatter name from FORMATTERS, or several joined with "|" ("trim|upper").

Mappings are compiled once (`compile_mapping`) into plain closures: materializing or validating
100,000 recipients must not re-parse the mapping per recipient.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from django.utils.translation import gettext_lazy as _

CONTACT_FIELDS = ("phone", "name")
SOURCES = ("field", "attribute", "column", "constant", "expression")

# (source, label) for mapping forms.
SOURCE_CHOICES = [
    ("field", _("Contact field")),
    ("attribute", _("Contact attribute")),
    ("column", _("Column of the uploaded file")),
    ("constant", _("Fixed text")),
    ("expression", _("Expression")),
]


# ---- text helpers --------------------------------------------------------------------------------

_SPECIAL = str.maketrans({"đ": "d", "Đ": "D"})


def fold(text: str) -> str:
    """Remove Vietnamese diacritics: "Nguyễn Đức" -> "Nguyen Duc" (đ is a letter, not an accent).
    The same algorithm as campaigns.text.fold, kept here because templates_app must not import
    campaigns."""
    decomposed = unicodedata.normalize("NFD", (text or "").translate(_SPECIAL))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def nfc(text: str) -> str:
    if text.isascii() or unicodedata.is_normalized("NFC", text):
        return text
    return unicodedata.normalize("NFC", text)


_KEY_SEPARATORS = re.compile(r"[\s_\-.]+")


def _key(text: str) -> str:
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
    from django.utils import timezone

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
    from providers.phones import to_local

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


class MappingError(ValueError):
    pass


def _formatter_chain(fmt: object) -> tuple[Callable[[Any], str], bool]:
    """(formatter, runs_on_empty) for "a|b|c"; raises MappingError on an unknown name."""
    names = [n.strip() for n in str(fmt or "").split("|") if n.strip()]
    for n in names:
        if n not in FORMATTERS:
            raise MappingError(str(_("unknown format “{name}”")).format(name=n))
    if not names:
        return FORMATTERS[""], False
    funcs = [FORMATTERS[n] for n in names]
    on_empty = names[0] in FORMATTERS_ON_EMPTY
    if len(funcs) == 1:
        return funcs[0], on_empty

    def chain(v):
        for f in funcs:
            v = f(v)
        return v

    return chain, on_empty


# ---- contacts and compiled getters ---------------------------------------------------------------


@dataclass(frozen=True)
class ContactData:
    phone: str
    name: str
    attributes: dict[str, Any]
    contact_id: int | None = None


# A getter reads one raw value from (phone, name, attributes).
Getter = Callable[[str, str, dict], str]


def _as_text(v: object) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))  # a JSON 1500000.0 is the number 1500000
    return v if isinstance(v, str) else str(v)


def _field_getter(name: str) -> Getter:
    if name == "phone":
        return lambda p, n, a: p or ""
    if name == "name":
        return lambda p, n, a: n or ""
    raise MappingError(str(_("unknown contact field “{name}”")).format(name=name))


def _attribute_getter(key: str) -> Getter:
    def get(p, n, a):
        v = a.get(key) if a else None
        return v if v.__class__ is str else _as_text(v)

    return get


def _column_getter(header: str) -> Getter:
    wanted = _key(header)

    def get(p, n, a):
        if not a:
            return ""
        v = a.get(header)
        if v is None:
            # Only on a miss: compare forgivingly (imports keep headers as typed in the file).
            for k, val in a.items():
                if _key(k) == wanted:
                    return _as_text(val)
            return ""
        return _as_text(v)

    return get


_EXPR_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")


def _ref_getter(ref: str) -> Getter:
    ref = ref.strip()
    head, _dot, rest = ref.partition(".")
    head = head.strip().lower()
    if not _dot:
        if head in CONTACT_FIELDS:
            return _field_getter(head)
        raise MappingError(str(_("unknown placeholder “{ref}”")).format(ref=ref))
    if not rest.strip():
        raise MappingError(str(_("unknown placeholder “{ref}”")).format(ref=ref))
    if head in ("attr", "attribute", "attributes"):
        return _attribute_getter(rest.strip())
    if head in ("col", "column"):
        return _column_getter(rest.strip())
    raise MappingError(str(_("unknown placeholder “{ref}”")).format(ref=ref))


def compile_expression(expr: str) -> Getter:
    """ "{name} - {attr.city|upper}" -> a getter. Raises MappingError on unknown placeholders."""
    parts: list[str | tuple[Getter, Callable, bool]] = []
    pos = 0
    for m in _EXPR_TOKEN.finditer(expr or ""):
        if m.start() > pos:
            parts.append(expr[pos : m.start()])
        token = m.group(0)
        if token == "{{":
            parts.append("{")
        elif token == "}}":
            parts.append("}")
        else:
            ref, _bar, fmt = m.group(1).partition("|")
            formatter, on_empty = _formatter_chain(fmt)
            parts.append((_ref_getter(ref), formatter, on_empty))
        pos = m.end()
    if pos < len(expr or ""):
        rest = expr[pos:]
        if "{" in rest or "}" in rest:
            raise MappingError(str(_("unbalanced braces in “{expr}”")).format(expr=expr))
        parts.append(rest)

    def get(p, n, a):
        out = []
        for part in parts:
            if isinstance(part, str):
                out.append(part)
            else:
                getter, formatter, on_empty = part
                raw = getter(p, n, a)
                out.append(formatter(raw).strip() if (raw or on_empty) else "")
        return "".join(out)

    return get


def compile_spec(spec: dict | None, *, strict: bool = False) -> Getter:
    """One param's spec -> getter of its final (formatted, trimmed, NFC) value.

    strict=False (rendering): a broken spec renders "" so validation reports the param missing
    instead of the engine crashing; strict=True (checking a mapping) raises MappingError.
    """
    try:
        return _compile_spec(spec or {})
    except MappingError:
        if strict:
            raise
        return lambda p, n, a: ""


def _compile_spec(spec: dict) -> Getter:
    raw_get, finish = compile_spec_parts(spec)

    def get(p, n, a):
        return finish(raw_get(p, n, a))

    return get


def compile_spec_parts(spec: dict) -> tuple[Getter, Callable[[str], str]]:
    """(raw getter, finisher): the raw value read from the contact, and what turns it into the
    final value (formatters, trim, NFC). Split so that callers handling many recipients can cache
    the finisher's result per distinct raw value. Raises MappingError."""
    if not isinstance(spec, dict):
        raise MappingError(str(_("the mapping is not an object")))
    source = spec.get("source", "constant") or "constant"
    value = spec.get("value", "")
    value = "" if value is None else str(value)
    formatter, on_empty = _formatter_chain(spec.get("format", ""))
    if source == "field":
        raw_get = _field_getter(value)
    elif source == "attribute":
        raw_get = _attribute_getter(value)
    elif source == "column":
        raw_get = _column_getter(value)
    elif source == "constant":
        const = value

        def raw_get(p, n, a):
            return const
    elif source == "expression":
        raw_get = compile_expression(value)
    else:
        raise MappingError(str(_("unknown source “{source}”")).format(source=source))

    def finish(raw: str) -> str:
        if raw == "" and not on_empty:
            return ""
        out = formatter(raw)
        out = out.strip() if isinstance(out, str) else str(out).strip()
        return out if out.isascii() else nfc(out)

    return raw_get, finish


@dataclass
class CompiledMapping:
    getters: list[tuple[str, Getter]] = field(default_factory=list)

    def render(self, phone: str, name: str, attributes: dict | None) -> dict[str, str]:
        a = attributes or {}
        return {param: get(phone, name, a) for param, get in self.getters}

    def render_contact(self, contact: ContactData) -> dict[str, str]:
        return self.render(contact.phone, contact.name, contact.attributes)


def compile_mapping(mapping: dict[str, dict] | None) -> CompiledMapping:
    return CompiledMapping([(p, compile_spec(spec)) for p, spec in (mapping or {}).items()])


# The engine calls render_params once per recipient with the same mapping object: reuse the last
# compilation while the mapping is unchanged (compared by value, so an edited dict recompiles).
_last_compiled = threading.local()


def _compiled_for(mapping: dict) -> CompiledMapping:
    cached = getattr(_last_compiled, "entry", None)
    if cached is not None and cached[0] is mapping and cached[1] == mapping:
        return cached[2]
    compiled = compile_mapping(mapping)
    try:
        snapshot = {k: dict(v) if isinstance(v, dict) else v for k, v in mapping.items()}
    except AttributeError:
        return compiled
    _last_compiled.entry = (mapping, snapshot, compiled)
    return compiled


def _contact_parts(contact: Any) -> tuple[str, str, dict]:
    return contact.phone or "", contact.name or "", getattr(contact, "attributes", None) or {}


def resolve(spec: dict, contact: ContactData) -> str:
    return compile_spec(spec)(*_contact_parts(contact))


def render_params(mapping: dict[str, dict], contact: ContactData) -> dict[str, str]:
    """Template data for one contact (a ContactData or a Contact)."""
    return _compiled_for(mapping or {}).render(*_contact_parts(contact))


# ---- placeholders in bodies ---------------------------------------------------------------------

PLACEHOLDER_RE = re.compile(r"\{\{\s*([\w.]+)\s*\}\}")
_ANGLE_RE = re.compile(r"<([\w.]+)>")


def render_body(body: str, data: dict[str, str]) -> str:
    """Preview text with {{param}} or <param> placeholders filled (Zalo previews write <param>)."""

    def sub(m: re.Match) -> str:
        return data.get(m.group(1).strip(), m.group(0))

    text = PLACEHOLDER_RE.sub(sub, body or "")
    return _ANGLE_RE.sub(sub, text)


def render_placeholders(
    text: str, data: dict[str, str], *, escape: Callable[[str], str] | None = None
) -> str:
    """Fill {{param}} only (free content: SMS, Viber, email). Unknown placeholders stay visible so
    a preview shows what is missing; `escape` is applied to values (HTML for email bodies)."""

    def sub(m: re.Match) -> str:
        name = m.group(1)
        if name not in data:
            return m.group(0)
        return escape(data[name]) if escape else data[name]

    return PLACEHOLDER_RE.sub(sub, text or "")


def placeholders(*texts: str) -> list[str]:
    """Distinct {{placeholder}} names in order of first appearance."""
    seen: dict[str, None] = {}
    for text in texts:
        for m in PLACEHOLDER_RE.finditer(text or ""):
            seen.setdefault(m.group(1), None)
    return list(seen)


# ---- mapping checks and suggestions -------------------------------------------------------------


def validate_mapping(mapping: dict, param_names: list[str]) -> list[str]:
    """Structural errors of a mapping (missing params, unknown sources, formats, placeholders);
    an empty list when fine."""
    errors = []
    mapping = mapping if isinstance(mapping, dict) else {}
    for name in param_names:
        spec = mapping.get(name)
        if not spec:
            errors.append(str(_("Parameter “{name}” has no mapping.")).format(name=name))
            continue
        if not isinstance(spec, dict) or spec.get("source") not in SOURCES:
            errors.append(str(_("Parameter “{name}” has an unknown source.")).format(name=name))
            continue
        try:
            _formatter_chain(spec.get("format", ""))
        except MappingError:
            errors.append(str(_("Parameter “{name}” has an unknown format.")).format(name=name))
            continue
        try:
            _compile_spec(spec)
        except MappingError as exc:
            errors.append(str(_("Parameter “{name}”: {error}.")).format(name=name, error=str(exc)))
    return errors


_NAME_HINTS = {"name", "customer_name", "ten", "ho_ten", "fullname", "full_name", "ten_khach_hang"}
_PHONE_HINTS = {"phone", "phone_number", "sdt", "so_dien_thoai", "mobile"}


def mapping_suggest(params: list[Any]) -> dict[str, dict]:
    """A starting mapping: name-like params from the contact's name, phone-like from the phone,
    everything else from the file column of the same name; formats from the param type."""
    type_formats = {
        "amount": "amount",
        "currency": "currency",
        "date": "date",
        "title": "title",
        "phone_number": "phone_local",
        "customer_name": "trim",
    }
    out = {}
    for p in params:
        name = p if isinstance(p, str) else p.name
        ptype = "" if isinstance(p, str) else getattr(p, "param_type", "")
        key = _key(name)
        if key in _NAME_HINTS or ptype == "customer_name":
            spec = {"source": "field", "value": "name"}
        elif key in _PHONE_HINTS:
            spec = {"source": "field", "value": "phone"}
        else:
            spec = {"source": "column", "value": name}
        fmt = type_formats.get(ptype, "")
        if ptype == "title" and spec["source"] == "column":
            spec = {"source": "attribute", "value": "gender"}
        if fmt:
            spec["format"] = fmt
        out[name] = spec
    return out
