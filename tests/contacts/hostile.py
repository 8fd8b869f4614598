"""The hostile files of issue 3, built byte by byte (what Excel and old systems really write).

`python -m tests.contacts.hostile` writes them to tests/fixtures/contacts/ for manual and browser
tests; the unit tests build them in memory from the same functions.
"""

from __future__ import annotations

import codecs
import csv
import io
import unicodedata
import zipfile
from pathlib import Path

HEADER_VI = ["STT", "Họ tên", "SĐT", "Thành phố"]
ROWS_VI = [
    ["1", "Nguyễn Văn An", "0987654321", "Hà Nội"],
    ["2", "Trần Thị Bình", "0912345678", "Đà Nẵng"],
    ["3", "Lê Hoàng Châu", "0903123456", "Huế"],
]


def csv_text(rows, delimiter=",", newline="\r\n") -> str:
    """Quoted like Excel: only cells holding the delimiter, a quote or a line break."""
    buf = io.StringIO()
    csv.writer(buf, delimiter=delimiter, lineterminator=newline).writerows(rows)
    return buf.getvalue()


def utf8_bom() -> bytes:
    """Excel "CSV UTF-8": a BOM, comma-delimited, CRLF."""
    return codecs.BOM_UTF8 + csv_text([HEADER_VI, *ROWS_VI]).encode("utf-8")


def utf16_unicode_text() -> bytes:
    """Excel "Unicode Text": UTF-16 LE with a BOM, tab-delimited."""
    return codecs.BOM_UTF16_LE + csv_text([HEADER_VI, *ROWS_VI], "\t").encode("utf-16-le")


TONES = {"\u0300", "\u0301", "\u0303", "\u0309", "\u0323"}


def windows_vietnamese(text: str) -> str:
    """What Windows writes in cp1258: â ê ô ă ơ ư đ precomposed, the five tone marks as
    separate combining characters ("ễ" = "ê" + U+0303)."""
    out = []
    for ch in text:
        parts = unicodedata.normalize("NFD", ch)
        base = unicodedata.normalize("NFC", "".join(c for c in parts if c not in TONES))
        out.append(base + "".join(c for c in parts if c in TONES))
    return "".join(out)


def cp1258_decomposed() -> bytes:
    """Plain Excel CSV on Vietnamese Windows: cp1258, tone marks as combining characters."""
    return windows_vietnamese(csv_text([HEADER_VI, *ROWS_VI])).encode("cp1258")


def semicolon() -> bytes:
    rows = [
        ["Số điện thoại", "Họ và tên", "Ghi chú"],
        ["0987654321", "Phạm Thu", "khách, VIP"],
        ["0912345678", "Vũ Nam", ""],
    ]
    return csv_text(rows, ";").encode("utf-8")


def e_notation() -> bytes:
    rows = [
        ["phone", "name"],
        ["8.49877E+10", "Excel ate my digits"],
        ["84987654321", "Fine"],
        ["8,49123E+10", "Comma locale"],
    ]
    return csv_text(rows).encode("utf-8")


def leading_zero_stripped() -> bytes:
    rows = [
        ["phone", "name"],
        ["987654321", "No zero"],
        ["912345678", "No zero either"],
        ["84903123456.0", "Numeric cell"],
    ]
    return csv_text(rows).encode("utf-8")


def legacy_numbers() -> bytes:
    rows = [
        ["phone", "name"],
        ["01689123456", "Viettel old"],
        ["0121 345 6789", "MobiFone old"],
        ["01234567890", "VinaPhone old"],
        ["0987654321", "New"],
    ]
    return csv_text(rows).encode("utf-8")


def duplicates() -> bytes:
    rows = [
        ["phone", "name", "city"],
        ["0987654321", "First", "Hà Nội"],
        ["+84 987 654 321", "Second", "Huế"],
        ["84987654321", "Third", ""],
        ["0912345678", "Other", "Huế"],
    ]
    return csv_text(rows).encode("utf-8")


def formula_cells() -> bytes:
    rows = [
        ["phone", "name", "note"],
        ["0987654321", '=HYPERLINK("http://evil.example","click")', "@SUM(1+1)"],
        ["=1+2", "Formula phone", "+cmd"],
        ["0912345678", "-Minus", "=cmd|' /C calc'!A0"],
    ]
    return csv_text(rows).encode("utf-8")


def empty() -> bytes:
    return b""


def blank_lines() -> bytes:
    return b"\r\n \r\n\r\n"


def binary_garbage() -> bytes:
    import random

    rnd = random.Random(3)
    return bytes(rnd.randrange(256) for _ in range(4096))


def no_phone_column() -> bytes:
    rows = [
        ["name", "email", "city"],
        ["Nguyễn An", "an@example.com", "Huế"],
        ["Trần Bình", "binh@example.com", "Hà Nội"],
    ]
    return csv_text(rows).encode("utf-8")


def ragged() -> bytes:
    """A short row, and a row whose unquoted comma shifts the cells (a hand-written CSV)."""
    text = "phone,name,city\r\n0987654321,Short\r\n0912345678,Nguyễn, Văn,Huế\r\n0903123456,Ok,Vinh\r\n"
    return text.encode("utf-8")


def xlsx(rows) -> bytes:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Khách hàng"
    for row in rows:
        ws.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def xlsx_normal() -> bytes:
    return xlsx(
        [
            ["SĐT", "Họ tên", "Số tiền"],
            [987654321, "Nguyễn Văn An", 150000],
            ["0912345678", "Trần Thị Bình", 2.5],
            [84903123456.0, "Lê Châu", None],
        ]
    )


def xlsx_zip_bomb(size: int = 60 * 1024 * 1024) -> bytes:
    """A valid-looking workbook whose sheet inflates to `size` bytes (ratio ~1000:1)."""
    real = zipfile.ZipFile(io.BytesIO(xlsx_normal()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for item in real.infolist():
            if item.filename == "xl/worksheets/sheet1.xml":
                continue
            zf.writestr(item, real.read(item.filename))
        head = b'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
        with zf.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as member:
            member.write(head)
            chunk = b" " * (1024 * 1024)
            for _ in range(size // len(chunk)):
                member.write(chunk)
            member.write(b"</sheetData></worksheet>")
    return out.getvalue()


FILES = {
    "utf8_bom.csv": utf8_bom,
    "excel_unicode_text.txt": utf16_unicode_text,
    "cp1258_decomposed.csv": cp1258_decomposed,
    "semicolon.csv": semicolon,
    "e_notation.csv": e_notation,
    "leading_zero_stripped.csv": leading_zero_stripped,
    "legacy_numbers.csv": legacy_numbers,
    "duplicates.csv": duplicates,
    "formula_cells.csv": formula_cells,
    "empty.csv": empty,
    "binary_garbage.csv": binary_garbage,
    "no_phone_column.csv": no_phone_column,
    "ragged.csv": ragged,
    "customers.xlsx": xlsx_normal,
    "zip_bomb.xlsx": xlsx_zip_bomb,
}


if __name__ == "__main__":
    target = Path(__file__).resolve().parent.parent / "fixtures" / "contacts"
    target.mkdir(parents=True, exist_ok=True)
    for name, build in FILES.items():
        (target / name).write_bytes(build())
        print(name, (target / name).stat().st_size)
