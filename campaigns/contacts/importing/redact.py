"""Stored import files and error reports without an erased person's rows.

An erase (campaigns.privacy.erasure) ends with the signal `erasure_finished` and the national
numbers erased; `import_files_redact` (connected in CampaignsConfig.ready) reads every stored
import file and error report and rewrites those that hold one of them: the row keeps its place
(its cells emptied, so the report's row numbers still point at the right rows), every other row
is written back as it was read. A CSV is written back as UTF-8 (with BOM, as Excel wants) and the
import records the new encoding; an XLSX becomes a one-sheet XLSX of text cells (the import only
ever read its first sheet). A row is the person's when one of its cells, read as digits, ends with
their national number (0912 345 678, +84 912-345-678, 84912345678 all do).

The same reading finds the imports that held a number for the subject-access export
(`subject_imports`, a section of campaigns.privacy.subject).
"""

from __future__ import annotations

import codecs
import csv
import io
import logging
import re

from django.core.files.base import ContentFile
from django.db.models import Q

from campaigns.contacts.importing.files import ImportFileError, RowError, inspect_file, iter_rows
from campaigns.models import ContactImport
from campaigns.privacy.erasure import national_numbers
from campaigns.privacy.subject import SubjectQuery

logger = logging.getLogger("loa.privacy")

_NON_DIGIT = re.compile(r"\D")
_DIGIT_RUNS = re.compile(r"\+?\d[\d .\-()]{6,18}\d")


def cell_holds(cell: str, national: frozenset | set) -> bool:
    if not cell or len(cell) < 8:
        return False
    digits = _NON_DIGIT.sub("", cell)
    if len(digits) < 8:
        return False
    # An 11-digit VN mobile of before 2018 (0162...) is stored in its new form: compare that too.
    return digits[-9:] in national or digits[-8:] in national or _legacy(digits) in national


def _legacy(digits: str) -> str:
    from providers.shared.phones import normalize_phone  # noqa: PLC0415 - rare path

    if not (
        (len(digits) == 11 and digits.startswith("01"))
        or (len(digits) == 12 and digits.startswith("841"))
    ):
        return ""
    result = normalize_phone(digits)
    return result.phone[2:] if result.ok else ""


def row_holds(row: list[str], national) -> bool:
    return any(cell_holds(c, national) for c in row)


def _raw_holds(field, national) -> bool:
    with field.open("rb") as fh:
        data = fh.read()
    for encoding in ("utf-8", "utf-16"):
        text = data.decode(encoding, errors="ignore")
        if any(cell_holds(m.group(), national) for m in _DIGIT_RUNS.finditer(text)):
            return True
    return False


def _read(imp_file, imp: ContactImport | None):
    """(kind, rows) of a stored import file, rows as lists of strings (unreadable ones empty)."""
    with imp_file.open("rb") as fh:
        info = inspect_file(
            fh,
            encoding=(imp.encoding or None) if imp else None,
            delimiter=(imp.delimiter or None) if imp else None,
        )
        rows = [[] if isinstance(r, RowError) else r for r in iter_rows(fh, info)]
    return info, rows


def _csv_bytes(rows, delimiter=",") -> bytes:
    text = io.StringIO(newline="")
    writer = csv.writer(text, delimiter=delimiter)
    writer.writerows(rows)
    return codecs.BOM_UTF8 + text.getvalue().encode("utf-8")


def _xlsx_bytes(rows) -> bytes:
    from openpyxl import Workbook  # noqa: PLC0415 - heavy, only when a workbook is rewritten
    from openpyxl.cell import WriteOnlyCell

    wb = Workbook(write_only=True)
    ws = wb.create_sheet()
    for row in rows:
        cells = []
        for value in row:
            cell = WriteOnlyCell(ws, value=value or None)
            if value:
                cell.data_type = "s"  # text as read, never a formula
            cells.append(cell)
        ws.append(cells)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _replace(field, content: bytes) -> None:
    """Write `content` over the stored file, under the same name."""
    storage, name = field.storage, field.name
    storage.delete(name)
    saved = storage.save(name, ContentFile(content))
    if saved != name:  # storage picked another name (a race): point the field at it
        field.name = saved


def import_redact(*, imp: ContactImport, national) -> bool:
    """Rewrite this import's file and error report without the rows holding these national
    numbers. Returns whether anything was rewritten."""
    changed = False
    if imp.file and imp.file.storage.exists(imp.file.name):
        try:
            info, rows = _read(imp.file, imp)
        except ImportFileError:
            # A file the import could not read cannot be rewritten row by row: when its bytes
            # hold the number anyway, it is deleted (the import failed on it: nothing is lost).
            if _raw_holds(imp.file, national):
                imp.file.storage.delete(imp.file.name)
                imp.file.name = ""
                changed = True
            info, rows = None, []
        hits = [i for i, row in enumerate(rows) if row_holds(row, national)]
        if hits:
            for i in hits:
                rows[i] = [""] * len(rows[i])
            if info.kind == "xlsx":
                _replace(imp.file, _xlsx_bytes(rows))
            else:
                _replace(imp.file, _csv_bytes(rows, info.delimiter or ","))
                imp.encoding, imp.delimiter = "utf-8-sig", info.delimiter or ","
            changed = True
    if imp.error_report and imp.error_report.storage.exists(imp.error_report.name):
        with imp.error_report.open("rb") as fh:
            text = fh.read().decode("utf-8-sig", errors="replace")
        report = list(csv.reader(io.StringIO(text, newline="")))
        kept = [r for r in report if not row_holds(r[1:2], national)]
        if len(kept) != len(report):
            _replace(imp.error_report, _csv_bytes(kept))
            changed = True
    if changed:
        ContactImport.objects.filter(pk=imp.pk).update(
            file=imp.file.name,
            error_report=imp.error_report.name or "",
            encoding=imp.encoding,
            delimiter=imp.delimiter,
        )
    return changed


def import_files_redact(sender=None, *, national, **kwargs) -> int:
    """Every stored import (file or error report) rewritten without these numbers; returns how
    many were rewritten. The receiver of campaigns.signals.erasure_finished."""
    national = frozenset(national)
    rewritten = 0
    imports = ContactImport.objects.filter(~Q(file="") | ~Q(error_report="")).order_by("pk")
    for imp in imports.iterator(chunk_size=200):
        try:
            rewritten += import_redact(imp=imp, national=national)
        except OSError:
            # A file that cannot be read or written is reported, never skipped in silence.
            logger.exception("erase: import %s could not be redacted", imp.pk)
            raise
    return rewritten


def subject_imports(query: SubjectQuery) -> list[dict]:
    """The imports whose stored file or error report holds the number (row numbers as Excel
    shows them), and the import that created the contact (its file may be gone)."""
    national = frozenset(national_numbers([query.phone]))
    out = []
    imports = ContactImport.objects.filter(~Q(file="") | ~Q(error_report="")).order_by("pk")
    for imp in imports.iterator(chunk_size=200):
        rows: list[int] = []
        if imp.file and imp.file.storage.exists(imp.file.name):
            try:
                _info, records = _read(imp.file, imp)
            except ImportFileError:
                records = []
            rows = [i + 1 for i, r in enumerate(records) if row_holds(r, national)]
        in_report = False
        if imp.error_report and imp.error_report.storage.exists(imp.error_report.name):
            with imp.error_report.open("rb") as fh:
                text = fh.read().decode("utf-8-sig", errors="replace")
            in_report = any(
                row_holds(r[1:2], national) for r in csv.reader(io.StringIO(text, newline=""))
            )
        if rows or in_report or (query.contact and query.contact.source_import_id == imp.pk):
            out.append(
                {
                    "import_id": imp.pk,
                    "file_name": imp.original_name,
                    "uploaded_at": imp.created_at,
                    "rows": ", ".join(map(str, rows)),
                    "in_error_report": in_report,
                    "file_kept": bool(imp.file),
                }
            )
    return out
