"""Each hostile file of issue 3: a clear result, and nothing lost (every row counted, every
refused row in the report with its number, raw value and reason)."""

import unicodedata

import pytest

from campaigns.contacts.importing.files import ImportFileError
from campaigns.contacts.importing.run import contact_import_prepare, contact_import_run
from campaigns.models import Contact, ContactImport
from tests.contacts import hostile
from tests.contacts.conftest import assert_adds_up, report_rows

pytestmark = pytest.mark.django_db

NFC_NAMES = ["Nguyễn Văn An", "Trần Thị Bình", "Lê Hoàng Châu"]


def names():
    return sorted(Contact.objects.values_list("name", flat=True))


def phones():
    return sorted(Contact.objects.values_list("phone", flat=True))


def test_utf8_with_bom(run_import):
    imp = run_import(hostile.utf8_bom())
    assert_adds_up(imp)
    assert (imp.encoding, imp.delimiter) == ("utf-8-sig", ",")
    assert (imp.total_rows, imp.imported_count, imp.invalid_count) == (3, 3, 0)
    assert names() == sorted(NFC_NAMES)
    an = Contact.objects.get(phone="84987654321")
    # "STT" (row number) is not kept; "Thành phố" becomes an ASCII attribute key
    assert an.attributes == {"thanh_pho": "Hà Nội"}
    assert an.search_text == "nguyen van an"
    assert not imp.error_report


def test_utf16_excel_unicode_text(run_import):
    imp = run_import(hostile.utf16_unicode_text(), "khach.txt")
    assert_adds_up(imp)
    assert (imp.encoding, imp.delimiter) == ("utf-16", "\t")
    assert imp.imported_count == 3
    assert names() == sorted(NFC_NAMES)


def test_cp1258_with_decomposed_accents_is_composed_and_warned(run_import):
    raw = hostile.cp1258_decomposed()
    assert not raw.decode("cp1258").isascii()
    imp = run_import(raw)
    assert_adds_up(imp)
    assert imp.encoding == "cp1258"
    assert any("Windows-1258" in w for w in imp.warnings)
    # Stored NFC: the same name typed on a Mac and on Windows compares equal.
    assert names() == sorted(NFC_NAMES)
    for name in names():
        assert unicodedata.is_normalized("NFC", name)
    assert Contact.objects.get(phone="84903123456").attributes == {"thanh_pho": "Huế"}
    assert Contact.objects.filter(search_text="nguyen van an").exists()


def test_semicolon_delimiter(run_import):
    imp = run_import(hostile.semicolon())
    assert_adds_up(imp)
    assert imp.delimiter == ";"
    assert imp.imported_count == 2
    c = Contact.objects.get(phone="84987654321")
    assert c.name == "Phạm Thu"
    assert c.attributes == {"ghi_chu": "khách, VIP"}  # the comma stays inside the cell


def test_scientific_notation_is_refused_with_how_to_fix(run_import):
    imp = run_import(hostile.e_notation())
    assert_adds_up(imp)
    assert (imp.imported_count, imp.invalid_count) == (1, 2)
    header, *rows = report_rows(imp)
    assert header == ["row", "value", "reason"]
    assert [r[:2] for r in rows] == [["2", "8.49877E+10"], ["4", "8,49123E+10"]]
    for _row, _value, reason in rows:
        assert "scientific notation" in reason
        assert "Text" in reason  # tells the user how to fix the file


def test_leading_zero_stripped_and_numeric_cells(run_import):
    imp = run_import(hostile.leading_zero_stripped())
    assert_adds_up(imp)
    assert imp.imported_count == 3
    assert phones() == ["84903123456", "84912345678", "84987654321"]


def test_legacy_eleven_digit_numbers_are_rewritten_and_counted(run_import):
    imp = run_import(hostile.legacy_numbers())
    assert_adds_up(imp)
    assert imp.imported_count == 4
    assert imp.legacy_rewritten_count == 3
    assert phones() == ["84389123456", "84793456789", "84834567890", "84987654321"]
    assert any("2018" in w for w in imp.warnings)


def test_duplicates_within_the_file(run_import):
    imp = run_import(hostile.duplicates())
    assert_adds_up(imp)
    assert (imp.total_rows, imp.imported_count, imp.duplicate_count) == (4, 2, 2)
    first = Contact.objects.get(phone="84987654321")
    assert (first.name, first.attributes, first.source_row) == ("First", {"city": "Hà Nội"}, 2)
    _header, *rows = report_rows(imp)
    assert [r[0] for r in rows] == ["3", "4"]
    assert rows[0][1] == "'+84 987 654 321"  # formula-safe: a cell starting with + is quoted
    assert all("row 2" in r[2] for r in rows)


def test_duplicates_against_the_database(run_import, contact_list):
    Contact.objects.create(phone="84987654321", name="Known", attributes={"tier": "gold"})
    imp = run_import(hostile.duplicates())
    assert_adds_up(imp)
    assert (imp.imported_count, imp.updated_count, imp.duplicate_count) == (1, 1, 2)
    known = Contact.objects.get(phone="84987654321")
    assert known.name == "Known"  # default policy: fill blanks
    assert known.attributes == {"tier": "gold", "city": "Hà Nội"}
    contact_list.refresh_from_db()
    assert contact_list.contact_count == 2
    assert set(contact_list.contacts.values_list("phone", flat=True)) == {
        "84987654321",
        "84912345678",
    }


def test_formula_cells_are_data_and_reported_safely(run_import):
    imp = run_import(hostile.formula_cells())
    assert_adds_up(imp)
    assert (imp.imported_count, imp.invalid_count) == (2, 1)
    c = Contact.objects.get(phone="84987654321")
    # Stored as typed (it is data); exports and reports neutralise it.
    assert c.name.startswith("=HYPERLINK(")
    assert c.attributes == {"note": "@SUM(1+1)"}
    _header, row = report_rows(imp)
    assert row[:2] == ["3", "'=1+2"]


def test_empty_file(refuse):
    assert refuse(hostile.empty()) == "The file is empty."


def test_blank_lines_only(refuse):
    assert "empty" in refuse(hostile.blank_lines())


def test_binary_garbage(refuse):
    message = refuse(hostile.binary_garbage(), "photo.csv")
    assert "CSV" in message and "xlsx" in message


@pytest.mark.parametrize(
    "content",
    [b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600],
)
def test_pdf_and_old_xls_are_named(refuse, content):
    message = refuse(content)
    assert "PDF" in message or ".xls" in message


def test_header_without_a_phone_column(run_import):
    imp = run_import(hostile.no_phone_column())
    assert imp.status == ContactImport.Status.FAILED
    assert "No phone column" in imp.error_message
    assert "“email”" in imp.error_message  # shows what the header holds
    assert Contact.objects.count() == 0


def test_xlsx_zip_bomb_is_refused_before_inflating(refuse):
    message = refuse(hostile.xlsx_zip_bomb(), "bomb.xlsx")
    assert "zip bomb" in message


def test_xlsx_with_numeric_cells(run_import):
    imp = run_import(hostile.xlsx_normal(), "khach.xlsx")
    assert_adds_up(imp)
    assert imp.imported_count == 3
    assert phones() == ["84903123456", "84912345678", "84987654321"]
    an = Contact.objects.get(phone="84987654321")
    assert an.name == "Nguyễn Văn An"
    assert an.attributes == {"so_tien": "150000"}
    assert Contact.objects.get(phone="84912345678").attributes == {"so_tien": "2.5"}
    assert Contact.objects.get(phone="84903123456").attributes == {}


def test_damaged_xlsx(refuse):
    assert "damaged" in refuse(b"PK\x03\x04" + b"\0" * 100, "broken.xlsx")


def test_ragged_rows_are_reported_not_fatal(run_import):
    imp = run_import(hostile.ragged())
    assert_adds_up(imp)
    assert imp.imported_count == 3
    assert any("fewer cells" in w and "2" in w for w in imp.warnings)
    assert any("more cells" in w and "3" in w for w in imp.warnings)
    assert Contact.objects.get(phone="84987654321").attributes == {}


def test_oversized_fields_refuse_the_row_not_the_file(run_import):
    content = (
        "phone,name,note\n0987654321," + "A" * 250 + ",x\n0912345678,Ok," + "n" * 1500 + "\n"
        "0903123456,Fine,short\n"
    ).encode()
    imp = run_import(content)
    assert_adds_up(imp)
    assert (imp.imported_count, imp.invalid_count) == (1, 2)
    _header, *rows = report_rows(imp)
    assert "name is longer than 200" in rows[0][2]
    assert "“note” cell is longer than 1000" in rows[1][2]


def test_unbalanced_quote_is_visible(run_import):
    content = b'phone,name\n0987654321,"Nguyen\n0912345678,Tran\n0903123456,Le\n'
    imp = run_import(content)
    assert_adds_up(imp)
    # the quote swallowed the following lines into one cell: said, not silent
    assert any("quote" in w for w in imp.warnings)


def test_excel_sep_line_and_no_header(run_import):
    imp = run_import(b"sep=;\r\n0987654321;An\r\n0912345678;Binh\r\n")
    assert_adds_up(imp)
    assert imp.delimiter == ";"
    assert imp.mapping["has_header"] is False
    assert imp.imported_count == 2


def test_utf16_without_bom(run_import):
    content = "phone\tname\n0987654321\tNguyễn An\n".encode("utf-16-le")
    imp = run_import(content)
    assert_adds_up(imp)
    assert imp.encoding == "utf-16-le"
    assert names() == ["Nguyễn An"]


def test_size_limit_checked_before_reading(refuse, settings):
    settings.CONTACT_UPLOAD_MAX_BYTES = 100
    assert "limit" in refuse(hostile.utf8_bom() * 2)


def test_row_limit_checked_before_reading(refuse, settings):
    settings.CONTACT_UPLOAD_MAX_ROWS = 2
    assert "limit is 2" in refuse(hostile.utf8_bom())
    assert Contact.objects.count() == 0


def test_run_twice_is_a_no_op(run_import):
    """django-q2 redelivers tasks: a second run of the same import changes nothing."""
    imp = run_import(hostile.utf8_bom())
    again = contact_import_run(import_id=imp.pk)
    assert (again.imported_count, again.status) == (3, ContactImport.Status.COMPLETED)
    assert Contact.objects.count() == 3


@pytest.mark.parametrize("name", sorted(hostile.FILES))
def test_every_fixture_file_has_a_clear_outcome(name, run_import, refuse):
    """Nothing ends in an exception: refused with a reason, failed with a reason, or counted."""
    content = hostile.FILES[name]()
    try:
        import io

        from campaigns.models import ContactList

        contact_import_prepare(
            file=io.BytesIO(content),
            filename=name,
            contact_list=ContactList.objects.create(name=name),
        )
    except ImportFileError as exc:
        assert str(exc)
        return
    imp = run_import(content, name)
    if imp.status == ContactImport.Status.FAILED:
        assert imp.error_message
    else:
        assert_adds_up(imp)
