"""Typed attributes (issue 20): an attribute declared a date (dd/mm/yyyy, Excel serial, ISO), a
lunar date or a number is converted on import (stored ISO, lunar ISO, plain number), a value that
does not parse is left out and its row named in the report while the row's other values are
imported; date and number rules count on SQLite and PostgreSQL; the admin for the declarations;
the wizard shows declared dates dd/mm/yyyy."""

from __future__ import annotations

import json
from datetime import date, datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from campaigns.admin.wizard.forms import MappingStepForm
from campaigns.attribute_types import (
    converter,
    excel_serial_date,
    parse_lunar_input,
    parse_lunar_value,
    parse_typed_date,
)
from campaigns.contacts.segments import attribute_keys, contacts_matching
from campaigns.models import AttributeDefinition, Contact
from templates_app.models import TemplateParam
from templates_app.rendering import ContactData, render_params
from tests.contacts.conftest import assert_adds_up, report_rows
from tests.contacts.hostile import xlsx

pytestmark = pytest.mark.django_db

Type, Fmt = AttributeDefinition.Type, AttributeDefinition.DateFormat


def declare(key, kind, fmt=Fmt.DMY):
    return AttributeDefinition.objects.create(key=key, label=key, type=kind, date_format=fmt)


# ---- conversions -------------------------------------------------------------------------------


def test_date_formats():
    assert parse_typed_date("05/02/1990") == date(1990, 2, 5)
    assert parse_typed_date("5-2-1990") == date(1990, 2, 5)
    assert parse_typed_date("1990-02-05") == date(1990, 2, 5)  # an XLSX date cell, read ISO
    assert parse_typed_date("31/02/1990") is None
    assert parse_typed_date("02/05/90") is None  # a two-digit year is ambiguous: refused
    assert parse_typed_date("1990-02-05", "iso") == date(1990, 2, 5)
    assert parse_typed_date("05/02/1990", "iso") is None
    assert parse_typed_date("32909", "excel") == date(1990, 2, 5)
    assert parse_typed_date("45000.75", "excel") == date(2023, 3, 15)
    assert parse_typed_date("1990-02-05 00:00:00", "excel") == date(1990, 2, 5)
    assert excel_serial_date("12") is None  # January 1900 or a quantity: not a birthday
    assert excel_serial_date("0912345678") is None


def test_lunar_and_number_forms():
    assert parse_lunar_input("15/08/1990") == (1990, 8, 15, False)
    assert parse_lunar_input("15/02/2023 nhuận") == (2023, 2, 15, True)
    assert parse_lunar_input("15/02/2023 (N)") == (2023, 2, 15, True)
    assert parse_lunar_input("31/01/2023") is None
    assert converter("lunar_date")("15/02/2023 nhuận") == "2023-02-15L"
    assert parse_lunar_value("2023-02-15L") == (2023, 2, 15, True)
    assert parse_lunar_value("1990-08-15") == (1990, 8, 15, False)
    number = converter("number")
    assert number("1.500.000") == "1500000"
    assert number("0,5") == "0.5"
    assert number("abc") is None
    assert converter("text") is None


# ---- import ------------------------------------------------------------------------------------


def test_import_converts_typed_columns_and_reports_bad_values(run_import):
    declare("ngay_sinh", Type.DATE)
    declare("tong_chi", Type.NUMBER)
    declare("sinh_nhat_am", Type.LUNAR_DATE)
    content = (
        "SĐT,Họ tên,Ngày sinh,Tổng chi,Sinh nhật âm,Thành phố\r\n"
        "0912345678,An,05/02/1990,1.500.000,15/08/1990,Huế\r\n"
        "0912345679,Bình,31/02/1990,abc,15/02/2023 nhuận,Vinh\r\n"
        "0912345680,Chi,,250000,40/13/2000,Hà Nội\r\n"
        "bad phone,Dũng,01/01/2000,1,,Huế\r\n"
    ).encode()
    imp = run_import(content)
    assert_adds_up(imp)
    assert (imp.imported_count, imp.invalid_count) == (3, 1)
    attrs = {c.name: c.attributes for c in Contact.objects.all()}
    assert attrs["An"] == {
        "ngay_sinh": "1990-02-05",
        "tong_chi": "1500000",
        "sinh_nhat_am": "1990-08-15",
        "thanh_pho": "Huế",
    }
    # The bad date and number are left out; the row and its other values are imported.
    assert attrs["Bình"] == {"sinh_nhat_am": "2023-02-15L", "thanh_pho": "Vinh"}
    assert attrs["Chi"] == {"tong_chi": "250000", "thanh_pho": "Hà Nội"}
    rows = report_rows(imp)[1:]
    reasons = {(r[0], r[1]): r[2] for r in rows}
    assert "Imported without “ngay_sinh”" in reasons[("3", "31/02/1990")]
    assert "dd/mm/yyyy" in reasons[("3", "31/02/1990")]
    assert "is not a number" in reasons[("3", "abc")]
    assert "lunar date" in reasons[("4", "40/13/2000")]
    assert ("5", "bad phone") in reasons  # refused as before
    warning = next(w for w in imp.warnings if "does not fit" in w)
    assert "2 rows" in warning and "rows 3, 4" in warning


def test_without_declarations_nothing_changes(run_import):
    imp = run_import("SĐT,Ngày sinh\r\n0912345678,05/02/1990\r\n".encode())
    assert_adds_up(imp)
    assert Contact.objects.get().attributes == {"ngay_sinh": "05/02/1990"}
    assert not imp.error_report
    assert not any("does not fit" in w for w in imp.warnings)


def test_excel_serial_dates_from_an_xlsx(run_import):
    declare("ngay_sinh", Type.DATE, Fmt.EXCEL)
    declare("het_han", Type.DATE, Fmt.EXCEL)
    content = xlsx(
        [
            ["SĐT", "Họ tên", "Ngày sinh", "Hết hạn"],
            ["0912345678", "An", 32909, datetime(2026, 12, 31)],  # a General cell, a date cell
            ["0912345679", "Bình", 45000.75, "không rõ"],
        ]
    )
    imp = run_import(content, "khach.xlsx")
    assert_adds_up(imp)
    attrs = {c.name: c.attributes for c in Contact.objects.all()}
    assert attrs["An"] == {"ngay_sinh": "1990-02-05", "het_han": "2026-12-31"}
    assert attrs["Bình"] == {"ngay_sinh": "2023-03-15"}
    assert "Excel date" in report_rows(imp)[1][2]


# ---- segments ----------------------------------------------------------------------------------


@pytest.fixture
def dated(monkeypatch):
    declare("ngay_sinh", Type.DATE)
    declare("het_han", Type.DATE, Fmt.ISO)
    declare("diem", Type.NUMBER)
    monkeypatch.setattr(timezone, "localdate", lambda *a, **k: date(2025, 2, 20))
    people = {
        "An": {"ngay_sinh": "1990-02-27", "het_han": "2025-02-25", "diem": "120"},
        "Bình": {"ngay_sinh": "1988-02-28", "het_han": "2025-03-30", "diem": "80.5"},
        "Chi": {"ngay_sinh": "1992-02-29", "het_han": "2025-02-19", "diem": "1500000"},
        "Dũng": {"ngay_sinh": "2001-12-01"},
    }
    for n, (name, attrs) in enumerate(people.items()):
        Contact.objects.create(phone=f"8491234560{n}", name=name, attributes=attrs)


def names(rules, match="all") -> set[str]:
    return set(contacts_matching(rules=rules, match=match).values_list("name", flat=True))


@pytest.mark.parametrize(
    "rule, expected",
    [
        ({"attribute": "ngay_sinh", "op": "before", "value": "01/01/1991"}, {"An", "Bình"}),
        ({"attribute": "ngay_sinh", "op": "after", "value": "1991-01-01"}, {"Chi", "Dũng"}),
        ({"attribute": "ngay_sinh", "op": "on", "value": "27/02/1990"}, {"An"}),
        ({"attribute": "het_han", "op": "next_days", "value": 5}, {"An"}),
        ({"attribute": "het_han", "op": "next_days", "value": 40}, {"An", "Bình"}),
        ({"attribute": "het_han", "op": "last_days", "value": 3}, {"Chi"}),
        ({"attribute": "ngay_sinh", "op": "anniversary_in", "value": 7}, {"An"}),
        # 28/02/2025 (no 29/02 this year): the 28th and the 29th birthdays
        ({"attribute": "ngay_sinh", "op": "anniversary_in", "value": 8}, {"Bình", "Chi"}),
        ({"attribute": "ngay_sinh", "op": "birthday_days", "value": 8}, {"An", "Bình", "Chi"}),
        ({"attribute": "diem", "op": "gte", "value": "100"}, {"An", "Chi"}),
        ({"attribute": "diem", "op": "lt", "value": "100"}, {"Bình"}),
        ({"attribute": "diem", "op": "gt", "value": "1.000.000"}, {"Chi"}),
    ],
)
def test_date_and_number_rules_count(dated, rule, expected):
    # Runs on the test database of the session: SQLite by default, PostgreSQL with DATABASE_URL.
    assert names([rule]) == expected
    assert contacts_matching(rules=[rule], match="all").count() == len(expected)


def test_builder_offers_declared_types(dated):
    declare("sinh_nhat_am", Type.LUNAR_DATE)
    declare("chua_co_ai", Type.DATE)  # declared, no contact has it yet: still offered
    keys = {k["key"]: k for k in attribute_keys()}
    assert keys["ngay_sinh"] == {"key": "ngay_sinh", "type": "date", "declared": True}
    assert keys["diem"]["type"] == "number"
    assert keys["sinh_nhat_am"]["type"] == "lunar"
    assert keys["chua_co_ai"]["type"] == "date"


def test_builder_page_lists_the_new_operators(dated, admin_client):
    admin_client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    page = admin_client.get(reverse("admin:campaigns_segment_add")).content.decode()
    assert "in the next N days" in page
    assert "anniversary in N days (any year)" in page
    url = reverse("admin:campaigns_segment_preview")
    rules = [{"attribute": "ngay_sinh", "op": "anniversary_in", "value": 7}]
    body = json.dumps({"rules": rules, "match": "all", "lists": []})
    answer = admin_client.post(url, body, content_type="application/json")
    assert answer.status_code == 200
    assert answer.json()["count"] == 1
    body = json.dumps({"rules": [{**rules[0], "value": 400}], "match": "all", "lists": []})
    data = admin_client.post(url, body, content_type="application/json").json()
    assert data["errors"] == ["Rule 1 needs a number of days from 0 to 366."]


# ---- admin -------------------------------------------------------------------------------------


def test_admin_declares_an_attribute_type(admin_client):
    admin_client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    url = reverse("admin:campaigns_attributedefinition_add")
    page = admin_client.get(url)
    assert page.status_code == 200
    assert "Excel serial date" in page.content.decode()
    answer = admin_client.post(
        url, {"key": "ngay_sinh", "label": "Ngày sinh", "type": "date", "date_format": "excel"}
    )
    assert answer.status_code == 302
    d = AttributeDefinition.objects.get()
    assert (d.key, d.type, d.date_format) == ("ngay_sinh", "date", "excel")
    listing = admin_client.get(reverse("admin:campaigns_attributedefinition_changelist"))
    assert "Excel serial date" in listing.content.decode()
    bad = admin_client.post(url, {"key": "Ngày sinh", "type": "date", "date_format": "dmy"})
    assert bad.status_code == 200
    assert "letters without accents" in bad.content.decode()
    taken = admin_client.post(url, {"key": "phone", "type": "number", "date_format": "dmy"})
    assert "is a contact field" in taken.content.decode()
    assert AttributeDefinition.objects.count() == 1


# ---- the wizard --------------------------------------------------------------------------------


def test_wizard_mapping_shows_declared_dates_dd_mm_yyyy():
    declare("ngay_sinh", Type.DATE)
    param = TemplateParam(name="birthday", param_type=TemplateParam.Type.TEXT, required=True)
    form = MappingStepForm(
        {"p0_source": "attribute", "p0_value": "ngay_sinh", "p0_format": ""},
        params=[param],
        initial_mapping={},
    )
    assert form.is_valid(), form.errors
    mapping = form.mapping()
    assert mapping["birthday"] == {"source": "attribute", "value": "ngay_sinh", "format": "date"}
    rendered = render_params(mapping, ContactData("84912345678", "An", {"ngay_sinh": "1990-02-05"}))
    assert rendered["birthday"] == "05/02/1990"
    # A format chosen by the person wins.
    form = MappingStepForm(
        {"p0_source": "attribute", "p0_value": "ngay_sinh", "p0_format": "month"},
        params=[param],
        initial_mapping={},
    )
    assert form.is_valid()
    assert form.mapping()["birthday"]["format"] == "month"


def test_converting_the_values_contacts_already_hold(admin_client, run_import):
    admin_client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    run_import(
        "SĐT,Ngày sinh,Âm\r\n"
        "0912345678,05/02/1990,15/08/1990\r\n"
        "0912345679,1991-03-04,15/02/2023 nhuận\r\n"
        "0912345680,không nhớ,\r\n".encode()
    )
    born = declare("ngay_sinh", Type.DATE)
    lunar = declare("am", Type.LUNAR_DATE)
    url = reverse("admin:campaigns_attributedefinition_changelist")
    answer = admin_client.post(
        url,
        {"action": "convert_existing", "_selected_action": [born.pk, lunar.pk]},
        follow=True,
    )
    page = answer.content.decode()
    assert (
        "Values converted: 1; already in the stored form: 1; left as they were because they "
        "do not parse: 1 (“không nhớ”)"
    ) in page
    values = dict(Contact.objects.values_list("phone", "attributes"))
    assert values["84912345678"] == {"ngay_sinh": "1990-02-05", "am": "1990-08-15"}
    assert values["84912345679"] == {"ngay_sinh": "1991-03-04", "am": "2023-02-15L"}
    assert values["84912345680"] == {"ngay_sinh": "không nhớ"}  # left for a person to fix
    born.refresh_from_db()
    assert born.converted_at and born.conversion_note.startswith("Values converted: 1;")
    # Run again: nothing left to convert.
    admin_client.post(url, {"action": "convert_existing", "_selected_action": [born.pk]})
    born.refresh_from_db()
    assert born.conversion_note.startswith("Values converted: 0; already in the stored form: 2;")


def test_mapping_page_says_which_columns_are_typed(admin_client):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from campaigns.models import ContactImport

    admin_client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    declare("ngay_sinh", Type.DATE, Fmt.EXCEL)
    declare("khong_co", Type.NUMBER)  # declared, not in this file: not mentioned
    content = "SĐT,Ngày sinh,Thành phố\r\n0912345678,32909,Huế\r\n".encode()
    admin_client.post(
        reverse("admin:campaigns_contactimport_add"),
        {
            "merge_policy": "fill",
            "new_list_name": "Sinh nhật",
            "file": SimpleUploadedFile("k.csv", content),
        },
    )
    imp = ContactImport.objects.get()
    page = admin_client.get(reverse("admin:campaigns_contactimport_map", args=[imp.pk]))
    html = page.content.decode()
    assert 'id="typed-columns"' in html
    assert "“ngay_sinh” date (Excel serial date (e.g. 32909))" in html
    assert "khong_co" not in html


def test_contact_form_stores_declared_types_in_their_form(admin_client):
    from tests.contacts.test_attribute_rows import rows_post

    admin_client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    declare("ngay_sinh", Type.DATE, Fmt.EXCEL)  # files send serials; a person types dd/mm/yyyy
    declare("sinh_am", Type.LUNAR_DATE)
    contact = Contact.objects.create(phone="84912345678", name="An", attributes={})
    url = reverse("admin:campaigns_contact_change", args=[contact.pk])
    answer = admin_client.post(
        url,
        rows_post([("ngay_sinh", "05/02/1990"), ("sinh_am", "15/02/2023 nhuận"), ("city", "Huế")]),
    )
    assert answer.status_code == 302
    contact.refresh_from_db()
    assert contact.attributes == {
        "ngay_sinh": "1990-02-05",
        "sinh_am": "2023-02-15L",
        "city": "Huế",
    }
    refused = admin_client.post(url, rows_post([("ngay_sinh", "31/02/1990")]))
    assert refused.status_code == 200
    assert "“ngay_sinh” must be a date dd/mm/yyyy." in refused.content.decode()
    contact.refresh_from_db()
    assert contact.attributes["ngay_sinh"] == "1990-02-05"
