"""One phone normalizer for the whole project: imports, campaigns and provider adapters call it.

Stores and returns the calling code followed by the national number: `84xxxxxxxxx` for Vietnam
(ZNS wants 84 + 9 digits), `855xxxxxxxx(x)` for Cambodia. A number written with its country
(+84, 0084, +855, 00855, or 84/855 followed by a full national number) is read as written; a
local one (leading 0, or the 0 Excel dropped) is read in the caller's `country` (Vietnam unless
told otherwise: an import, a contact form or an inbound reply may say Cambodia).

The common formats take a fast path of string operations and one regular expression taken from
phonenumbers' own metadata (VN and KH, so the fast path and phonenumbers agree on what a mobile
is); `phonenumbers` decides the rest, because parsing every row with it alone runs at ~29k
numbers/s per core, below the import target (lessons.md, "Numbers to beat").

Rules, in the order they apply (the exact rules partners ask for, GSA/notifications-admin#1526):
1. empty -> refused; scientific notation (`8.49877E+10`) -> refused: its last digits are lost;
2. full-width digits become ASCII; spaces, dots, dashes, brackets, `="..."` (Excel's keep-as-text
   trick) are dropped; a trailing `.0` (Excel numeric cell) is dropped; `(0)` after the calling
   code is dropped;
3. prefixes `+84`, `0084`, `84` (11-12 digits) mean Vietnam; `+855`, `00855`, `855` (11-12
   digits: 855 and a national number of 8-9 digits, a length no local number of either country
   has) mean Cambodia; other calling codes are refused with the country they belong to;
4. otherwise the number is local to `country`: the trunk `0` is removed, and a number without it
   is taken as one whose leading 0 Excel dropped (9-10 digits in Vietnam, 8-9 in Cambodia);
5. Vietnam only, the 2018 renumbering: an 11-digit mobile (`0162…`) is rewritten to its 10-digit
   form and the result says so (`legacy_rewritten`);
6. the national number must be a mobile of its country (or, with `mobile_only=False`, any valid
   number of it).
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
# Several phones in one cell ("0987654321 / 0912345678", Google Contacts' "... ::: ..."): refuse
# rather than guess which one (the contact import takes the first of Google's cells itself).
_SEVERAL = re.compile(r"\d[\d .\-()]{7,}\d\s*(?:[/;,|&]|:{1,3})\s*\+?\d[\d .\-()]{7,}\d")
_MAX_RAW = 64

# phonenumbers' VN and KH mobile patterns, compiled once: the fast path and the slow path agree.
# KH's covers every operator's ranges (Metfone 097/088/071/031/06x/090, Smart 010/015/016/069/
# 070/08x/09x, Cellcard 011/012/014/017/061/07x/085/089/09x, Seatel, Cootel, qb): one source.
_VN_META = phonenumbers.PhoneMetadata.metadata_for_region("VN")
_VN_MOBILE = re.compile(_VN_META.mobile.national_number_pattern)
_KH_META = phonenumbers.PhoneMetadata.metadata_for_region("KH")
_KH_MOBILE = re.compile(_KH_META.mobile.national_number_pattern)


class PhoneResult(NamedTuple):
    """The normalized phone (84xxxxxxxxx, 855xxxxxxxx) or None with the reason, in the user's
    language; `country` is the region the number was read in (VN, KH; another region's code for
    a number refused as foreign).

    A NamedTuple, not a dataclass: it is built once per imported row and must be cheap.
    """

    phone: str | None
    error: str = ""
    legacy_rewritten: bool = False
    country: str = "VN"

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


def fast_mobile_kh(text: str) -> str | None:
    """fast_mobile for an import whose local numbers are Cambodian: a plain-digit cell that is a
    KH mobile (local, local without the 0 Excel dropped, or 855...), or None ("ask
    normalize_phone"). A Vietnamese 84... cell is not taken here: normalize_phone reads it."""
    if not (text.isdigit() and text.isascii()):
        return None
    n = len(text)
    if text[0] == "0":
        if (n == 9 or n == 10) and text[1] != "0":
            national = text[1:]
        else:
            return None
    elif (n == 11 or n == 12) and text.startswith("855"):
        national = text[3:]
    elif n == 8 or n == 9:
        national = text  # Excel dropped the leading zero
    else:
        return None
    if _KH_MOBILE.fullmatch(national):
        return "855" + national
    return None


# The fast path of each served country (the import picks its own once, not per row).
FAST_PATHS = {"VN": fast_mobile, "KH": fast_mobile_kh}


def normalize_phone(raw: object, *, mobile_only: bool = True, country: str = "VN") -> PhoneResult:
    """Normalize one raw cell to 84xxxxxxxxx / 855xxxxxxxx, or explain why it cannot be.

    `country` is where a local-format number (0..., or without the 0 Excel dropped) is read;
    a number written with its calling code is read as written whatever `country` says.

    The two fast tiers (plain digits, then the usual formatting) stay inline: they take almost
    every row of an import, without an extra call; the rest is _normalize_unusual's."""
    if raw is None:
        return PhoneResult(None, str(_("The phone is empty.")), False, country)
    if isinstance(raw, float):
        # An XLSX numeric cell: 84987654321.0; repr keeps every digit below 1e16.
        raw = repr(raw)
    text = raw.strip() if isinstance(raw, str) else str(raw).strip()
    if country == "VN":
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
    elif country == "KH":
        quick = fast_mobile_kh(text)
        if quick is None:
            # The same second tier for Cambodia ("012 345 678", "+855 12 345 678").
            compact = (text[:-2] if text.endswith(".0") else text).translate(_FORMATTING)
            if compact.isascii():
                if compact.isdigit():
                    quick = fast_mobile_kh(compact)
                elif compact.startswith("+855") and compact[1:].isdigit():
                    quick = fast_mobile_kh(compact[1:])
        if quick is not None:
            return PhoneResult(quick, "", False, "KH")
    return _normalize_unusual(text, mobile_only, country)


def phone_candidates(raw: object, *, mobile_only: bool = False) -> list[str]:
    """The stored phones `raw` can be, for a search: a local form (0971234567) read in each
    served country (84971234567, 855971234567), a number written with its code once."""
    found = []
    for country in CALLING_CODES:
        phone = normalize_phone(raw, mobile_only=mobile_only, country=country).phone
        if phone and phone not in found:
            found.append(phone)
    return found


def _normalize_unusual(text: str, mobile_only: bool, country: str = "VN") -> PhoneResult:
    """The cells the fast tiers did not take (stripped text): Excel's tricks, numbers written
    with a calling code, legacy prefixes, fixed lines, and every refusal with its reason."""
    if not text:
        return PhoneResult(None, str(_("The phone is empty.")), False, country)
    if len(text) > _MAX_RAW:
        return PhoneResult(
            None,
            str(_("The phone cell is too long ({n} characters).")).format(n=len(text)),
            False,
            country,
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
            False,
            country,
        )
    if _SEVERAL.search(text):
        return PhoneResult(
            None,
            str(_("The cell holds more than one phone ({value}): put one phone per row.")).format(
                value=text
            ),
            False,
            country,
        )
    # Excel writes numeric cells as 84987654321.0 (or 84987654321,0 in some locales)
    if (text.endswith(".0") or text.endswith(",0")) and compact[:-2].lstrip("+").isdigit():
        text = text[:-2]
    # "+84 (0) 987 654 321": the (0) trunk prefix must go before digits are joined
    text = text.replace("(0)", "")
    plus = text.lstrip("( ").startswith("+")
    digits = _NON_DIGIT.sub("", text)
    if not digits:
        return PhoneResult(
            None, str(_("The phone has no digits: {value}")).format(value=text), False, country
        )

    # Written with its country: read as written, whatever `country` says.
    if plus:
        if digits.startswith("855"):
            return _cambodian(digits[3:], mobile_only, text)
        if not digits.startswith("84"):
            return _slow_path("+" + digits, mobile_only, original=text)  # another country
        national = digits[2:]
    elif digits.startswith("0084"):
        national = digits[4:]
    elif digits.startswith("00855"):
        return _cambodian(digits[5:], mobile_only, text)
    elif digits.startswith("84") and len(digits) in (11, 12):
        national = digits[2:]
    elif digits.startswith("855") and len(digits) in (11, 12):
        # 855 + 8-9 digits: no Vietnamese number has this shape (a local one has 9-11 digits
        # and is never led by 855 at 11-12), so it is Cambodian whatever `country` says.
        return _cambodian(digits[3:], mobile_only, text)
    # Local: read in `country`.
    elif country != "VN":
        return _local(digits, mobile_only, country, text)
    elif digits.startswith("0"):
        national = digits[1:]
    elif len(digits) in (9, 10):
        national = digits  # Excel dropped the leading zero
    else:
        return _slow_path(digits, mobile_only, original=text)
    result = _vietnamese(national.lstrip("0"), mobile_only, text)
    if result.phone is None and digits.startswith("00"):
        # "0066 81 234 5678": a refusal that names the country is truer than "not Vietnamese"
        return _foreign(digits[2:], text) or result
    return result


def _vietnamese(national: str, mobile_only: bool, text: str) -> PhoneResult:
    """A Vietnamese national number (no trunk 0): the 2018 renumbering, then the checks."""
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


def _cambodian(national: str, mobile_only: bool, text: str) -> PhoneResult:
    """A Cambodian national number (a trunk 0 written after +855 is dropped)."""
    national = national.lstrip("0")
    if (len(national) == 8 or len(national) == 9) and _KH_MOBILE.fullmatch(national):
        return PhoneResult("855" + national, "", False, "KH")
    return _slow_path("+855" + national, mobile_only, original=text)


def _local(digits: str, mobile_only: bool, country: str, text: str) -> PhoneResult:
    """A number without calling code, read in a country other than Vietnam."""
    if digits.startswith("00"):  # an international call prefix and a code not served
        return _slow_path("+" + digits[2:], mobile_only, original=text)
    if country == "KH":
        if digits.startswith("0"):
            return _cambodian(digits[1:], mobile_only, text)
        if len(digits) in (8, 9):
            return _cambodian(digits, mobile_only, text)  # Excel dropped the leading zero
    return _slow_path(digits, mobile_only, original=text, region=country)


_COUNTRY_OF_CODE = {84: "VN", 855: "KH"}


def _invalid_message(shown: str, country: str = "VN") -> str:
    if country == "KH":
        return str(
            _(
                "Not a valid Cambodian phone number: {value} (a mobile has 9 or 10 digits "
                "starting with 0, like 012 345 678)"
            )
        ).format(value=shown)
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


def _foreign(international: str, shown: str) -> PhoneResult | None:
    """The refusal of a valid number of a country Loa does not serve (digits after the
    international prefix), naming that country; None when it is no valid number anywhere."""
    try:
        num = phonenumbers.parse("+" + international)
    except phonenumbers.NumberParseException:
        return None
    if num.country_code in _COUNTRY_OF_CODE or not phonenumbers.is_valid_number(num):
        return None
    return _foreign_refusal(num, shown)


# The countries whose numbers people most often put in a Vietnamese or Cambodian file (the
# neighbours, the region, the usual diaspora) and whose calling code is theirs alone (+1, +44,
# +61 are shared: those are named by the code), named in the refusal. Our own table, not
# phonenumbers' geocoder: its country names load ~100 MB (measured), too much for an import
# worker that meets one "+1..." row. Other countries are named by their calling code.
_COUNTRY_NAMES = {
    "TH": _("Thailand"),
    "LA": _("Laos"),
    "CN": _("China"),
    "MM": _("Myanmar"),
    "MY": _("Malaysia"),
    "SG": _("Singapore"),
    "ID": _("Indonesia"),
    "PH": _("the Philippines"),
    "KR": _("South Korea"),
    "JP": _("Japan"),
    "TW": _("Taiwan"),
    "HK": _("Hong Kong"),
    "FR": _("France"),
    "DE": _("Germany"),
}


def _foreign_refusal(num: phonenumbers.PhoneNumber, shown: str) -> PhoneResult:
    # The region from the calling code alone: region_code_for_number would try every region
    # sharing it (25 for +1), a cost the import's refused rows would pay (measured: +12% on
    # them). A code several regions share (+1, +7, +44, ...) is named by the code only.
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(num.country_code, ())
    if not regions or regions[0] == phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY:
        message = _("Not a phone number of Vietnam or Cambodia: {value}")
        return PhoneResult(None, str(message).format(value=shown), False, "")
    region = regions[0]
    name = _COUNTRY_NAMES.get(region) if len(regions) == 1 else None
    if name is None:
        message = _(
            "Loa serves Vietnam and Cambodia: {value} is a number of another country "
            "(calling code +{code})."
        )
        text = str(message).format(value=shown, code=num.country_code)
    else:
        message = _("Loa serves Vietnam and Cambodia: {value} is a number from {country}.")
        text = str(message).format(value=shown, country=name)
    return PhoneResult(None, text, False, region)


def _slow_path(
    text: str,
    mobile_only: bool,
    *,
    legacy: bool = False,
    original: str = "",
    region: str = "VN",
) -> PhoneResult:
    """phonenumbers' answer (`region` reads a number without "+"): a number of a served
    country, or the refusal with its true reason."""
    shown = original or text
    try:
        num = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return PhoneResult(
            None, str(_("Not a phone number: {value}")).format(value=shown), False, region
        )
    country = _COUNTRY_OF_CODE.get(num.country_code)
    if country is None:
        return _foreign_refusal(num, shown)
    if not phonenumbers.is_valid_number(num):
        return PhoneResult(None, _invalid_message(shown, country), False, country)
    if mobile_only and phonenumbers.number_type(num) not in (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    ):
        message = (
            _("Not a mobile number (SMS needs one): {value}")
            if country == "KH"
            else _("Not a mobile number (Zalo and SMS need one): {value}")
        )
        return PhoneResult(None, str(message).format(value=shown), False, country)
    return PhoneResult(f"{num.country_code}{num.national_number}", "", legacy, country)


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
    # Fast path for the stored forms of the two served countries: parse + format cost ~60 µs
    # a phone, a minute for an export of a million rows (this path: ~1 s). The slices are
    # phonenumbers' own NATIONAL rules for these lengths: VN, 9 digits led by 3, 5, 7, 8 or 9:
    # "0xxx xxx xxx"; KH, 8 or 9 digits led by 1-9: "0xx xxx xxx(x)". A national number led by
    # 0 (phonenumbers strips it), VN numbers led by 1, 2 or 6 (other groupings) and any other
    # shape take the parse below. tests/contacts/test_phone_display.py checks the slices
    # against phonenumbers over every leading digit and both KH lengths.
    n = len(phone)
    if phone.isdigit() and phone.isascii():
        if n == 11 and phone[0] == "8" and phone[1] == "4" and phone[2] in "35789":
            return f"0{phone[2:5]} {phone[5:8]} {phone[8:]}"
        if (n == 11 or n == 12) and phone.startswith("855") and phone[3] != "0":
            return f"0{phone[3:5]} {phone[5:8]} {phone[8:]}"
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
