"""Formatters produce exactly the documented strings; mappings with columns and expressions."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from templates_app import formatting, rendering
from templates_app.formatting import (
    FORMAT_CHOICES,
    FORMATTERS,
    format_amount,
    format_currency,
    format_date,
    format_title,
    parse_number,
)
from templates_app.rendering import (
    SOURCE_CHOICES,
    SOURCES,
    ContactData,
    compile_mapping,
    mapping_suggest,
    placeholders,
    render_body,
    render_params,
    render_placeholders,
    resolve,
    validate_mapping,
)

CONTACT = ContactData(
    phone="84901888484",
    name="  nguyễn   văn an ",
    attributes={
        "city": "Hà Nội",
        "Thành phố": "Đà Nẵng",
        "total": "1500000",
        "gender": "nữ",
        "birthday": "1990-08-01",
        "paid_at": "2024-08-01T01:30:00Z",
        "qty": 3,
        "excel_amount": 1500000.0,
    },
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1000", "1.000"),
        ("1000000", "1.000.000"),
        (1000000, "1.000.000"),
        ("0.3", "0,3"),
        (0.3, "0,3"),
        ("0,3", "0,3"),
        ("1,000,000", "1.000.000"),
        ("1.500.000", "1.500.000"),
        ("1.500", "1.500"),  # Vietnamese thousands separator
        ("1500000.0", "1.500.000"),  # Excel float
        ("1.500.000 đ", "1.500.000"),
        ("1,500.5", "1.500,5"),
        ("1.500,5", "1.500,5"),
        ("-2500", "-2.500"),
        ("999", "999"),
        (Decimal("12345.678"), "12.345,678"),
        ("abc", "abc"),  # left for validation to refuse
    ],
)
def test_format_amount(raw, expected):
    assert format_amount(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1500000", "1500000"),
        ("1.500.000", "1500000"),
        ("1,500,000 VND", "1500000"),
        ("1500000.0", "1500000"),  # the old formatter turned this into 15000000
        ("1500000.5", "1500001"),
        ("1500000.4", "1500000"),
        ("150.000đ", "150000"),
        (99.99, "100"),
        ("n/a", "n/a"),
    ],
)
def test_format_currency(raw, expected):
    assert format_currency(raw) == expected


def test_parse_number_ambiguity_rules():
    assert parse_number("0.300") == Decimal("0.300")  # integer part 0: a decimal
    assert parse_number("1,5") == Decimal("1.5")
    assert parse_number("1,500") == Decimal("1500")
    assert parse_number("12.34.5") is None
    assert parse_number("") is None and parse_number(True) is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2024-08-01", "01/08/2024"),
        ("01/08/2024", "01/08/2024"),
        ("1/8/2024", "01/08/2024"),
        ("01-08-2024", "01/08/2024"),
        ("01.08.2024", "01/08/2024"),
        ("2024/08/01", "01/08/2024"),
        ("2024-08-01 10:00:00", "01/08/2024"),
        (date(2024, 8, 1), "01/08/2024"),
        ("not a date", "not a date"),
    ],
)
def test_format_date(raw, expected):
    assert format_date(raw) == expected


@pytest.mark.parametrize(
    ("fmt", "raw", "expected"),
    [
        ("time_hm", "2024-08-01 09:05:07", "09:05"),
        ("time_hms", "2024-08-01 09:05:07", "09:05:07"),
        ("time_hm", "9:05", "09:05"),
        ("datetime_hm", "2024-08-01 09:05:07", "09:05 01/08/2024"),
        ("datetime_hms", "01/08/2024 09:05:07", "09:05:07 01/08/2024"),
        ("datetime_hms", "09:05:07 01/08/2024", "09:05:07 01/08/2024"),
        ("month", "2024-08-01", "08/2024"),
        ("month", "08/2024", "08/2024"),
        ("date", "08/2024", "08/2024"),  # a month is no day: left as it is
        ("time_hm", "2024-08-01", "2024-08-01"),  # no time in it: left for validation
        # an aware time is shown in Vietnam time (UTC+7)
        ("datetime_hm", "2024-08-01T01:30:00Z", "08:30 01/08/2024"),
        ("datetime_hm", datetime(2024, 8, 1, 1, 30, tzinfo=UTC), "08:30 01/08/2024"),
    ],
)
def test_time_formats(fmt, raw, expected):
    assert FORMATTERS[fmt](raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("male", "Anh"),
        ("Nam", "Anh"),
        ("M", "Anh"),
        ("female", "Chị"),
        ("nữ", "Chị"),
        ("Nu", "Chị"),
        ("F", "Chị"),
        ("ông", "Ông"),
        ("Bà", "Bà"),
        ("", "Anh/Chị"),
        ("other", "Anh/Chị"),
    ],
)
def test_format_title(raw, expected):
    assert format_title(raw) == expected


def test_simple_formatters():
    assert FORMATTERS["trim"]("  a \n  b  ") == "a b"
    assert FORMATTERS["upper"]("đơn") == "ĐƠN"
    assert FORMATTERS["capitalize"]("  nguyễn   văn an ") == "Nguyễn Văn An"
    assert FORMATTERS["no_accents"]("Nguyễn Đức Thắng") == "Nguyen Duc Thang"
    assert FORMATTERS["digits"]("0901-888-484") == "0901888484"
    assert FORMATTERS["phone_local"]("84901888484") == "0901888484"


def test_format_choices_and_sources_are_complete():
    assert {k for k, _label in FORMAT_CHOICES} == set(FORMATTERS)
    assert [k for k, _label in SOURCE_CHOICES] == list(SOURCES)


def test_sources():
    m = {
        "name": {"source": "field", "value": "name", "format": "capitalize"},
        "phone": {"source": "field", "value": "phone", "format": "phone_local"},
        "city": {"source": "attribute", "value": "city"},
        "col": {"source": "column", "value": "thanh pho"},  # forgiving header match
        "col_exact": {"source": "column", "value": "Thành phố"},
        "const": {"source": "constant", "value": "Loa Shop"},
        "amount": {"source": "attribute", "value": "total", "format": "amount"},
        "title": {"source": "attribute", "value": "gender", "format": "title"},
        "title_missing": {"source": "attribute", "value": "nope", "format": "title"},
        "qty": {"source": "attribute", "value": "qty"},
        "excel": {"source": "attribute", "value": "excel_amount", "format": "amount"},
        "missing": {"source": "attribute", "value": "nope", "format": "amount"},
        "chain": {"source": "field", "value": "name", "format": "trim|no_accents|upper"},
    }
    assert render_params(m, CONTACT) == {
        "name": "Nguyễn Văn An",
        "phone": "0901888484",
        "city": "Hà Nội",
        "col": "Đà Nẵng",
        "col_exact": "Đà Nẵng",
        "const": "Loa Shop",
        "amount": "1.500.000",
        "title": "Chị",
        "title_missing": "Anh/Chị",
        "qty": "3",
        "excel": "1.500.000",
        "missing": "",
        "chain": "NGUYEN VAN AN",
    }


def test_expressions():
    m = {
        "a": {"source": "expression", "value": "{name|capitalize} - {attr.city}"},
        "b": {"source": "expression", "value": "{attr.total|amount} đ"},
        "c": {"source": "expression", "value": "{{literal}} {col.Thanh Pho}"},
        "d": {"source": "expression", "value": "{phone|phone_local}/{attr.gender|title}"},
        "e": {"source": "expression", "value": "  {attr.nope}  ", "format": "trim"},
    }
    assert render_params(m, CONTACT) == {
        "a": "Nguyễn Văn An - Hà Nội",
        "b": "1.500.000 đ",
        "c": "{literal} Đà Nẵng",
        "d": "0901888484/Chị",
        "e": "",
    }


def test_expressions_never_evaluate_code():
    m = {"x": {"source": "expression", "value": "{__import__('os').system('echo hi')}"}}
    assert validate_mapping(m, ["x"])  # reported
    assert render_params(m, CONTACT) == {"x": ""}  # and rendered empty, never run


def test_validate_mapping_reports_each_problem():
    mapping = {
        "ok": {"source": "field", "value": "name"},
        "bad_source": {"source": "sql", "value": "x"},
        "bad_format": {"source": "field", "value": "name", "format": "shout"},
        "bad_field": {"source": "field", "value": "email"},
        "bad_expr": {"source": "expression", "value": "{name} {attr.}"},
        "unbalanced": {"source": "expression", "value": "{name"},
    }
    errors = validate_mapping(mapping, [*mapping, "unmapped"])
    joined = " | ".join(errors)
    assert len(errors) == 6
    for name in ("bad_source", "bad_format", "bad_field", "bad_expr", "unbalanced", "unmapped"):
        assert f"“{name}”" in joined
    assert validate_mapping({"ok": mapping["ok"]}, ["ok"]) == []


def test_legacy_api_still_works():
    spec = {"source": "attribute", "value": "total", "format": "amount"}
    assert resolve(spec, CONTACT) == "1.500.000"
    assert render_params({"x": None}, CONTACT) == {"x": ""}
    assert (
        render_body("Chào {{ name }}, đơn <code>", {"name": "An", "code": "D1"})
        == "Chào An, đơn D1"
    )
    assert compile_mapping({"n": {"source": "field", "value": "name"}}).render_contact(CONTACT) == {
        "n": "nguyễn   văn an"
    }


def test_render_params_recompiles_when_mapping_changes():
    m = {"x": {"source": "constant", "value": "one"}}
    assert render_params(m, CONTACT) == {"x": "one"}
    m["x"]["value"] = "two"  # mutated in place: must not reuse the stale compilation
    assert render_params(m, CONTACT) == {"x": "two"}


def test_values_are_nfc():
    decomposed = "Nguye\u0302\u0303n"
    out = render_params({"n": {"source": "constant", "value": decomposed}}, CONTACT)["n"]
    assert out == "Nguyễn" and len(out) == 6


def test_placeholders_and_render_placeholders():
    assert placeholders("Hi {{name}}, {{ order }} {{name}}", "{{extra}}") == [
        "name",
        "order",
        "extra",
    ]
    assert (
        render_placeholders("Hi {{name}} {{other}}", {"name": "<b>"}, escape=lambda v: v.upper())
        == "Hi <B> {{other}}"
    )


def test_mapping_suggest():
    class Param:
        def __init__(self, name, param_type):
            self.name, self.param_type = name, param_type

    got = mapping_suggest(
        [
            Param("customer_name", "customer_name"),
            Param("order_code", "code"),
            Param("amount", "amount"),
            Param("salutation", "title"),
            Param("sdt", "phone_number"),
        ]
    )
    assert got == {
        "customer_name": {"source": "field", "value": "name", "format": "trim"},
        "order_code": {"source": "column", "value": "order_code"},
        "amount": {"source": "column", "value": "amount", "format": "amount"},
        "salutation": {"source": "attribute", "value": "gender", "format": "title"},
        "sdt": {"source": "field", "value": "phone", "format": "phone_local"},
    }
    assert validate_mapping(got, list(got)) == []


def test_module_exports_kept():
    for name in (
        "render_params",
        "render_body",
        "validate_mapping",
        "ContactData",
        "resolve",
        "CONTACT_FIELDS",
        "SOURCES",
    ):
        assert hasattr(rendering, name)
    # The formatters moved to their own module (templates_app/formatting.py).
    for name in ("FORMATTERS", "format_amount", "format_currency", "format_date", "format_title"):
        assert hasattr(formatting, name)
