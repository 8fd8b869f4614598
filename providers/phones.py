"""One phone normalizer for the whole project: imports, campaigns and provider adapters call it.

Stores and returns `84xxxxxxxxx` (ZNS wants 84 + 9 digits). The common formats take a fast path
of string operations; `phonenumbers` (region VN) decides the rest, because parsing every row with
it alone runs at ~29k numbers/s per core, below the import target.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

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

_FULLWIDTH = str.maketrans("０１２３４５６７８９＋", "0123456789+")
_E_NOTATION = re.compile(r"^[+-]?\d+(?:[.,]\d+)?[eE][+-]?\d+$")
_KEEP = re.compile(r"[^\d+]")


@dataclass(frozen=True)
class PhoneResult:
    phone: str | None  # 84xxxxxxxxx, or None when invalid
    error: str = ""
    legacy_rewritten: bool = False

    @property
    def ok(self) -> bool:
        return self.phone is not None


@lru_cache(maxsize=1)
def _mobile_prefixes() -> frozenset[str]:
    """Two-digit national prefixes that phonenumbers' metadata calls VN mobile."""
    found = set()
    for ab in range(10, 100):
        num = phonenumbers.parse(f"+84{ab}2345678", None)
        if phonenumbers.is_valid_number(num) and phonenumbers.number_type(num) in (
            phonenumbers.PhoneNumberType.MOBILE,
            phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
        ):
            found.add(str(ab))
    return frozenset(found)


def normalize_phone(raw: object, *, mobile_only: bool = True) -> PhoneResult:
    """Normalize one raw cell to 84xxxxxxxxx, or explain why it cannot be."""
    if raw is None:
        return PhoneResult(None, str(_("The phone is empty.")))
    text = str(raw).strip().translate(_FULLWIDTH)
    if not text:
        return PhoneResult(None, str(_("The phone is empty.")))
    if _E_NOTATION.match(text.replace(" ", "")):
        return PhoneResult(
            None,
            str(
                _(
                    "The phone is in scientific notation ({value}): its last digits are lost. "
                    "Format the phone column as Text in Excel and export the file again."
                )
            ).format(value=text),
        )
    # Excel writes numeric cells as 84987654321.0
    if text.endswith(".0") and text[:-2].replace(" ", "").lstrip("+").isdigit():
        text = text[:-2]
    # "+84 (0) 987 654 321": the (0) trunk prefix must go before digits are joined
    text = text.replace("(0)", "")
    plus = text.startswith("+")
    digits = _KEEP.sub("", text).replace("+", "")
    if not digits:
        return PhoneResult(None, str(_("The phone has no digits: {value}")).format(value=text))

    national = None
    if plus:
        if digits.startswith("84"):
            national = digits[2:]
        else:
            return _slow_path(text, mobile_only)  # another country: let phonenumbers judge
    elif digits.startswith("0084"):
        national = digits[4:]
    elif digits.startswith("84") and len(digits) in (11, 12):
        national = digits[2:]
    elif digits.startswith("0"):
        national = digits[1:]
    elif len(digits) in (9, 10):
        national = digits  # Excel dropped the leading zero
    else:
        return _slow_path(text, mobile_only)
    national = national.lstrip("0") if national.startswith("0") else national

    legacy = False
    if len(national) == 10 and national[:3] in LEGACY_PREFIXES:
        national = LEGACY_PREFIXES[national[:3]] + national[3:]
        legacy = True
    if len(national) == 9 and national[:2] in _mobile_prefixes():
        return PhoneResult("84" + national, legacy_rewritten=legacy)
    return _slow_path("+84" + national, mobile_only, legacy=legacy, original=text)


def _slow_path(
    text: str, mobile_only: bool, *, legacy: bool = False, original: str = ""
) -> PhoneResult:
    shown = original or text
    try:
        num = phonenumbers.parse(text, "VN")
    except phonenumbers.NumberParseException:
        return PhoneResult(None, str(_("Not a phone number: {value}")).format(value=shown))
    if not phonenumbers.is_valid_number(num):
        return PhoneResult(None, str(_("Not a valid phone number: {value}")).format(value=shown))
    if num.country_code != 84:
        return PhoneResult(None, str(_("Not a Vietnamese number: {value}")).format(value=shown))
    if mobile_only and phonenumbers.number_type(num) not in (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    ):
        return PhoneResult(
            None, str(_("Not a mobile number (Zalo and SMS need one): {value}")).format(value=shown)
        )
    return PhoneResult(f"84{num.national_number}", legacy_rewritten=legacy)


def to_local(phone: str) -> str:
    """84987654321 -> 0987654321 (the form eSMS documents in its examples)."""
    return "0" + phone[2:] if phone.startswith("84") else phone
