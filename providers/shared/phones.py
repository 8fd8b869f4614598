"""One phone normalizer for the whole project: imports, campaigns and provider adapters call it.

Stores and returns `84xxxxxxxxx` (ZNS wants 84 + 9 digits). The common formats take a fast path
of string operations and one regular expression taken from phonenumbers' own VN metadata (so the
fast path and phonenumbers agree on what a mobile is); `phonenumbers` (region VN) decides the
rest, because parsing every row with it alone runs at ~29k numbers/s per core, below the import
target (lessons.md, "Numbers to beat").

Rules, in the order they apply (the exact rules partners ask for, GSA/notifications-admin#1526):
1. empty -> refused; scientific notation (`8.49877E+10`) -> refused: its last digits are lost;
2. full-width digits become ASCII; spaces, dots, dashes, brackets, `="..."` (Excel's keep-as-text
   trick) are dropped; a trailing `.0` (Excel numeric cell) is dropped; `(0)` after +84 is dropped;
3. prefixes `+84`, `0084`, `84` (11-12 digits), `0` are removed; a 9-digit number without prefix
   is taken as a mobile whose leading 0 Excel dropped;
4. the 2018 renumbering: an 11-digit mobile (`0162…`) is rewritten to its 10-digit form and the
   result says so (`legacy_rewritten`);
5. the national number must be a VN mobile (or, with `mobile_only=False`, any valid VN number).
"""

from __future__ import annotations

import re
import unicodedata
from typing import NamedTuple

import phonenumbers
from django.utils.translation import gettext_lazy as _

# The 2018 renumbering (15 Sep - 14 Nov 2018): 11-digit mobiles became 10 digits, last 7 kept.
# Table from lessons.md ("CSV and phone hazards"). Keys/values without the leading 0.
LEGACY_PREFIXES: dict[str, str] = {
    **{f"16{d}": f"3{d}" for d in "23456789"},  # Viettel 0162-0169 -> 032-039
    "120": "70",
    "121": "79",
    "122": "77",
    "126": "76",
    "128": "78",  # MobiFone
    "123": "83",
    "124": "84",
    "125": "85",
    "127": "81",
    "129": "82",  # VinaPhone
    "186": "56",
    "188": "58",  # Vietnamobile
    "199": "59",  # Gmobile
}

_FULLWIDTH_PLUS = str.maketrans({"＋": "+"})
_FORMATTING = str.maketrans("", "", " .-()\u00a0")
_E_NOTATION = re.compile(r"^[+-]?\d+(?:[.,]\d+)?[eE][+-]?\d+$")
_NON_DIGIT = re.compile(r"[^0-9]")
# Several phones in one cell ("0987654321 / 0912345678"): refuse rather than guess which one.
_SEVERAL = re.compile(r"\d[\d .\-()]{7,}\d\s*[/;,|&]\s*\+?\d[\d .\-()]{7,}\d")
_MAX_RAW = 64

# phonenumbers' VN mobile pattern, compiled once: the fast path and the slow path agree.
_VN_META = phonenumbers.PhoneMetadata.metadata_for_region("VN")
_VN_MOBILE = re.compile(_VN_META.mobile.national_number_pattern)


class PhoneResult(NamedTuple):
    """The normalized phone (84xxxxxxxxx) or None with the reason, in the user's language.

    A NamedTuple, not a dataclass: it is built once per imported row and must be cheap.
    """

    phone: str | None
    error: str = ""
    legacy_rewritten: bool = False

    @property
    def ok(self) -> bool:
        return self.phone is not None


def fast_mobile(text: str) -> str | None:
    """The import's hot path: a plain-digit cell that is a current VN mobile, or None.

    None means "ask normalize_phone", never "invalid": anything unusual (formatting, legacy
    prefixes, fixed lines, errors) goes through the full function.
    """
    if not (text.isdigit() and text.isascii()):
        return None
    n = len(text)
    if n == 10 and text[0] == "0":
        national = text[1:]
    elif n == 11 and text[0] == "8" and text[1] == "4":
        national = text[2:]
    elif n == 9 and text[0] != "0":
        national = text  # Excel dropped the leading zero
    else:
        return None
    if _VN_MOBILE.fullmatch(national):
        return "84" + national
    return None


def normalize_phone(raw: object, *, mobile_only: bool = True) -> PhoneResult:
    """Normalize one raw cell to 84xxxxxxxxx, or explain why it cannot be.

    The two fast tiers (plain digits, then the usual formatting) stay inline: they take almost
    every row of an import, without an extra call; the rest is _normalize_unusual's."""
    if raw is None:
        return PhoneResult(None, str(_("The phone is empty.")))
    if isinstance(raw, float):
        # An XLSX numeric cell: 84987654321.0; repr keeps every digit below 1e16.
        raw = repr(raw)
    text = raw.strip() if isinstance(raw, str) else str(raw).strip()
    quick = fast_mobile(text)
    if quick is not None:
        return PhoneResult(quick)
    # Second tier, still without regexes: the usual formatting ("+84 98 765 4321",
    # "(+84) 98-765-4321", "0987.654.321", Excel's "84987654321.0") around a current mobile.
    compact = (text[:-2] if text.endswith(".0") else text).translate(_FORMATTING)
    if compact.isascii():
        if compact.isdigit():
            quick = fast_mobile(compact)
        elif compact.startswith("+84") and len(compact) == 12 and compact[1:].isdigit():
            quick = fast_mobile(compact[1:])
        if quick is not None:
            return PhoneResult(quick)
    return _normalize_unusual(text, mobile_only)


def _normalize_unusual(text: str, mobile_only: bool) -> PhoneResult:
    """The cells the fast tiers did not take (stripped text): Excel's tricks, other countries,
    legacy prefixes, fixed lines, and every refusal with its reason."""
    if not text:
        return PhoneResult(None, str(_("The phone is empty.")))
    if len(text) > _MAX_RAW:
        return PhoneResult(
            None, str(_("The phone cell is too long ({n} characters).")).format(n=len(text))
        )
    if not text.isascii():
        text = _ascii_digits(text)
    # Excel's way to keep a leading zero in CSV: ="0987654321"
    if text.startswith('="') and text.endswith('"'):
        text = text[2:-1].strip()
    compact = text.replace(" ", "").replace("\u00a0", "")
    if _E_NOTATION.match(compact):
        return PhoneResult(
            None,
            str(
                _(
                    "The phone is in scientific notation ({value}): its last digits are lost. "
                    "In Excel, format the phone column as Text, type or paste the numbers again, "
                    "and export the file again (or save it as .xlsx)."
                )
            ).format(value=text),
        )
    if _SEVERAL.search(text):
        return PhoneResult(
            None,
            str(_("The cell holds more than one phone ({value}): put one phone per row.")).format(
                value=text
            ),
        )
    # Excel writes numeric cells as 84987654321.0 (or 84987654321,0 in some locales)
    if (text.endswith(".0") or text.endswith(",0")) and compact[:-2].lstrip("+").isdigit():
        text = text[:-2]
    # "+84 (0) 987 654 321": the (0) trunk prefix must go before digits are joined
    text = text.replace("(0)", "")
    plus = text.lstrip("( ").startswith("+")
    digits = _NON_DIGIT.sub("", text)
    if not digits:
        return PhoneResult(None, str(_("The phone has no digits: {value}")).format(value=text))

    if plus:
        if not digits.startswith("84"):
            return _slow_path("+" + digits, mobile_only, original=text)  # another country
        national = digits[2:]
    elif digits.startswith("0084"):
        national = digits[4:]
    elif digits.startswith("84") and len(digits) in (11, 12):
        national = digits[2:]
    elif digits.startswith("0"):
        national = digits[1:]
    elif len(digits) in (9, 10):
        national = digits  # Excel dropped the leading zero
    else:
        return _slow_path(digits, mobile_only, original=text)
    national = national.lstrip("0")

    legacy = False
    if len(national) == 10 and national[:3] in LEGACY_PREFIXES:
        national = LEGACY_PREFIXES[national[:3]] + national[3:]
        legacy = True
    if len(national) == 9 and _VN_MOBILE.fullmatch(national):
        return PhoneResult("84" + national, "", legacy)
    if mobile_only and not (8 <= len(national) <= 10 and national[0] in "12"):
        # Not a mobile, and not a fixed line / toll-free number either (those start with 1 or
        # 2 and deserve phonenumbers' precise answer): refused without parsing it.
        return PhoneResult(None, _invalid_message(text))
    return _slow_path("+84" + national, mobile_only, legacy=legacy, original=text)


def _invalid_message(shown: str) -> str:
    return str(
        _(
            "Not a valid Vietnamese phone number: {value} (a mobile has 10 digits starting "
            "with 0, like 0912 345 678)"
        )
    ).format(value=shown)


def _ascii_digits(text: str) -> str:
    """Full-width (０９８７) and other Unicode decimal digits become ASCII; the rest is kept."""
    return "".join(str(unicodedata.decimal(ch)) if ch.isdecimal() else ch for ch in text).translate(
        _FULLWIDTH_PLUS
    )


def _slow_path(
    text: str, mobile_only: bool, *, legacy: bool = False, original: str = ""
) -> PhoneResult:
    shown = original or text
    try:
        num = phonenumbers.parse(text, "VN")
    except phonenumbers.NumberParseException:
        return PhoneResult(None, str(_("Not a phone number: {value}")).format(value=shown))
    if num.country_code != 84:
        return PhoneResult(None, str(_("Not a Vietnamese number: {value}")).format(value=shown))
    if not phonenumbers.is_valid_number(num):
        return PhoneResult(None, _invalid_message(shown))
    if mobile_only and phonenumbers.number_type(num) not in (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    ):
        return PhoneResult(
            None, str(_("Not a mobile number (Zalo and SMS need one): {value}")).format(value=shown)
        )
    return PhoneResult(f"84{num.national_number}", "", legacy)


# The countries Loa serves and the calling code each is stored under (digits, no "+"). A
# stored phone is always the calling code followed by the national number (84..., 855...).
CALLING_CODES: dict[str, str] = {"VN": "84", "KH": "855"}
COUNTRY_CHOICES = (("VN", _("Vietnam (+84)")), ("KH", _("Cambodia (+855)")))
DEFAULT_COUNTRY = "VN"


def phone_country(phone: str) -> str:
    """The region code (VN, KH, ...) of a stored phone, or "" when it cannot be told.

    Cheap for the two served countries (a prefix test: 84 is Vietnam, 855 Cambodia, and no
    calling code starts with the other); phonenumbers answers for the rest."""
    if not phone:
        return ""
    if phone.startswith("84"):
        return "VN"
    if phone.startswith("855"):
        return "KH"
    try:
        region = phonenumbers.region_code_for_country_code(
            phonenumbers.parse("+" + phone.lstrip("+")).country_code
        )
    except phonenumbers.NumberParseException:
        return ""
    return "" if region == phonenumbers.UNKNOWN_REGION else region


def format_local(phone: str) -> str:
    """A stored phone as a person of its country writes it: 84912345678 -> "0912 345 678",
    85512345678 -> "012 345 678"; other countries in international form ("+66 81 234 5678");
    what phonenumbers cannot parse comes back unchanged (never an exception on a page)."""
    if not phone:
        return ""
    try:
        num = phonenumbers.parse("+" + phone.lstrip("+"))
    except phonenumbers.NumberParseException:
        return phone
    region = phonenumbers.region_code_for_number(num)
    fmt = (
        phonenumbers.PhoneNumberFormat.NATIONAL
        if region in CALLING_CODES
        else phonenumbers.PhoneNumberFormat.INTERNATIONAL
    )
    return phonenumbers.format_number(num, fmt)


def to_local(phone: str) -> str:
    """84987654321 -> 0987654321, 85512345678 -> 012345678 (the trunk 0 and the national
    number, no spaces: the form eSMS documents in its examples); other phones unchanged."""
    for code in sorted(CALLING_CODES.values(), key=len, reverse=True):
        if phone.startswith(code):
            return "0" + phone[len(code) :]
    return phone
