"""providers/shared/phones.py: the one normalizer (imports, campaigns, adapters and webhooks use it)."""

import phonenumbers
import pytest
from django.utils import translation
from hypothesis import given, settings
from hypothesis import strategies as st

from providers.shared.phones import (
    LEGACY_PREFIXES,
    PhoneResult,
    fast_mobile,
    normalize_phone,
    to_local,
)


@pytest.mark.parametrize(
    "raw",
    [
        "0987654321",
        "84987654321",
        "+84987654321",
        "0084987654321",
        "+84 987 654 321",
        "(+84) 987-654-321",
        "+84 (0) 987 654 321",
        "0987.654.321",
        "0987 654 321",
        " 0987654321 ",
        "987654321",  # Excel dropped the leading zero
        "84987654321.0",  # Excel numeric cell
        "84987654321,0",
        "０９８７６５４３２１",  # full-width digits
        "٠٩٨٧٦٥٤٣٢١",  # Arabic-Indic digits: any Unicode decimal digit
        "＋８４９８７６５４３２１",
        '="0987654321"',  # Excel's keep-as-text trick
        "0987\u00a0654\u00a0321",  # non-breaking spaces
        84987654321,
        84987654321.0,
        987654321,
    ],
)
def test_formats_of_one_mobile(raw):
    assert normalize_phone(raw) == PhoneResult("84987654321", "", False)


@pytest.mark.parametrize(
    "old, new",
    [
        ("01689123456", "84389123456"),  # Viettel 0168 -> 038
        ("0162 912 3456", "84329123456"),
        ("841689123456", "84389123456"),
        ("+84 168 912 3456", "84389123456"),
        ("1689123456", "84389123456"),  # and Excel dropped the zero
        ("01201234567", "84701234567"),  # MobiFone 0120 -> 070
        ("01211234567", "84791234567"),
        ("01221234567", "84771234567"),
        ("01261234567", "84761234567"),
        ("01281234567", "84781234567"),
        ("01231234567", "84831234567"),  # VinaPhone 0123 -> 083
        ("01241234567", "84841234567"),
        ("01251234567", "84851234567"),
        ("01271234567", "84811234567"),
        ("01291234567", "84821234567"),
        ("01861234567", "84561234567"),  # Vietnamobile
        ("01881234567", "84581234567"),
        ("01991234567", "84591234567"),  # Gmobile
    ],
)
def test_legacy_2018_prefixes_are_rewritten_and_flagged(old, new):
    result = normalize_phone(old)
    assert (result.phone, result.legacy_rewritten) == (new, True)


def test_legacy_table_is_complete():
    assert len(LEGACY_PREFIXES) == 8 + 5 + 5 + 2 + 1
    for old, new in LEGACY_PREFIXES.items():
        assert normalize_phone(f"0{old}1234567").phone == f"84{new}1234567"


@pytest.mark.parametrize("raw", ["8.49877E+10", "8,49877E+10", "8.49877e10", "9.87654E+08"])
def test_scientific_notation_says_how_to_fix(raw):
    result = normalize_phone(raw)
    assert not result.ok
    assert "scientific notation" in result.error
    assert "Text" in result.error  # "format the phone column as Text"


@pytest.mark.parametrize(
    "raw, words",
    [
        (None, "empty"),
        ("", "empty"),
        ("   ", "empty"),
        ("abc", "no digits"),
        ("12345", "Not a valid"),
        ("098765432", "Not a valid"),  # 9 digits with the zero: one is missing
        ("09876543210", "Not a valid"),
        ("+1 202 555 0147", "is a number of another country (calling code +1)"),
        ("+66 81 234 5678", "Loa serves Vietnam and Cambodia"),
        ("0066 81 234 5678", "is a number from Thailand"),
        ("+855 99", "Not a valid Cambodian phone number"),  # read as written: Cambodian
        ("02439123456", "Not a mobile"),  # Hà Nội fixed line
        ("0987654321 / 0912345678", "more than one phone"),
        ("0987654321;0912345678", "more than one phone"),
        ("1" * 80, "too long"),
        ("=1+2", "Not a valid"),
    ],
)
def test_refusals_have_a_reason(raw, words):
    with translation.override("en"):
        result = normalize_phone(raw)
    assert result.phone is None
    assert words in result.error


def test_a_cambodian_number_is_no_longer_refused():
    """It was ("Not a Vietnamese number"): +855 is read as written, whatever the default."""
    assert normalize_phone("+855 12 345 678") == PhoneResult("85512345678", "", False, "KH")


def test_fixed_lines_when_not_mobile_only():
    assert normalize_phone("024 3912 3456", mobile_only=False).phone == "842439123456"
    assert normalize_phone("028 3822 1234", mobile_only=False).phone == "842838221234"
    assert not normalize_phone("024 3912 3456").ok


def test_fast_mobile_is_only_a_shortcut():
    assert fast_mobile("0987654321") == "84987654321"
    assert fast_mobile("84987654321") == "84987654321"
    assert fast_mobile("987654321") == "84987654321"
    # None means "ask normalize_phone", never "invalid"
    for raw in ["+84987654321", "01689123456", "0243912345", "0987 654 321", "٠٩٨٧٦٥٤٣٢١"]:
        assert fast_mobile(raw) is None


def test_to_local():
    assert to_local("84987654321") == "0987654321"


MOBILE_PREFIXES = [
    "32",
    "39",
    "56",
    "58",
    "59",
    "70",
    "79",
    "81",
    "86",
    "88",
    "90",
    "98",
    "99",
    "87",
]


@given(
    prefix=st.sampled_from(MOBILE_PREFIXES),
    rest=st.integers(min_value=0, max_value=9_999_999),
    fmt=st.sampled_from(
        [
            "0{n}",
            "84{n}",
            "+84{n}",
            "+84 {n}",
            "{n}",
            "0084{n}",
            "84{n}.0",
            "({p}) {n}",
        ]
    ),
)
@settings(max_examples=400, deadline=None)
def test_fast_paths_agree_with_phonenumbers(prefix, rest, fmt):
    national = f"{prefix}{rest:07d}"
    raw = fmt.format(n=national, p="+84")
    num = phonenumbers.parse("+84" + national, None)
    is_mobile = phonenumbers.is_valid_number(num) and phonenumbers.number_type(num) in (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    )
    result = normalize_phone(raw)
    assert result.ok == is_mobile, (raw, result)
    if is_mobile:
        assert result.phone == "84" + national


@given(st.text(max_size=30))
@settings(max_examples=500, deadline=None)
def test_never_raises_and_always_explains(raw):
    result = normalize_phone(raw)
    assert result.ok or result.error
    if result.ok:
        assert result.phone.isascii() and result.phone.isdigit()
        # Vietnam (84 + 9) or, written with its code, Cambodia (855 + 8 or 9)
        assert (result.phone.startswith("84") and len(result.phone) == 11) or (
            result.phone.startswith("855") and len(result.phone) in (11, 12)
        ), result
        assert result.country == ("VN" if result.phone.startswith("84") else "KH")
