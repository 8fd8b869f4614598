"""Contact import in a real browser, with a real qcluster worker: a contact staff member uploads
a hostile file (UTF-8 with a BOM, `;` between cells, Vietnamese headers, phones in every format,
an E-notation cell, a duplicate, an old 11-digit number), checks the preview, maps a column by
hand, watches the import finish, and sees counts that add up on the result page, then downloads
the refused rows."""

import csv
import io

import pytest

from campaigns.models import Contact, ContactImport
from tests.browser.conftest import ensure_roles, login
from tests.conftest import wait_for
from tests.factories import ContactFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ROWS = [
    ("Số điện thoại", "Họ tên", "Mã đơn", "Ghi chú nội bộ"),
    ("0912 345 678", "Nguyễn Văn An", "DH1", "vip"),  # new
    ("+84 912 345 679", "Trần Thị Bình", "DH2", ""),  # new
    ("84912345680.0", "Lê Minh Châu", "DH3", ""),  # new (Excel's trailing .0)
    ("912345681", "Phạm Ngọc Dũng", "DH4", ""),  # new (leading zero lost)
    ("01688123456", "Hoàng Thu Hà", "DH5", ""),  # new, rewritten to 0388123456
    ("8.49123E+10", "Võ Văn Khoa", "DH6", ""),  # invalid: scientific notation
    ("xin chào", "Đặng Lan", "DH7", ""),  # invalid: no phone
    ("0912.345.678", "Nguyễn Văn An", "DH1", ""),  # duplicate of the first row
    ("0987 000 111", "Bùi Quang", "DH9", ""),  # already a contact: updated
]


def _file() -> bytes:
    out = io.StringIO()
    csv.writer(out, delimiter=";", lineterminator="\r\n").writerows(ROWS)
    return b"\xef\xbb\xbf" + out.getvalue().encode("utf-8")


def _number(page, selector: str) -> int:
    return int("".join(ch for ch in page.inner_text(selector) if ch.isdigit()) or "0")


def test_upload_preview_map_and_result_in_the_browser(page, live_server, qcluster, monkeypatch):
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", False)  # the live server enqueues; the worker imports
    ensure_roles()
    cluster = qcluster()
    UserFactory(username="thu", groups=["Contact staff"])
    ContactFactory(phone="84987000111", name="", attributes={})

    login(page, "thu")
    response = page.goto("/admin/campaigns/contactimport/add/")
    assert response.status == 200
    page.set_input_files(
        "#id_file", files=[{"name": "khach-hang.csv", "mimeType": "text/csv", "buffer": _file()}]
    )
    page.fill("#id_new_list_name", "Khách tháng 12")
    page.click("#upload-submit")

    # 2. The preview: what was detected, and the columns recognized from Vietnamese headers.
    page.wait_for_selector("#preview-table")
    assert "UTF-8" in page.inner_text("#detected-encoding")
    assert "(;)" in page.inner_text("#detected-delimiter")
    assert page.input_value("#id_map_0") == "phone"
    assert page.input_value("#id_map_1") == "name"
    assert page.input_value("#id_map_2") == "attribute"
    assert "Nguyễn Văn An" in page.inner_text("#preview-table")
    # The staff member keeps the internal note out and renames the order attribute.
    page.select_option("#id_map_3", "ignore")
    page.fill("#id_key_2", "ma_don_hang")
    page.click("#start-import")

    # 3. The result page, filled in by the worker while the page polls the progress.
    page.wait_for_selector("#import-panel")
    imp = wait_for(
        lambda: ContactImport.objects.filter(status__in=["completed", "failed"]).first(),
        timeout=90,
    )
    assert imp is not None and imp.status == "completed", cluster.output()
    page.wait_for_function(
        "() => document.querySelector('#import-panel').dataset.finished === '1'"
        " || /9/.test(document.querySelector('#count-total').textContent)",
        timeout=30_000,
    )
    page.reload()
    counts = {
        k: _number(page, f"#count-{k}")
        for k in ("total", "imported", "updated", "duplicate", "invalid")
    }
    assert counts == {"total": 9, "imported": 5, "updated": 1, "duplicate": 1, "invalid": 2}
    assert counts["total"] == sum(v for k, v in counts.items() if k != "total")
    assert _number(page, "#count-legacy") == 1
    assert "11-digit" in page.inner_text("#import-warnings")

    # What was stored: normalized phones, the chosen attribute name, nothing ignored leaked in.
    an = Contact.objects.get(phone="84912345678")
    assert an.name == "Nguyễn Văn An" and an.attributes == {"ma_don_hang": "DH1"}
    assert Contact.objects.filter(phone="84388123456").exists()
    assert Contact.objects.get(phone="84987000111").name == "Bùi Quang"

    # 4. The refused rows: row number (as Excel shows it), the raw value and the reason.
    with page.expect_download() as info:
        page.click("#error-report-link")
    report = list(csv.reader(io.StringIO(info.value.path().read_text(encoding="utf-8-sig"))))
    refused = {row[0]: row for row in report[1:]}
    assert set(refused) == {"7", "8", "9"}
    assert refused["7"][1] == "8.49123E+10" and "Excel" in refused["7"][2]
    # (in the uploader's language, English here, although the worker's default is Vietnamese)
    assert refused["9"][1] == "0912.345.678" and "row 2" in refused["9"][2]
