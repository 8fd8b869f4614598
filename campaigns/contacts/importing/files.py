"""Reading a contact file: decide how to read it (CSV/TSV of any encoding, or XLSX) before
reading its rows, then stream its records.

A CSV is scanned once as bytes (strict decoding, which also counts the lines for the row limit
and the progress bar), then decoded incrementally, NFC-normalized per block of whole lines and
parsed by the csv module. XLSX goes through openpyxl in read-only mode, after a zip-bomb check on
the sizes declared in the zip.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import unicodedata
import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime

from django.conf import settings
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from providers.shared.errors import Refused


class ImportFileError(Refused):
    """A file refused as a whole, with a reason the uploader can act on."""


# ---- limits ------------------------------------------------------------------------------------

PREVIEW_ROWS = 10
SNIFF_LINES = 50
READ_CHUNK = 1 << 20
MAX_COLUMNS = 500
XLSX_MAX_RATIO = 200  # uncompressed/compressed for a big zip member; real sheets stay below ~20
XLSX_RATIO_MIN_SIZE = 10 * 1024 * 1024
XLSX_MAX_MEMBERS = 10_000
XLSX_MAX_SHARED_STRINGS = 200 * 1024 * 1024


def max_bytes() -> int:
    return settings.CONTACT_UPLOAD_MAX_BYTES


def max_rows() -> int:
    return settings.CONTACT_UPLOAD_MAX_ROWS


def xlsx_max_uncompressed() -> int:
    # An XLSX is a zip: its uncompressed size, not its upload size, is what costs memory and time.
    return getattr(settings, "CONTACT_XLSX_MAX_UNCOMPRESSED_BYTES", 1024 * 1024 * 1024)


# ---- reading files -----------------------------------------------------------------------------


@dataclass
class TableInfo:
    kind: str  # "csv" or "xlsx"
    encoding: str = ""  # Python codec used for CSV/TSV
    delimiter: str = ""
    size: int = 0
    lines: int = 0  # physical lines (CSV), to detect cells spanning lines
    estimated_rows: int = 0  # rows including a header, before reading them
    warnings: list[str] = field(default_factory=list)
    skip_first_line: bool = False  # Excel's "sep=;" hint line

    @property
    def encoding_label(self) -> str:
        return (
            str(ENCODING_LABELS.get(self.encoding, self.encoding)) if self.kind == "csv" else "XLSX"
        )

    @property
    def delimiter_label(self) -> str:
        return str(DELIMITER_LABELS.get(self.delimiter, self.delimiter))


ENCODING_LABELS = {
    "utf-8": "UTF-8",
    "utf-8-sig": "UTF-8 (BOM)",
    "utf-16": "UTF-16 (BOM)",
    "utf-16-le": "UTF-16 LE",
    "utf-16-be": "UTF-16 BE",
    "cp1258": gettext_lazy("Windows-1258 (Vietnamese)"),
}
DELIMITER_LABELS = {
    ",": gettext_lazy("comma (,)"),
    ";": gettext_lazy("semicolon (;)"),
    "\t": gettext_lazy("tab"),
    "|": gettext_lazy("pipe (|)"),
}
ENCODING_CHOICES = ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "cp1258"]
DELIMITER_CHOICES = [",", ";", "\t", "|"]


def _size(fh) -> int:
    fh.seek(0, io.SEEK_END)
    size = fh.tell()
    fh.seek(0)
    return size


def inspect_file(
    fh, *, encoding: str | None = None, delimiter: str | None = None, quick: bool = False
) -> TableInfo:
    """Decide how to read a file, before reading its rows. Raises ImportFileError with the reason.

    `fh` is a binary, seekable file. The size limit is checked first; a CSV is then scanned once
    as bytes (strict decoding + line count: the row limit is checked before any row is parsed).
    `quick` (a known encoding, for a preview) skips that scan.
    """
    size = _size(fh)
    if size > max_bytes():
        raise ImportFileError(
            _(
                "The file is {size} MB; the limit is {limit} MB. Split it into smaller files."
            ).format(size=round(size / 1048576, 1), limit=max_bytes() // 1048576)
        )
    if size == 0:
        raise ImportFileError(_("The file is empty."))
    head = fh.read(8192)
    fh.seek(0)
    if head.startswith(b"PK\x03\x04"):
        info = TableInfo(kind="xlsx", size=size)
        _xlsx_inspect(fh, info)
        return info
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        raise ImportFileError(
            _(
                "This is an old Excel .xls file or a password-protected workbook. Open it in "
                "Excel and save it as .xlsx or as “CSV UTF-8”, without a password."
            )
        )
    if head.startswith((b"%PDF", b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"\x1f\x8b", b"Rar!")):
        raise ImportFileError(
            _("This is not a contact list (it is a PDF, an image or an archive).")
        )
    info = TableInfo(kind="csv", size=size)
    info.encoding = encoding or _detect_encoding(fh, head, info)
    if encoding and not quick:
        try:
            _scan(fh, info, encoding, "strict" if encoding in ENCODING_CHOICES else "replace")
        except (UnicodeDecodeError, LookupError) as exc:
            raise ImportFileError(
                _(
                    "The file cannot be read as {encoding} ({error}). Choose another encoding."
                ).format(encoding=ENCODING_LABELS.get(encoding, encoding), error=exc)
            ) from exc
    if info.encoding == "cp1258":
        info.warnings.append(
            _(
                "The file is not UTF-8: it was read as Windows-1258 (Vietnamese Excel). Check the "
                "names in the preview; if accents look wrong, save the file in Excel as "
                "“CSV UTF-8” and upload it again."
            )
        )
    elif info.encoding not in ENCODING_CHOICES:
        info.warnings.append(
            _(
                "The file's encoding is unusual; it was read as {encoding}. Check the names in "
                "the preview; if they look wrong, save the file as “CSV UTF-8”."
            ).format(encoding=info.encoding)
        )
    sample = _sample_text(fh, info)
    if _looks_binary(sample):
        raise ImportFileError(
            _(
                "The file does not look like text: it is neither a CSV/TSV file nor an Excel "
                ".xlsx workbook."
            )
        )
    first = sample.split("\n", 1)[0].strip()
    if re.fullmatch(r"sep=.", first, flags=re.IGNORECASE):
        # Excel writes "sep=;" as a first line to declare the delimiter.
        info.skip_first_line = True
        info.delimiter = delimiter or first[4]
        info.estimated_rows = max(0, info.estimated_rows - 1)
    else:
        info.delimiter = delimiter or _sniff_delimiter(sample)
    if not sample.strip():
        raise ImportFileError(_("The file is empty (it has no rows, only blank space)."))
    return info


def _detect_encoding(fh, head: bytes, info: TableInfo) -> str:
    if head.startswith(codecs.BOM_UTF8):
        _scan(fh, info, "utf-8-sig")
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        raise ImportFileError(_("UTF-32 files are not supported: save the file as “CSV UTF-8”."))
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        # Excel's "Unicode Text" is UTF-16 LE with a BOM, tab-delimited.
        _scan(fh, info, "utf-16")
        return "utf-16"
    sample = head[:4096]
    if b"\0" in sample:
        even, odd = sample[0::2].count(0), sample[1::2].count(0)
        # UTF-16 without a BOM: Vietnamese and ASCII text has a NUL in most high bytes.
        if odd > len(sample) // 4 and even < odd // 8:
            _scan(fh, info, "utf-16-le")
            return "utf-16-le"
        if even > len(sample) // 4 and odd < even // 8:
            _scan(fh, info, "utf-16-be")
            return "utf-16-be"
        raise ImportFileError(
            _(
                "The file contains binary data: it is neither a CSV/TSV file nor an Excel .xlsx "
                "workbook."
            )
        )
    try:
        _scan(fh, info, "utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        _scan(fh, info, "cp1258")
    except UnicodeDecodeError:
        pass
    else:
        return "cp1258"
    guessed = _guess_encoding(fh)
    if guessed:
        _scan(fh, info, guessed, errors="replace")
        return guessed
    raise ImportFileError(
        _(
            "The file's text encoding could not be recognised (it may not be a text file). "
            "Save it in Excel as “CSV UTF-8” or as .xlsx."
        )
    )


def _guess_encoding(fh) -> str | None:
    """Last resort (charset-normalizer) for legacy encodings other than Windows-1258."""
    from charset_normalizer import from_bytes

    fh.seek(0)
    best = from_bytes(fh.read(256 * 1024)).best()
    fh.seek(0)
    if best is None or best.encoding in (None, "ascii") or best.chaos > 0.2:
        return None
    return best.encoding


def _scan(fh, info: TableInfo, encoding: str, errors: str = "strict") -> None:
    """Decode the whole file once (raising on the first bad byte) and count its lines."""
    lines = 0
    last = ""
    for chunk in _decoded_chunks(fh, encoding, errors):
        lines += chunk.count("\n")
        last = chunk
    if last and not last.endswith("\n"):
        lines += 1
    info.lines = lines
    info.estimated_rows = lines
    if lines > max_rows() + 1:
        raise ImportFileError(
            _(
                "The file has about {n} rows; the limit is {limit}. Split it into smaller files."
            ).format(n=f"{lines:,}", limit=f"{max_rows():,}")
        )


def _decoded_chunks(fh, encoding: str, errors: str = "strict") -> Iterator[str]:
    """Text chunks with every line ending (CRLF, CR) turned into LF."""
    fh.seek(0)
    decoder = codecs.getincrementaldecoder(encoding)(errors=errors)
    pending_cr = False
    while True:
        raw = fh.read(READ_CHUNK)
        text = decoder.decode(raw, final=not raw)
        if pending_cr:
            text = "\r" + text
        pending_cr = bool(raw) and text.endswith("\r")
        if pending_cr:
            text = text[:-1]
        if "\r" in text:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        if text:
            yield text
        if not raw:
            return


def _sample_text(fh, info: TableInfo, limit: int = 64 * 1024) -> str:
    out, n = [], 0
    for chunk in _decoded_chunks(fh, info.encoding, "replace"):
        out.append(chunk)
        n += len(chunk)
        if n >= limit:
            break
    fh.seek(0)
    return _nfc("".join(out))[:limit]


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffd]")


def _looks_binary(text: str) -> bool:
    if not text:
        return False
    return len(_CONTROL.findall(text)) > max(2, len(text) // 100)


def _sniff_delimiter(sample: str) -> str:
    lines = [line for line in sample.split("\n")[:SNIFF_LINES] if line.strip()]
    if len(lines) > 1 and not sample.endswith("\n"):
        lines = lines[:-1]  # the sample may end in the middle of a line
    best, best_score = ",", (0.0, 0)
    for delim in ("\t", ";", ",", "|"):
        counts = [len(row) for row in csv.reader(lines, delimiter=delim)]
        if not counts:
            continue
        mode = max(set(counts), key=counts.count)
        if mode < 2:
            continue
        score = (round(counts.count(mode) / len(counts), 1), mode)
        if score > best_score:
            best, best_score = delim, score
    return best


def _nfc(text: str) -> str:
    # Excel on Windows writes Vietnamese decomposed (cp1258 tone marks); "Nguyễn" typed two ways
    # must compare equal.
    if text.isascii() or unicodedata.is_normalized("NFC", text):
        return text
    return unicodedata.normalize("NFC", text)


def _xlsx_inspect(fh, info: TableInfo) -> None:
    """Zip-bomb guard: the sizes declared in the zip directory are checked before openpyxl
    inflates anything (ZipExtFile never reads past a member's declared size)."""
    try:
        zf = zipfile.ZipFile(fh)
        members = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ImportFileError(
            _("The file looks like an Excel workbook but is damaged ({error}).").format(error=exc)
        ) from exc
    if len(members) > XLSX_MAX_MEMBERS:
        raise ImportFileError(_("The workbook has too many parts; it is refused for safety."))
    total = 0
    for m in members:
        total += m.file_size
        ratio = m.file_size / max(1, m.compress_size)
        if (m.file_size > XLSX_RATIO_MIN_SIZE and ratio > XLSX_MAX_RATIO) or (
            total > xlsx_max_uncompressed()
        ):
            raise ImportFileError(
                _(
                    "The workbook expands to {size} MB when opened (compression ratio {ratio}:1): "
                    "it is refused for safety (a “zip bomb”). Save the sheet as “CSV UTF-8” and "
                    "upload that instead."
                ).format(size=max(total, m.file_size) // 1048576, ratio=int(ratio))
            )
    names = {m.filename: m for m in members}
    strings = names.get("xl/sharedStrings.xml")
    if strings is not None and strings.file_size > XLSX_MAX_SHARED_STRINGS:
        # openpyxl keeps every shared string in memory, even in read-only mode.
        raise ImportFileError(
            _(
                "The workbook's text table is {size} MB: too big to open safely. Save the sheet "
                "as “CSV UTF-8” and upload that instead."
            ).format(size=strings.file_size // 1048576)
        )
    if "xl/workbook.xml" not in names:
        raise ImportFileError(_("The file is a zip archive, not an Excel .xlsx workbook."))
    fh.seek(0)
    wb = _xlsx_open(fh)
    try:
        sheets = wb.worksheets
        if not sheets:
            raise ImportFileError(_("The workbook has no sheet."))
        if len(sheets) > 1:
            info.warnings.append(
                _("The workbook has {n} sheets: only the first one, “{name}”, is read.").format(
                    n=len(sheets), name=sheets[0].title
                )
            )
        info.estimated_rows = sheets[0].max_row or 0
    finally:
        wb.close()
        fh.seek(0)
    if info.estimated_rows > max_rows() + 1:
        raise ImportFileError(
            _(
                "The sheet has about {n} rows; the limit is {limit}. Split it into smaller files."
            ).format(n=f"{info.estimated_rows:,}", limit=f"{max_rows():,}")
        )


def _xlsx_open(fh):
    import openpyxl

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # openpyxl warns about styles it does not read
            return openpyxl.load_workbook(fh, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a broken workbook
        raise ImportFileError(
            _("The Excel workbook could not be read ({error}).").format(error=exc)
        ) from exc


def _xlsx_cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return _nfc(value)
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        # A phone typed as a number: 84987654321.0 -> "84987654321" (every digit below 1e15).
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if isinstance(value, datetime):
        return (
            value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat()
        )
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


class RowError(str):
    """Yielded instead of a row when the parser itself refuses a record."""


def iter_rows(fh, info: TableInfo) -> Iterator[list[str] | RowError]:
    """Every record of the file (the header included), as lists of NFC-normalized strings."""
    if info.kind == "xlsx":
        yield from _iter_xlsx(fh)
        return
    reader = csv.reader(_csv_lines(fh, info), delimiter=info.delimiter or ",")
    while True:
        try:
            yield next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            # The reader resynchronises at the next line; the record is reported, not fatal.
            yield RowError(
                _(
                    'This row could not be read ({error}); a quote mark (") is probably unbalanced.'
                ).format(error=exc)
            )


def _csv_lines(fh, info: TableInfo) -> Iterator[str]:
    errors = "strict" if info.encoding in ENCODING_CHOICES else "replace"
    carry = ""
    first = info.skip_first_line
    for chunk in _decoded_chunks(fh, info.encoding, errors):
        block = carry + chunk
        cut = block.rfind("\n") + 1
        if not cut:
            if len(block) > 16 * READ_CHUNK:
                # 16 MB without a line break is no contact list: hand it to the parser, which
                # reports it as a refused row, rather than hold ever more of it in memory.
                yield _nfc(block)
                block = ""
            carry = block
            continue
        carry = block[cut:]
        # NFC per block of whole lines: a combining mark never crosses a line break.
        lines = io.StringIO(_nfc(block[:cut]), newline="\n")
        if first:
            next(lines, None)
            first = False
        yield from lines
    if carry:
        if first:
            return
        yield _nfc(carry)


def _iter_xlsx(fh) -> Iterator[list[str]]:
    fh.seek(0)
    wb = _xlsx_open(fh)
    try:
        ws = wb.worksheets[0]
        for values in ws.iter_rows(values_only=True):
            yield [_xlsx_cell(v) for v in values]
    finally:
        wb.close()


def read_preview(fh, info: TableInfo, *, limit: int = PREVIEW_ROWS) -> tuple[list[str], list]:
    """The first record and the next `limit` non-blank records."""
    first: list[str] | None = None
    rows: list[list[str]] = []
    for record in iter_rows(fh, info):
        if isinstance(record, RowError) or not any(c.strip() for c in record):
            continue
        if first is None:
            first = record
            continue
        rows.append(record)
        if len(rows) >= limit:
            break
    fh.seek(0)
    if first is None:
        raise ImportFileError(_("The file is empty (it has no rows)."))
    widest = max(len(r) for r in [first, *rows])
    if widest > MAX_COLUMNS:
        raise ImportFileError(
            _(
                "The file has {n} columns; the limit is {limit}. Is it really a contact list?"
            ).format(n=widest, limit=MAX_COLUMNS)
        )
    return first, rows
