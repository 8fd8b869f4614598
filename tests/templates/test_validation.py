"""Every parameter type accepts good values and refuses bad ones, with the reason."""

import unicodedata

import pytest

from templates_app.models import TemplateParam
from templates_app.param_types import PROVIDER_TYPES, param_type_from_provider
from templates_app.rendering import ContactData
from templates_app.validation import (
    BANK_NOTE_FORBIDDEN,
    DEFAULT_MAX,
    check_value,
    rule_for,
    validate_data,
    validate_recipient,
    validate_value,
)

T = TemplateParam.Type


def P(ptype=T.TEXT, *, name="p", required=True, min_length=0, max_length=None):
    """An unsaved TemplateParam: validation needs no database."""
    return TemplateParam(
        name=name, param_type=ptype, required=required, min_length=min_length, max_length=max_length
    )


# (type, good values, bad values with the word the reason must contain)
CASES = [
    (T.CUSTOMER_NAME, ["Nguyễn Văn An", "A" * 30], [("A" * 31, "too long")]),
    (
        T.PHONE,
        ["0901888484", "+84 901 888 484", "(028) 3823-4567", "1900.1234"],
        [("0901-888-484-0000", "too long"), ("call me", "phone"), ("++", "phone")],
    ),
    (T.ADDRESS, ["12 Lý Thường Kiệt, Hà Nội", "x" * 200], [("x" * 201, "too long")]),
    (T.CODE, ["DH-0001", "C" * 30], [("C" * 31, "too long")]),
    (T.LABEL, ["VIP", "L" * 30], [("L" * 31, "too long")]),
    (T.STATUS, ["Đã giao hàng", "S" * 30], [("S" * 31, "too long")]),
    (T.CONTACT, ["Hotline 1900 1234", "c" * 50], [("c" * 51, "too long")]),
    (T.TITLE, ["Anh", "Chị", "Ông", "Bà"], [("Anh/Chị", "too long")]),
    (T.PRODUCT, ["Áo thun Loa size M", "p" * 200], [("p" * 201, "too long")]),
    (
        T.AMOUNT,
        ["1.000", "1.000.000", "0,3", "999", "-1.500", "12.345.678,90"],
        [
            ("1000", "1.000.000"),
            ("1,000,000", "1.000.000"),
            ("1.00", "1.000.000"),
            ("abc", "1.000.000"),
            ("1" + ".000" * 5, "too long"),
        ],
    ),
    (
        T.TIME,
        ["08:30:00", "08:30", "08:30:00 01/08/2024", "23:59 31/12/2024", "01/08/2024", "08/2024"],
        [
            ("8:30", "hh:mm"),
            ("25:00", "hh:mm"),
            ("31/02/2024", "hh:mm"),
            ("2024-08-01", "hh:mm"),
            ("13/2024", "hh:mm"),
            ("08:30:00 01/08/2024 GMT+7", "too long"),
        ],
    ),
    (
        T.OTP,
        ["123456", "AB12CD"],
        [("12 34", "OTP"), ("12345678901", "too long"), ("12-34", "OTP")],
    ),
    (
        T.URL,
        ["https://loa.vn/don-hang?id=1", "don-hang%2F123", "http://a.vn", "u" * 200],
        [
            ("https://loa.vn/đơn hàng", "URL-encoded"),
            ("javascript:alert(1)", None),  # no scheme check without "://": refused below
            ("ftp://loa.vn/x", "URL-encoded"),
            ("a b", "URL-encoded"),
            ("u" * 201, "too long"),
        ],
    ),
    (
        T.CURRENCY,
        ["150000", "1", "999999999999"],
        [
            ("0", "positive"),
            ("-5", "positive"),
            ("150.000", "positive"),
            ("1500000000000", "too long"),
            ("1e5", "positive"),
        ],
    ),
    (
        T.BANK_NOTE,
        ["Thanh toan don hang DH0001", "CK 123456 Nguyen Van A"],
        [(f"DH{c}001", "bank transfer note") for c in BANK_NOTE_FORBIDDEN]
        + [("N" * 91, "too long")],
    ),
    (T.NUMBER, ["12", "-12.5", "+3", "1.000.000"], [("12,5,6", "number"), ("twelve", "number")]),
    (
        T.DATE,
        ["01/08/2024", "29/02/2024"],
        [("1/8/2024", "dd/mm/yyyy"), ("29/02/2023", "dd/mm/yyyy"), ("2024-08-01", "dd/mm/yyyy")],
    ),
    (
        T.DIGITS,
        ["4308000", "0"],
        [("4.308.000", "digits"), ("12a", "digits"), ("1234567890123", "too long")],
    ),
    (T.TEXT, ["anything at all", "x" * 5000], []),
]


@pytest.mark.parametrize(("ptype", "good", "bad"), CASES, ids=[c[0] for c in CASES])
def test_type_accepts_good_and_refuses_bad(ptype, good, bad):
    param = P(ptype)
    for value in good:
        assert validate_value(param, value) is None, (ptype, value, validate_value(param, value))
    for value, word in bad:
        if word is None:
            continue
        reason = validate_value(param, value)
        assert reason, (ptype, value)
        assert word.lower() in reason.lower(), (ptype, value, reason)


def test_url_without_scheme_must_still_be_url_safe():
    assert validate_value(P(T.URL), "javascript:alert(1)") is None  # a path segment: Zalo encodes
    assert validate_value(P(T.URL), "javascript://x") is not None


def test_every_type_has_a_case_and_a_default():
    assert {c[0] for c in CASES} == set(T.values)
    assert set(DEFAULT_MAX) == set(T.values)


def test_documented_default_limits():
    assert {t: DEFAULT_MAX[t] for t in DEFAULT_MAX if DEFAULT_MAX[t]} == {
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
        T.DIGITS: 12,
    }


def test_template_max_and_min_win_over_defaults():
    address = P(T.ADDRESS, max_length=80)  # the older Zalo limit, as the template says
    assert rule_for(address).max_length == 80
    assert "80" in validate_value(address, "x" * 81)
    assert validate_value(P(T.ADDRESS), "x" * 81) is None  # default 200
    name = P(T.CUSTOMER_NAME, max_length=100)  # eSMS example: customer_name 100
    assert validate_value(name, "N" * 100) is None
    otp = P(T.OTP, min_length=6)
    assert "too short" in validate_value(otp, "123")
    assert validate_value(otp, "123456") is None


def test_required_and_optional_empty_values():
    required = P(T.CODE)
    optional = P(T.CODE, required=False)
    for empty in ("", "   ", None):
        assert "missing" in validate_value(required, empty)
        assert validate_value(optional, empty) is None
    assert check_value(required, "").code == "missing"
    # an optional value that is present must still be valid
    assert validate_value(P(T.DATE, required=False), "2024-08-01") is not None


def test_length_counts_composed_characters():
    name = "Nguyễn Thị Ánh Tuyết Hoàng Phương"[:30]
    decomposed = unicodedata.normalize("NFD", name)
    assert len(decomposed) > 30
    assert validate_value(P(T.CUSTOMER_NAME), decomposed) is None


def test_problem_codes():
    assert check_value(P(T.CODE), "x" * 31).code == "too_long"
    assert check_value(P(T.OTP, min_length=6), "1").code == "too_short"
    assert check_value(P(T.DATE), "x").code == "format"


def test_validate_data_and_recipient():
    params = [
        P(T.CUSTOMER_NAME, name="customer_name"),
        P(T.AMOUNT, name="amount"),
        P(T.CODE, name="order_code"),
    ]
    mapping = {
        "customer_name": {"source": "field", "value": "name"},
        "amount": {"source": "attribute", "value": "total", "format": "amount"},
        # order_code left unmapped: reported missing
    }
    ok = validate_recipient(
        {**mapping, "order_code": {"source": "constant", "value": "DH1"}},
        params,
        ContactData(phone="84901888484", name="An", attributes={"total": "1500000"}),
    )
    assert ok == {}
    errors = validate_recipient(
        mapping,
        params,
        ContactData(phone="84901888484", name="N" * 40, attributes={"total": "abc"}),
    )
    assert set(errors) == {"customer_name", "amount", "order_code"}
    assert "too long" in errors["customer_name"]
    assert "missing" in errors["order_code"]
    assert (
        validate_data(params, {"customer_name": "An", "amount": "1.000", "order_code": "X"}) == {}
    )


@pytest.mark.parametrize(
    ("provider_name", "ours"),
    [
        ("STRING", T.TEXT),
        ("NUMBER", T.NUMBER),
        ("DATE", T.DATE),
        ("type_text", T.TEXT),
        ("type_number", T.DIGITS),
        ("type_date", T.DATE),
        ("type_cta_url", T.URL),
        ("CUSTOMER_NAME", T.CUSTOMER_NAME),
        ("PHONE_NUMBER", T.PHONE),
        ("BANK_TRANSFER_NOTE", T.BANK_NOTE),
        ("Transaction Status", T.STATUS),
        ("14", T.CURRENCY),
        (10, T.AMOUNT),
        ("otp", T.OTP),
        ("something-new", T.TEXT),
        (None, T.TEXT),
        ("bank_note", T.BANK_NOTE),  # our own names pass through
    ],
)
def test_provider_type_names(provider_name, ours):
    assert param_type_from_provider(provider_name) == ours


def test_provider_table_targets_are_our_types():
    assert set(PROVIDER_TYPES.values()) <= set(T.values)
