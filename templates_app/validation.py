"""Per-value validation of template parameters, before anything is sent.

A ZNS message whose parameter breaks the template's rules fails at Zalo (-1121 too long, -1122
missing, -1124 bad format) and may still cost quota. Every rule Zalo documents is checked here so
the marketer sees the failure before the campaign starts.

Rules per type come from providers.md §4.4 (Zalo Business Solutions, "Các định dạng dữ liệu khi
truyền vào tham số"): customer name 30, phone 15, address 80 (200 in the newer enum), code 30,
label 30, transaction status 30, contact 50, title 5, product 100 (200 newer), amount 20 written
"1.000", time 20 in six formats, OTP 10, URL 200, currency 12 digits only, bank transfer note 90
without `@[]^_!"•#$%¥&'()*+,€-./:;{|<}=~>?`. A template's own min/max length (from the provider's
template detail) wins over these defaults.

Validators are compiled once per parameter (`compile_rule`), and `RecipientChecker` compiles a
mapping and its rules once, so that a 100,000-recipient audience (campaigns.engine.validation
walks it) is checked in a few seconds.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext as _

from templates_app.models import TemplateParam
from templates_app.rendering import MappingError, compile_spec_parts, render_params

T = TemplateParam.Type

# Default maximum lengths when the template does not give its own. For address and product the
# two Zalo sources disagree (80/100 in the data-format article, 200 in the newer enum): synced
# templates always carry Zalo's per-template maxLength, so the default only matters for templates
# entered by hand, where we take the current enum's 200.
DEFAULT_MAX: dict[str, int | None] = {
    T.TEXT: None,
    T.CUSTOMER_NAME: 30,
    T.PHONE: 15,
    T.ADDRESS: 200,
    T.CODE: 30,
    T.LABEL: 30,
    T.STATUS: 30,
    T.CONTACT: 50,
    T.TITLE: 5,
    T.PRODUCT: 200,
    T.AMOUNT: 20,
    T.TIME: 20,
    T.OTP: 10,
    T.URL: 200,
    T.CURRENCY: 12,
    T.BANK_NOTE: 90,
    T.NUMBER: 20,
    T.DATE: 10,
    T.DIGITS: 12,  # eSMS type_number: "digits 0-9 only, at most 12"
}

# Zalo's documented time formats (providers.md §4.4). Each value is checked for real: 31/02/2024
# has the right shape but is no date, 25:00 no time.
TIME_FORMATS: tuple[tuple[str, str], ...] = (
    ("hh:mm:ss", r"(\d{2}):(\d{2}):(\d{2})"),
    ("hh:mm", r"(\d{2}):(\d{2})()"),
    ("hh:mm:ss dd/mm/yyyy", r"(\d{2}):(\d{2}):(\d{2}) (\d{2})/(\d{2})/(\d{4})"),
    ("hh:mm dd/mm/yyyy", r"(\d{2}):(\d{2})() (\d{2})/(\d{2})/(\d{4})"),
    ("dd/mm/yyyy", r"()()()(\d{2})/(\d{2})/(\d{4})"),
    ("mm/yyyy", r"()()()()(\d{2})/(\d{4})"),
)
# Every format has its own length: one dictionary lookup picks the only pattern that can match.
_TIME_BY_LENGTH = {len(label): re.compile(rx) for label, rx in TIME_FORMATS}

# Zalo bank transfer note: these characters are refused (providers.md §4.4).
BANK_NOTE_FORBIDDEN = "@[]^_!\"•#$%¥&'()*+,€-./:;{|<}=~>?"
_BANK_NOTE_SET = frozenset(BANK_NOTE_FORBIDDEN)

_AMOUNT_RE = re.compile(r"-?\d{1,3}(?:\.\d{3})*(?:,\d+)?")  # 1.000.000 / 0,3
_NUMBER_RE = re.compile(r"[+-]?\d+(?:\.\d+)?")  # Zalo "Number": sign, "." decimal
_DIGITS_RE = re.compile(r"\d+")
_OTP_RE = re.compile(r"[A-Za-z0-9]+")
_PHONE_RE = re.compile(r"\+?[\d .()\-]+")
_DATE_RE = re.compile(r"(\d{2})/(\d{2})/(\d{4})")


@dataclass(frozen=True)
class Problem:
    """Why one value would fail. `code` groups problems in summaries; `message` is for people."""

    code: str  # missing | too_long | too_short | format
    message: str


@dataclass(frozen=True)
class ParamRule:
    name: str
    param_type: str
    required: bool
    min_length: int
    max_length: int | None  # effective: the template's own, else the type's default


def rule_for(param: Any) -> ParamRule:
    """The effective rule of a TemplateParam (or any object with the same attributes)."""
    ptype = getattr(param, "param_type", T.TEXT) or T.TEXT
    own_max = getattr(param, "max_length", None)
    return ParamRule(
        name=param.name,
        param_type=ptype,
        required=bool(getattr(param, "required", True)),
        min_length=int(getattr(param, "min_length", 0) or 0),
        max_length=own_max if own_max else DEFAULT_MAX.get(ptype),
    )


def text_length(value: str) -> int:
    """Characters as Zalo counts them: composed (NFC), so "Nguyễn" typed with combining accents
    is not counted longer than the same name typed precomposed."""
    if value.isascii():
        return len(value)
    return len(unicodedata.normalize("NFC", value))


# ---- format checks: value (non-empty) -> True when well-formed ----------------------------------


_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _valid_date(day: int, month: int, year: int) -> bool:
    if not (1 <= month <= 12 and 1 <= day <= _DAYS[month - 1] and year >= 1):
        return False
    if month == 2 and day == 29:
        return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    return True


def _is_time(value: str) -> bool:
    rx = _TIME_BY_LENGTH.get(len(value))
    m = rx.fullmatch(value) if rx is not None else None
    if m is None:
        return False
    hh, mi, ss = m.group(1), m.group(2), m.group(3)
    if hh and (int(hh) > 23 or int(mi) > 59 or (ss and int(ss) > 59)):
        return False
    if len(m.groups()) > 3:
        dd, mo, yy = m.group(4), m.group(5), m.group(6)
        if mo and not _valid_date(int(dd) if dd else 1, int(mo), int(yy)):
            return False
    return True


def _is_date(value: str) -> bool:
    m = _DATE_RE.fullmatch(value)
    return m is not None and _valid_date(int(m.group(1)), int(m.group(2)), int(m.group(3)))


def _is_url(value: str) -> bool:
    # CTA parameters must be URL-encoded (providers.md §4.4): printable ASCII, no spaces; an
    # absolute link must be http(s).
    if not value.isascii() or any(ch.isspace() or ord(ch) < 32 for ch in value):
        return False
    if "://" in value:
        return value.lower().startswith(("http://", "https://")) and len(value) > 8
    return True


def _is_phone(value: str) -> bool:
    return bool(_PHONE_RE.fullmatch(value)) and sum(ch.isdigit() for ch in value) >= 3


def _is_currency(value: str) -> bool:
    return bool(_DIGITS_RE.fullmatch(value)) and value.strip("0") != ""


def _is_number(value: str) -> bool:
    # Zalo documents "Number" with a "." decimal and "amount" as "1.000"; accept either so that an
    # amount-formatted value passes a generic number param.
    return bool(_NUMBER_RE.fullmatch(value) or _AMOUNT_RE.fullmatch(value))


def _bank_note_ok(value: str) -> bool:
    return not (_BANK_NOTE_SET & set(value))


# type -> (format check, message when it fails)
def _format_rules() -> dict[str, tuple[Callable[[str], bool], str]]:
    times = ", ".join(label for label, _rx in TIME_FORMATS)
    return {
        T.PHONE: (_is_phone, _("is not a phone number (digits, spaces, + . - ( ) only)")),
        T.AMOUNT: (
            lambda v: bool(_AMOUNT_RE.fullmatch(v)),
            _('is not a number written like "1.000.000" or "0,3" (use the amount format)'),
        ),
        T.TIME: (
            _is_time,
            _("is not a time in one of these formats: {formats}").format(formats=times),
        ),
        T.OTP: (lambda v: bool(_OTP_RE.fullmatch(v)), _("is not an OTP (letters and digits only)")),
        T.URL: (_is_url, _("is not a URL-encoded link (no spaces or accents; http or https)")),
        T.CURRENCY: (
            _is_currency,
            _("is not a positive amount written with digits only (e.g. 150000)"),
        ),
        T.BANK_NOTE: (
            _bank_note_ok,
            _("contains characters a bank transfer note may not contain ({chars})").format(
                chars=BANK_NOTE_FORBIDDEN
            ),
        ),
        T.NUMBER: (_is_number, _('is not a number (e.g. "-12.5" or "1.000")')),
        T.DATE: (_is_date, _("is not a date written dd/mm/yyyy")),
        T.DIGITS: (
            lambda v: bool(_DIGITS_RE.fullmatch(v)),
            _("is not made of digits 0-9 only"),
        ),
    }


# ---- compiled validators ------------------------------------------------------------------------

Validator = Callable[[str], "Problem | None"]


def compile_rule(rule: ParamRule, *, nfc_input: bool = False) -> Validator:
    """A fast validator for one parameter: value -> None when fine, else a Problem.

    Messages are built once here (in the active language), not per value. nfc_input=True when
    the values are known to be NFC already (from the renderer): lengths are then plain len().
    """
    missing = Problem("missing", _("missing (the template requires it)"))
    too_long = (
        Problem(
            "too_long",
            _("too long (more than {n} characters)").format(n=rule.max_length),
        )
        if rule.max_length
        else None
    )
    too_short = (
        Problem("too_short", _("too short (fewer than {n} characters)").format(n=rule.min_length))
        if rule.min_length
        else None
    )
    check, message = _format_rules().get(rule.param_type, (None, ""))
    bad_format = Problem("format", message) if check and message else None
    max_len, min_len, required = rule.max_length, rule.min_length, rule.required
    length = len if nfc_input else text_length

    def validate(value: str) -> Problem | None:
        if value is None or value == "" or (value[0].isspace() and not value.strip()):
            return missing if required else None
        n = length(value)
        if max_len and n > max_len:
            return too_long
        if min_len and n < min_len:
            return too_short
        if bad_format is not None and not check(value):
            return bad_format
        return None

    return validate


def check_value(param: Any, value: object) -> Problem | None:
    return compile_rule(rule_for(param))("" if value is None else str(value))


def validate_value(param: Any, value: object) -> str | None:
    """None when `value` is acceptable for `param`, else the reason in words."""
    problem = check_value(param, value)
    return problem.message if problem else None


def compile_rules(params: Iterable[Any], *, nfc_input: bool = False) -> list[tuple[str, Validator]]:
    return [(p.name, compile_rule(rule_for(p), nfc_input=nfc_input)) for p in params]


def validate_data(params: Iterable[Any], data: dict[str, str]) -> dict[str, str]:
    """{param: reason} for rendered template data; empty when every value passes."""
    errors = {}
    for name, validator in compile_rules(params):
        problem = validator(data.get(name, ""))
        if problem:
            errors[name] = problem.message
    return errors


def validate_recipient(mapping: dict, params: Iterable[Any], contact_data: Any) -> dict[str, str]:
    """Render `mapping` for one recipient and check every param: {param: reason}, empty when the
    message would pass. The lead can call this while materializing to exclude failing rows."""
    params = list(params)
    data = render_params({p.name: (mapping or {}).get(p.name) or {} for p in params}, contact_data)
    return validate_data(params, data)


# ---- one recipient at a time, many times -------------------------------------------------------


def _empty_raw(p, n, a) -> str:
    return ""


def _empty_finish(raw: str) -> str:
    return ""


class RecipientChecker:
    """The mapping and the param rules compiled once; `check` renders and validates one
    recipient with plain function calls. Results are memoized per distinct raw value (a gender,
    a city, a date shared by many recipients is formatted and checked once), up to a bound."""

    MEMO_LIMIT = 20_000

    def __init__(self, mapping: dict | None, params: list):
        mapping = mapping if isinstance(mapping, dict) else {}
        self.params = params
        # Values from the renderer are already NFC: the validators can count with len().
        validators = dict(compile_rules(params, nfc_input=True))
        self.items = []
        for p in params:
            try:
                raw_get, finish = compile_spec_parts(mapping.get(p.name) or {})
            except MappingError:  # reported by validate_mapping; renders empty here
                raw_get, finish = _empty_raw, _empty_finish
            self.items.append((p.name, raw_get, finish, validators[p.name], {}))
        self.names = [p.name for p in params]

    def _evaluate(self, item, phone: str, name: str, a: dict) -> tuple[str, Problem | None]:
        _pname, raw_get, finish, validate, memo = item
        raw = raw_get(phone, name, a)
        hit = memo.get(raw)
        if hit is None:
            value = finish(raw)
            hit = (value, validate(value))
            if len(memo) < self.MEMO_LIMIT:
                memo[raw] = hit
        return hit

    def render(self, phone: str, name: str, attributes: dict | None) -> dict[str, str]:
        a = attributes or {}
        return {item[0]: self._evaluate(item, phone, name, a)[0] for item in self.items}

    def check(
        self, phone: str, name: str, attributes: dict | None
    ) -> list[tuple[str, str, Problem]] | None:
        """None when every param passes, else [(param, value, problem)]."""
        a = attributes or {}
        problems = None
        for item in self.items:
            value, problem = self._evaluate(item, phone, name, a)
            if problem is not None:
                if problems is None:
                    problems = []
                problems.append((item[0], value, problem))
        return problems
