"""Imports of real exports (issue 17, item 12): Google Contacts' CSV joins a contact's numbers
in one cell with " ::: " and splits names in First/Middle/Last columns; Vietnamese files split
them as Họ / Tên đệm / Tên."""

import pytest

from campaigns.contacts.importing.mapping import guess_mapping
from campaigns.models import Contact
from tests.contacts.conftest import assert_adds_up, report_rows

pytestmark = pytest.mark.django_db

# The columns of Google Contacts' current export (a few dropped: they are read the same way).
GOOGLE_HEADER = (
    "First Name,Middle Name,Last Name,Nickname,Organization Name,Labels,"
    "E-mail 1 - Label,E-mail 1 - Value,Phone 1 - Label,Phone 1 - Value,"
    "Phone 2 - Label,Phone 2 - Value"
)


def google_csv(rows: list[tuple[str, str, str, str]]) -> bytes:
    lines = [GOOGLE_HEADER]
    for first, middle, last, phones in rows:
        lines.append(f"{first},{middle},{last},,,* myContacts,,,Mobile,{phones},,")
    return ("\n".join(lines) + "\n").encode("utf-8")


def test_google_contacts_names_in_vietnamese_order_and_the_first_of_several_numbers(run_import):
    imp = run_import(
        google_csv(
            [
                ("An", "Văn", "Nguyễn", "0912 345 678"),
                ("Bình", "Thị", "Trần", "0987 654 321 ::: +84 903 123 456 ::: 024 3826 1234"),
                ("Châu", "", "Lê", "12345 ::: 0977 111 222"),  # the first is not a number
                ("Dũng", "", "Phạm", "123 ::: 456789"),  # none is a number
                ("Nguyễn Thu Hà", "", "", "0901 222 333"),  # a whole name typed in First Name
            ]
        ),
        "contacts.csv",
    )
    assert_adds_up(imp)
    assert (imp.imported_count, imp.invalid_count) == (4, 1)
    names = dict(Contact.objects.values_list("phone", "name"))
    assert names == {
        "84912345678": "Nguyễn Văn An",
        "84987654321": "Trần Thị Bình",
        "84977111222": "Lê Châu",
        "84901222333": "Nguyễn Thu Hà",
    }
    binh = Contact.objects.get(phone="84987654321")
    # The others are kept: a valid one normalized, a fixed line (not a mobile) as written.
    assert binh.attributes["phone_2"] == "84903123456"
    assert binh.attributes["phone_3"] == "024 3826 1234"
    assert Contact.objects.get(phone="84977111222").attributes["phone_2"] == "12345"
    # The import's report says what happened to the cells with several numbers.
    note = next(w for w in imp.warnings if "several phone numbers" in w)
    assert "2 rows" in note and "rows 3, 4" in note and "phone_2, phone_3, phone_4" in note
    # The true reason for the cell none of whose numbers is valid.
    header, *refused = report_rows(imp)
    assert len(refused) == 1
    row, value, reason = refused[0]
    assert (row, value) == ("5", "123 ::: 456789")
    assert reason.startswith("The cell holds 2 phone numbers and none of them is valid")
    assert "Vietnamese" in reason  # each number's own reason follows


def test_vietnamese_split_name_headers():
    first = ["Số điện thoại", "Họ", "Tên đệm", "Tên", "Thành phố"]
    mapping = guess_mapping(first, [["0912345678", "Nguyễn", "Văn", "An", "Huế"]])
    # "Tên" alone is a whole name; next to "Họ" it is the given name.
    assert mapping["name"] is None
    assert mapping["name_parts"] == [1, 2, 3]
    assert mapping["extra_phones"] == []  # a plain phone column: no extra attributes
    alone = guess_mapping(["SĐT", "Tên"], [["0912345678", "Nguyễn Văn An"]])
    assert (alone["name"], alone["name_parts"]) == (1, [])


def test_vietnamese_split_name_import(run_import):
    content = "SĐT,Họ,Tên đệm,Tên\n0912345678,Nguyễn,Văn,An\n0987654321,Trần,,Bình\n"
    imp = run_import(content.encode("utf-8"))
    assert_adds_up(imp)
    assert sorted(Contact.objects.values_list("name", flat=True)) == [
        "Nguyễn Văn An",
        "Trần Bình",
    ]


def test_a_whole_name_column_wins_and_split_columns_fill_its_blanks(run_import):
    content = (
        "Name,Given Name,Family Name,Phone 1 - Value\n"
        "Chị Lan,Lan,Hoàng,0912345678\n"
        ",Minh,Đỗ,0987654321\n"
    )
    imp = run_import(content.encode("utf-8"))
    assert_adds_up(imp)
    assert dict(Contact.objects.values_list("phone", "name")) == {
        "84912345678": "Chị Lan",
        "84987654321": "Đỗ Minh",
    }


def test_several_numbers_beyond_the_sample_are_taken_and_said(run_import):
    """A ":::" cell the preview did not see (no Google header): the first number is taken and
    the report says the others were not kept (no attribute was prepared for them)."""
    rows = [f"09120000{i:02d},Khách {i}" for i in range(30)]
    rows.append("0933 111 222 ::: 0944 555 666,Khách cuối")
    imp = run_import(("SĐT,Họ tên\n" + "\n".join(rows) + "\n").encode("utf-8"))
    assert_adds_up(imp)
    assert imp.imported_count == 31
    assert Contact.objects.get(phone="84933111222").attributes == {}
    assert any("the others were not kept" in w for w in imp.warnings)
