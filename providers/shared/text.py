"""Text helpers every room uses: Vietnamese folding (search, header names, inbound keywords) and
the spreadsheet formula guard for every file Loa writes (CSV and XLSX exports, error reports)."""

from __future__ import annotations

import unicodedata

_SPECIAL = str.maketrans({"đ": "d", "Đ": "D"})


def fold(text: str) -> str:
    """Remove Vietnamese diacritics: "Nguyễn Đức" -> "Nguyen Duc" (đ is a letter, not an accent)."""
    decomposed = unicodedata.normalize("NFD", (text or "").translate(_SPECIAL))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def search_key(*parts: str) -> str:
    return " ".join(fold(p).lower() for p in parts if p)[:255]


# Formula-injection guard (OWASP "CSV injection", CWE-1236): a cell starting with = + - @ TAB or
# CR is read as a formula by Excel, LibreOffice or Google Sheets; NUL is guarded as well.
FORMULA_PREFIXES = "=+-@\t\r\0"


def csv_safe(value: object) -> str:
    """The cell as text, prefixed with an apostrophe when it starts like a formula (None -> "")."""
    text = "" if value is None else str(value)
    return "'" + text if text and text[0] in FORMULA_PREFIXES else text


def csv_safe_sql(column: str) -> str:
    """csv_safe as a PostgreSQL expression over a text column, for reports written by COPY
    straight from the database. PostgreSQL text never holds NUL (nor may a literal), so that
    prefix is left out."""
    chars = ", ".join(
        f"'{c}'" if c.isprintable() else f"chr({ord(c)})" for c in FORMULA_PREFIXES if c != "\0"
    )
    return f"CASE WHEN left({column}, 1) IN ({chars}) THEN '''' || {column} ELSE {column} END"
