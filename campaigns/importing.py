"""Contact import: read a CSV/TSV/XLSX file of any encoding, map its columns, normalize phones,
deduplicate, upsert contacts, add them to a list, and explain every row it refuses.

Counts always add up: total = imported + updated + duplicates + invalid, and every refused row
(invalid or duplicate) is in the error report with its row number, raw value and reason.

Reading is streamed: bytes are decoded incrementally (the encoding was decided by one strict
pass over the bytes, which also counts the lines for the row limit and the progress bar),
NFC-normalized per block of whole lines and parsed by the csv module; XLSX goes through openpyxl
in read-only mode, after a zip-bomb check on the sizes declared in the zip.

Saving, PostgreSQL: the rows stream through COPY into a staging table while the file is parsed
(the server ingests on one core while Python parses on the other). Then set-based SQL, one
statement per part: DISTINCT ON (phone) keeps the first row of each phone, the contacts that
exist are read, the new ones are INSERTed, the existing ones UPDATEd by merge policy, and the list
memberships inserted. A big file is saved in SAVE_PARTS parts at once (phones split by hash, so
duplicates stay in one part), each in its own transaction. Imports take an advisory lock per
part, so the plain INSERT is safe from other imports; if some other writer inserts one of the
phones meanwhile, the part is saved again with INSERT ... ON CONFLICT. Deduplication happens in
SQL: the worker's memory does not grow with the file. Nothing touches the contacts table until
the whole file has been read: a file refused half-way leaves the database as it was.

Saving, other databases (SQLite): batches of 2,000 rows with parameterized INSERTs, committed
batch by batch. Deduplication within the file keeps a dict {phone: first row} in memory: about
100 MB per million distinct phones, fine up to a few million rows; beyond that, use PostgreSQL.

Opt-outs live in their own table: no import reads or writes them, so none can clear one.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import logging
import re
import tempfile
import time
import unicodedata
import warnings
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.conf import settings
from django.core.files import File
from django.db import IntegrityError, connection, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from campaigns.models import Contact, ContactImport, ContactList, ContactListMembership
from campaigns.text import fold
from providers.phones import fast_mobile, normalize_phone

logger = logging.getLogger("loa.imports")


class ImportFileError(Exception):
    """A file refused as a whole, with a reason the uploader can act on."""


# ---- limits ------------------------------------------------------------------------------------

PREVIEW_ROWS = 10
SNIFF_LINES = 50
READ_CHUNK = 1 << 20
MAX_NAME = 200  # Contact.name max_length
MAX_ATTRIBUTE = 1000
MAX_COLUMNS = 500
MAX_KEY = 64
PROGRESS_EVERY = 25_000  # rows between progress updates (and COPY chunks)
BATCH = 2000
XLSX_MAX_RATIO = 200  # uncompressed/compressed for a big zip member; real sheets stay below ~20
XLSX_RATIO_MIN_SIZE = 10 * 1024 * 1024
XLSX_MAX_MEMBERS = 10_000
XLSX_MAX_SHARED_STRINGS = 200 * 1024 * 1024
IMPORT_LOCK = 4_154_003  # pg_advisory_xact_lock keys IMPORT_LOCK + bucket
SAVE_PARTS = 2  # PostgreSQL connections saving a big file at once (a power of 2)
PARALLEL_MIN_ROWS = 50_000
ANALYZE_AFTER = 20_000  # new contacts after which the import refreshes the planner statistics


def max_bytes() -> int:
    return settings.CONTACT_UPLOAD_MAX_BYTES


def max_rows() -> int:
    return settings.CONTACT_UPLOAD_MAX_ROWS


def xlsx_max_uncompressed() -> int:
    # An XLSX is a zip: its uncompressed size, not its upload size, is what costs memory and time.
    return getattr(settings, "CONTACT_XLSX_MAX_UNCOMPRESSED_BYTES", 1024 * 1024 * 1024)


# ---- header names ------------------------------------------------------------------------------

# Compared after slugify(): diacritics folded, lower case, runs of other characters -> "_".
PHONE_HEADERS = {
    "phone",
    "phones",
    "phone_number",
    "phonenumber",
    "mobile",
    "mobile_phone",
    "mobile_number",
    "cell",
    "cellphone",
    "tel",
    "telephone",
    "msisdn",
    "zalo",
    "so_zalo",
    "sdt",
    "so_dt",
    "dt",
    "dtdd",
    "so_dtdd",
    "so_dien_thoai",
    "dien_thoai",
    "dien_thoai_di_dong",
    "di_dong",
    "so_di_dong",
    "so_phone",
    "sdt_khach_hang",
    "sdt_kh",
}
NAME_HEADERS = {
    "name",
    "full_name",
    "fullname",
    "customer",
    "customer_name",
    "contact_name",
    "ho_ten",
    "ho_va_ten",
    "hoten",
    "ten",
    "ten_khach_hang",
    "ten_kh",
    "khach_hang",
    "ho_ten_khach_hang",
}
# Row-number columns Excel users add ("STT" = số thứ tự): not worth keeping as attributes.
IGNORED_HEADERS = {"stt", "tt", "no", "so_thu_tu", "index", "row", "id_row"}

_SLUG = re.compile(r"[^a-z0-9]+")


def slugify_header(text: str) -> str:
    """ "Số điện thoại" -> "so_dien_thoai", "SĐT" -> "sdt" (the form attribute keys take)."""
    return _SLUG.sub("_", fold(text or "").lower()).strip("_")[:MAX_KEY]


def csv_safe(value: object) -> str:
    """Formula-injection guard for files opened in a spreadsheet (OWASP, CWE-1236):
    a cell starting with = + - @ TAB, CR or NUL is prefixed with an apostrophe."""
    text = "" if value is None else str(value)
    return "'" + text if text and text[0] in "=+-@\t\r\0" else text


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


# ---- mapping -------------------------------------------------------------------------------------


@dataclass
class Preview:
    info: TableInfo
    header: list[str]  # column titles (the file's header, or "Column 1"...)
    rows: list[list[str]]  # the first data rows
    mapping: dict  # a guess (or the import's saved mapping)


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


def guess_mapping(first: list[str], rows: list[list[str]]) -> dict:
    """Which column is the phone, the name, and which become attributes.

    The first record is a header unless one of its cells is already a valid phone.
    """
    ncols = max([len(first)] + [len(r) for r in rows])
    has_header = not any(normalize_phone(c).ok for c in first if c.strip())
    data = rows if has_header else [first, *rows]
    titles = [first[i] if has_header and i < len(first) else "" for i in range(ncols)]
    slugs = [slugify_header(t) for t in titles]

    phone = next((i for i, s in enumerate(slugs) if s in PHONE_HEADERS), None)
    if phone is None and data:
        # No header we know: the column whose sample cells are mostly valid phones.
        scores = []
        for i in range(ncols):
            cells = [r[i] for r in data if i < len(r) and r[i].strip()]
            ok = sum(1 for c in cells if normalize_phone(c).ok)
            scores.append((ok, i))
        ok, i = max(scores)
        if ok and ok * 2 >= len(data):
            phone = i
    name = next((i for i, s in enumerate(slugs) if s in NAME_HEADERS and i != phone), None)
    attributes: dict[str, str] = {}
    used = set()
    for i in range(ncols):
        if i in (phone, name) or slugs[i] in IGNORED_HEADERS:
            continue
        if has_header and not titles[i].strip():
            continue  # an unnamed column with a header row: usually Excel's stray empty column
        key = unique_key(slugs[i] or f"column_{i + 1}", used)
        attributes[str(i)] = key
    return {"has_header": has_header, "phone": phone, "name": name, "attributes": attributes}


def unique_key(key: str, used: set[str]) -> str:
    base, n = key, 2
    while key in used or key in ("phone", "name"):
        key = f"{base}_{n}"
        n += 1
    used.add(key)
    return key


def column_titles(first: list[str], rows: list[list[str]], has_header: bool) -> list[str]:
    ncols = max([len(first)] + [len(r) for r in rows])
    return [
        (first[i] if has_header and i < len(first) and first[i].strip() else "")
        or _("Column {n}").format(n=i + 1)
        for i in range(ncols)
    ]


def mapping_errors(mapping: dict, ncols: int) -> list[str]:
    errors = []
    phone = mapping.get("phone")
    if phone is None:
        errors.append(
            _(
                "No phone column: choose which column holds the phone numbers (a header such as "
                "“phone”, “SĐT” or “Số điện thoại” is recognised automatically)."
            )
        )
    elif not (isinstance(phone, int) and 0 <= phone < ncols):
        errors.append(_("The phone column does not exist in the file."))
    name = mapping.get("name")
    if name is not None and not (isinstance(name, int) and 0 <= name < ncols):
        errors.append(_("The name column does not exist in the file."))
    for idx, key in (mapping.get("attributes") or {}).items():
        if not str(idx).isdigit() or int(idx) >= ncols or not key:
            errors.append(_("An attribute column does not exist in the file."))
            break
    return errors


# ---- creating an import --------------------------------------------------------------------------


def contact_import_prepare(
    *,
    file,
    filename: str,
    contact_list: ContactList,
    merge_policy: str = ContactImport.MergePolicy.FILL,
    user=None,
    encoding: str | None = None,
    delimiter: str | None = None,
) -> ContactImport:
    """Inspect an uploaded file and record it as an import waiting for its column mapping.

    Raises ImportFileError (nothing saved) when the file cannot be read at all.
    """
    file.seek(0)
    info = inspect_file(file, encoding=encoding, delimiter=delimiter)
    first, rows = read_preview(file, info)
    mapping = guess_mapping(first, rows)
    imp = ContactImport(
        original_name=(filename or "upload")[:255],
        contact_list=contact_list,
        merge_policy=merge_policy,
        encoding=info.encoding,
        delimiter=info.delimiter,
        mapping=mapping,
        total_rows=max(0, info.estimated_rows - (1 if mapping["has_header"] else 0)),
        warnings=info.warnings,
        created_by=user if getattr(user, "pk", None) else None,
        status=ContactImport.Status.UPLOADED,
        language=translation.get_language() or "",
    )
    file.seek(0)
    imp.file.save(_storage_name(filename), File(file, name=filename), save=False)
    imp.save()
    return imp


def _storage_name(filename: str) -> str:
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", fold(filename or "upload"))[-100:] or "upload"
    return base


def contact_import_preview(*, imp: ContactImport) -> Preview:
    with imp.file.open("rb") as fh:
        info = inspect_file(
            fh, encoding=imp.encoding or None, delimiter=imp.delimiter or None, quick=True
        )
        try:
            first, rows = read_preview(fh, info)
        except UnicodeDecodeError as exc:  # an encoding chosen by hand that does not fit
            raise ImportFileError(
                _(
                    "The file cannot be read as {encoding} ({error}). Choose another encoding."
                ).format(encoding=info.encoding_label, error=exc)
            ) from exc
    mapping = imp.mapping or guess_mapping(first, rows)
    has_header = mapping.get("has_header", True)
    header = column_titles(first, rows, has_header)
    shown = rows if has_header else [first, *rows][:PREVIEW_ROWS]
    return Preview(info=info, header=header, rows=shown, mapping=mapping)


def contact_import_set_mapping(*, imp: ContactImport, mapping: dict, ncols: int) -> None:
    """Save the mapping chosen in the admin (raises ImportFileError listing what is wrong)."""
    errors = mapping_errors(mapping, ncols)
    if errors:
        raise ImportFileError(" ".join(errors))
    ContactImport.objects.filter(pk=imp.pk).update(mapping=mapping)
    imp.mapping = mapping


def contact_import_retry(*, import_id: int) -> bool:
    """A failed import back to its mapping step, to run again (saving is an upsert, so rows a
    failed run already saved are merged, not duplicated)."""
    return bool(
        ContactImport.objects.filter(pk=import_id, status=ContactImport.Status.FAILED).update(
            status=ContactImport.Status.UPLOADED,
            phase="",
            error_message="",
            processed_rows=0,
            started_at=None,
            finished_at=None,
        )
    )


def task_timeout(rows: int) -> int:
    """Seconds the worker may spend on an import of `rows` rows (5,000 rows/s at worst)."""
    return max(settings.Q_CLUSTER.get("timeout", 300), 120 + rows // 5000)


def contact_import_start(*, import_id: int) -> bool:
    """Queue the import in the background (django-q2). False if it was already started."""
    from django_q.tasks import async_task

    if not ContactImport.objects.filter(pk=import_id, status=ContactImport.Status.UPLOADED).update(
        status=ContactImport.Status.QUEUED
    ):
        return False
    imp = ContactImport.objects.get(pk=import_id)
    # Big files need longer than the cluster's default timeout; the run itself refuses to
    # start twice (compare-and-set on the status), so a redelivered task changes nothing.
    timeout = task_timeout(imp.total_rows)
    transaction.on_commit(
        lambda: async_task(
            "campaigns.tasks.contact_import_task",
            import_id,
            group="imports",
            timeout=timeout,
        )
    )
    return True


# ---- running an import -------------------------------------------------------------------------


@dataclass
class ImportCounts:
    total: int = 0
    imported: int = 0
    updated: int = 0
    duplicates: int = 0
    invalid: int = 0
    legacy: int = 0

    def adds_up(self) -> bool:
        return self.total == self.imported + self.updated + self.duplicates + self.invalid


class _Report:
    """The refused rows as CSV, on disk while the import runs (memory stays flat)."""

    def __init__(self):
        self.file = tempfile.TemporaryFile()  # noqa: SIM115 - lives until close()
        self.file.write(codecs.BOM_UTF8)  # Excel opens UTF-8 CSV correctly only with a BOM
        self.text = io.TextIOWrapper(self.file, encoding="utf-8", newline="", write_through=True)
        self.writer = csv.writer(self.text)
        self.writer.writerow([_("row"), _("value"), _("reason")])
        self.rows = 0

    def add(self, rowno: int, value: str, reason: str) -> None:
        self.writer.writerow([rowno, csv_safe(value), csv_safe(reason)])
        self.rows += 1

    def close(self) -> None:
        self.text.detach()
        self.file.close()


def contact_import_run(*, import_id: int) -> ContactImport:
    """The background task's entry: read, save, count. Runs once per import: a redelivered task
    (django-q2 re-presents unfinished tasks) finds the import already taken and returns."""
    now = timezone.now()
    claimed = ContactImport.objects.filter(
        pk=import_id, status__in=[ContactImport.Status.UPLOADED, ContactImport.Status.QUEUED]
    ).update(status=ContactImport.Status.RUNNING, started_at=now, phase="reading")
    if not claimed:
        # A worker killed mid-run leaves the import "running"; take it over only once its task
        # timeout has certainly expired (django-q2 has killed it by then).
        total = ContactImport.objects.filter(pk=import_id).values_list("total_rows", flat=True)
        limit = task_timeout(total.first() or 0) + settings.Q_CLUSTER.get("retry", 360)
        claimed = ContactImport.objects.filter(
            pk=import_id,
            status=ContactImport.Status.RUNNING,
            started_at__lt=now - timedelta(seconds=limit),
        ).update(started_at=now, phase="reading")
    imp = ContactImport.objects.select_related("contact_list").get(pk=import_id)
    if not claimed:
        return imp
    with translation.override(imp.language or settings.LANGUAGE_CODE):
        try:
            contact_import_execute(imp=imp)
        except ImportFileError as exc:
            _fail(imp, str(exc))
        except Exception as exc:
            logger.exception("contact import %s failed", import_id)
            _fail(imp, _("The import stopped on an unexpected error: {error}").format(error=exc))
            raise
    imp.refresh_from_db()
    return imp


def _fail(imp: ContactImport, message: str) -> None:
    ContactImport.objects.filter(pk=imp.pk).update(
        status=ContactImport.Status.FAILED,
        phase="",
        error_message=message[:2000],
        finished_at=timezone.now(),
    )


def contact_import_execute(*, imp: ContactImport) -> ImportCounts:
    with imp.file.open("rb") as fh:
        info = inspect_file(fh, encoding=imp.encoding or None, delimiter=imp.delimiter or None)
        mapping = imp.mapping
        if not mapping or mapping.get("phone") is None:
            first, rows = read_preview(fh, info)
            guessed = guess_mapping(first, rows)
            mapping = {**guessed, **{k: v for k, v in (mapping or {}).items() if v is not None}}
            errors = mapping_errors(mapping, len(column_titles(first, rows, True)))
            if errors:
                header = ", ".join(f"“{c}”" for c in first[:12] if c.strip())
                raise ImportFileError(
                    " ".join(errors) + " " + _("The first row is: {header}.").format(header=header)
                )
        has_header = mapping.get("has_header", True)
        estimated = max(0, info.estimated_rows - (1 if has_header else 0))
        ContactImport.objects.filter(pk=imp.pk).update(
            encoding=info.encoding,
            delimiter=info.delimiter,
            mapping=mapping,
            total_rows=estimated,
            processed_rows=0,
        )
        report = _Report()
        try:
            keys = list((mapping.get("attributes") or {}).values())
            sink = (
                _PostgresSink(imp, report, keys, rows=estimated)
                if connection.vendor == "postgresql"
                else _BatchSink(imp, report, keys)
            )
            try:
                started = time.monotonic()
                counts, row_warnings, records = _read_into(fh, info, mapping, sink, imp, estimated)
                logger.info(
                    "import %s read %s rows in %.1fs",
                    imp.pk,
                    counts.total,
                    time.monotonic() - started,
                )
                sink.flush()  # end any open COPY: the connection is needed for the update
                ContactImport.objects.filter(pk=imp.pk).update(
                    phase="saving", processed_rows=counts.total, total_rows=counts.total
                )
                sink.finish(counts)
            finally:
                sink.close()
            if not counts.adds_up():  # an invariant, not a user error: fail loudly
                raise RuntimeError(f"counts do not add up: {counts}")
            report_name = ""
            if report.rows:
                report.file.seek(0)
                imp.error_report.save(
                    f"errors-{imp.pk}.csv",
                    File(report.file, name=f"errors-{imp.pk}.csv"),
                    save=False,
                )
                report_name = imp.error_report.name
        finally:
            report.close()
    all_warnings = [*info.warnings, *row_warnings]
    if (
        info.kind == "csv"
        and info.lines
        and records + (1 if info.skip_first_line else 0) < info.lines
    ):
        all_warnings.append(
            _(
                "{lines} lines were read as {records} rows: some cells span several lines. If "
                'that is not intended, a quote mark (") is probably unbalanced; check the rows '
                "in the error report."
            ).format(lines=f"{info.lines:,}", records=f"{records:,}")
        )
    ContactImport.objects.filter(pk=imp.pk).update(
        status=ContactImport.Status.COMPLETED,
        phase="",
        total_rows=counts.total,
        processed_rows=counts.total,
        imported_count=counts.imported,
        updated_count=counts.updated,
        duplicate_count=counts.duplicates,
        invalid_count=counts.invalid,
        legacy_rewritten_count=counts.legacy,
        warnings=all_warnings,
        error_report=report_name,
        finished_at=timezone.now(),
    )
    if connection.vendor == "postgresql" and counts.imported >= ANALYZE_AFTER:
        # The import is done for the user; now refresh the planner's statistics, or searches
        # on a table that just grew by a million rows get their plans from its old size
        # (autovacuum would analyze it too, but only within minutes).
        started = time.monotonic()
        try:
            with connection.cursor() as cur:
                cur.execute("ANALYZE campaigns_contact, campaigns_contactlistmembership")
        except Exception:  # statistics are an optimisation: never fail an import for them
            logger.warning("import %s: ANALYZE failed", imp.pk, exc_info=True)
        logger.info("import %s: tables analyzed in %.1fs", imp.pk, time.monotonic() - started)
    return counts


_FOLD_CACHE: dict[str, str] = {}
_NAME_CACHE: dict[str, str] = {}


def contact_search_text(name: str) -> str:
    """The indexed Contact.search_text: the name folded (no diacritics) and lower-cased.

    The phone is left out on purpose: phone searches use the phone column's own index, and its
    digits would add ~40% to the trigram index (and its cost on every import). Names repeat
    ("Nguyễn Thị Lan") and their words repeat even more, so each is folded once; folding is per
    character, so word by word equals campaigns.text.search_key(name) (a test checks it).
    """
    if not name:
        return ""
    folded = _NAME_CACHE.get(name)
    if folded is None:
        if name.isascii():
            folded = name.lower()
        else:
            parts = []
            for word in name.split(" "):
                f = _FOLD_CACHE.get(word)
                if f is None:
                    f = fold(word).lower()
                    if len(_FOLD_CACHE) < 100_000:
                        _FOLD_CACHE[word] = f
                parts.append(f)
            folded = " ".join(parts)
        folded = folded[:255]
        if len(_NAME_CACHE) < 200_000:
            _NAME_CACHE[name] = folded
    return folded


def _read_into(fh, info, mapping, sink, imp, estimated) -> tuple[ImportCounts, list[str], int]:
    """The hot loop: one pass over the records, each row to the sink or to the report.

    Written for speed (locals, no per-row dict): at a million rows every microsecond is a second.
    """
    counts = ImportCounts()
    has_header = mapping.get("has_header", True)
    pi = int(mapping["phone"])
    ni = mapping.get("name")
    ni = int(ni) if ni is not None else None
    attr_cols = [(int(i), key) for i, key in (mapping.get("attributes") or {}).items()]
    attr_idx = [i for i, _key in attr_cols]
    widest = 1 + max([pi, ni or 0, *attr_idx])
    limit = max_rows()
    ragged_more, ragged_less, blank = [], [], 0
    ncols = None
    records = total = invalid = legacy = 0
    rowno = 1 if info.skip_first_line else 0  # the row number Excel shows
    next_progress = PROGRESS_EVERY
    add, add_invalid = sink.add, sink.add_invalid
    for record in iter_rows(fh, info):
        rowno += 1
        records += 1
        if type(record) is not list:  # a RowError from the parser
            if ncols is None:
                raise ImportFileError(str(record))
            total += 1
            invalid += 1
            add_invalid(rowno, "", str(record))
            continue
        if ncols is None:
            if not any(c.strip() for c in record):
                blank += 1
                continue
            ncols = max(len(record), widest)
            if has_header:
                continue
        n = len(record)
        if n != ncols:
            if not any(c.strip() for c in record):
                blank += 1
                continue
            if n < ncols:
                if len(ragged_less) < 1000:
                    ragged_less.append(rowno)
                record = record + [""] * (ncols - n)
            elif any(c.strip() for c in record[ncols:]) and len(ragged_more) < 1000:
                ragged_more.append(rowno)
        total += 1
        if total > limit:
            raise ImportFileError(
                _("The file has more than {limit} rows. Split it into smaller files.").format(
                    limit=f"{limit:,}"
                )
            )
        raw = record[pi]
        phone = fast_mobile(raw)
        if phone is None:
            result = normalize_phone(raw)
            if result.phone is None:
                if not raw.strip() and not any(c.strip() for c in record):
                    total -= 1
                    blank += 1
                    continue
                invalid += 1
                add_invalid(rowno, raw, result.error)
                continue
            phone = result.phone
            legacy += result.legacy_rewritten
        name = " ".join(record[ni].split()) if ni is not None else ""
        values = [record[i].strip() for i in attr_idx]
        if len(name) > MAX_NAME or (values and max(map(len, values)) > MAX_ATTRIBUTE):
            invalid += 1
            add_invalid(rowno, raw, _oversized(name, values, attr_cols))
            continue
        add(rowno, phone, raw, name, values)
        if total >= next_progress:
            next_progress += PROGRESS_EVERY
            logger.debug("import %s: %s rows, peak RSS %s kB", imp.pk, total, _peak_rss_kb())
            sink.flush()
            ContactImport.objects.filter(pk=imp.pk).update(
                processed_rows=total, total_rows=max(estimated, total)
            )
    counts.total, counts.invalid, counts.legacy = total, invalid, legacy
    if ncols is None:
        raise ImportFileError(_("The file is empty (it has no rows)."))
    found: list[str] = []
    if ragged_more:
        found.append(
            _(
                "{n} rows have more cells than the header (rows {rows}): the extra cells were "
                "not imported. A value containing the delimiter without quotes shifts the "
                "columns; check those rows."
            ).format(n=len(ragged_more), rows=_rows_text(ragged_more))
        )
    if ragged_less:
        found.append(
            _(
                "{n} rows have fewer cells than the header (rows {rows}): the missing cells were read as empty."
            ).format(n=len(ragged_less), rows=_rows_text(ragged_less))
        )
    if blank:
        found.append(_("{n} blank rows were skipped.").format(n=f"{blank:,}"))
    if counts.legacy:
        found.append(
            _(
                "{n} phones had an old 11-digit number (before the 2018 renumbering) and were "
                "rewritten to the current 10-digit number."
            ).format(n=f"{counts.legacy:,}")
        )
    return counts, found, records


def _peak_rss_kb() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _oversized(name: str, values: list[str], attr_cols: list[tuple[int, str]]) -> str:
    if len(name) > MAX_NAME:
        return _("The name is longer than {n} characters.").format(n=MAX_NAME)
    for value, (_idx, key) in zip(values, attr_cols, strict=True):
        if len(value) > MAX_ATTRIBUTE:
            return _("The “{column}” cell is longer than {n} characters.").format(
                column=key, n=MAX_ATTRIBUTE
            )
    return ""


def _rows_text(rows: list[int]) -> str:
    shown = ", ".join(str(r) for r in rows[:10])
    return shown + (", …" if len(rows) > 10 else "")


def _dup_reason() -> str:
    return _("Duplicate: the same phone as row {row}; this row was not used.")


# ---- sinks: where valid rows go --------------------------------------------------------------------


def merge_values(
    *, policy: str, old_name: str, old_attrs, name: str, attrs: dict
) -> tuple[str, dict]:
    """The merge policy for a contact that already exists (the SQL on PostgreSQL does the same).

    keep: the existing contact is not changed. overwrite: the file's non-blank values replace
    the existing ones (a blank cell never erases). fill: only missing or blank values are filled.
    Opt-outs live in their own table: no import touches them.
    """
    old = old_attrs if isinstance(old_attrs, dict) else {}
    if policy == ContactImport.MergePolicy.KEEP:
        return old_name, old_attrs
    if policy == ContactImport.MergePolicy.OVERWRITE:
        return (name or old_name), {**old, **attrs}
    merged = dict(old)
    for k, v in attrs.items():
        if merged.get(k) in (None, ""):
            merged[k] = v
    return (old_name or name), merged


class _BatchSink:
    """SQLite (and any non-PostgreSQL database): batches through the ORM, committed as they go."""

    def __init__(self, imp: ContactImport, report: _Report, keys: list[str]):
        self.imp = imp
        self.report = report
        self.keys = keys
        self.first_row: dict[int, int] = {}  # phone -> first row: memory grows with the file
        self.buf: list[tuple[int, str, str, dict]] = []
        self.imported = self.updated = self.duplicates = 0
        self.source = f"import:{imp.original_name}"[:255]
        self.dup_reason = _dup_reason()

    def add_invalid(self, rowno: int, raw: str, reason: str) -> None:
        self.report.add(rowno, raw, reason)

    def add(self, rowno: int, phone: str, raw: str, name: str, values: list[str]) -> None:
        key = int(phone)
        first = self.first_row.get(key)
        if first is not None:
            self.duplicates += 1
            self.report.add(rowno, raw, self.dup_reason.format(row=first))
            return
        self.first_row[key] = rowno
        attrs = {k: v for k, v in zip(self.keys, values, strict=True) if v}
        self.buf.append((rowno, phone, name, attrs))
        if len(self.buf) >= BATCH:
            self.flush()

    def flush(self) -> None:
        if not self.buf:
            return
        rows, self.buf = self.buf, []
        policy = self.imp.merge_policy
        with transaction.atomic():
            existing = {
                c.phone: c
                for c in Contact.objects.filter(phone__in=[r[1] for r in rows]).only(
                    "id", "phone", "name", "attributes", "search_text"
                )
            }
            # New contacts and memberships as plain parameterized INSERTs: building a model
            # instance per row costs ~10x the insert itself. Values are stored exactly as the
            # ORM stores them (JSON text, the backend's datetime format).
            now = timezone.now()
            stamp = connection.ops.adapt_datetimefield_value(now)
            new, changed = [], []
            for rowno, phone, name, attrs in rows:
                c = existing.get(phone)
                if c is None:
                    new.append(
                        (
                            phone,
                            name,
                            json.dumps(attrs),
                            contact_search_text(name),
                            self.source,
                            self.imp.pk,
                            rowno,
                            stamp,
                            stamp,
                        )
                    )
                    continue
                self.updated += 1
                new_name, new_attrs = merge_values(
                    policy=policy, old_name=c.name, old_attrs=c.attributes, name=name, attrs=attrs
                )
                if new_name != c.name or new_attrs != c.attributes:
                    c.name, c.attributes = new_name, new_attrs
                    c.search_text = contact_search_text(new_name)
                    c.updated_at = now
                    changed.append(c)
            with connection.cursor() as cur:
                cur.executemany(
                    "INSERT INTO campaigns_contact (phone, name, attributes, search_text, source,"
                    " source_import_id, source_row, created_at, updated_at)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    new,
                )
                self.imported += len(new)
                if changed:
                    Contact.objects.bulk_update(
                        changed, ["name", "attributes", "search_text", "updated_at"], batch_size=500
                    )
                ids = Contact.objects.filter(phone__in=[r[1] for r in rows]).values_list(
                    "id", flat=True
                )
                # The list's count is recomputed once at the end (counting here per batch
                # would make the whole import quadratic).
                cur.executemany(
                    "INSERT INTO campaigns_contactlistmembership (contact_list_id, contact_id,"
                    " added_at) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                    [(self.imp.contact_list_id, i, stamp) for i in ids],
                )

    def finish(self, counts: ImportCounts) -> None:
        self.flush()
        with transaction.atomic():
            _recount_list(self.imp.contact_list_id)
        counts.imported, counts.updated, counts.duplicates = (
            self.imported,
            self.updated,
            self.duplicates,
        )

    def close(self) -> None:
        self.first_row.clear()


def _recount_list(list_id: int) -> None:
    ContactList.objects.filter(pk=list_id).update(
        contact_count=ContactListMembership.objects.filter(contact_list_id=list_id).count()
    )


class _PostgresSink:
    """COPY into a temporary staging table in chunks, then set-based SQL (see the module doc)."""

    def __init__(self, imp: ContactImport, report: _Report, keys: list[str], *, rows: int = 0):
        self.imp = imp
        self.report = report
        self.keys = keys
        self.table = f"loa_import_stage_{imp.pk}"
        # A big file is saved by SAVE_PARTS connections at once, each taking the phones of one
        # hash bucket (the saving is CPU-bound inside PostgreSQL: one backend uses one core).
        # Their sessions must see the staged rows, so the table is UNLOGGED (shared, never
        # WAL-logged) rather than TEMPORARY, and the rows must be committed: not inside a
        # transaction (tests run inside one, and take the single-connection path).
        self.parts = (
            SAVE_PARTS if rows >= PARALLEL_MIN_ROWS and not connection.in_atomic_block else 1
        )
        self._copy = self._copy_cm = self._cursor = None
        self.staged_valid = 0
        self.blank_values = [""] * len(keys)
        # One text column per attribute: the JSON is built by PostgreSQL, in C, not per row here.
        self.attr_columns = [f"a{i}" for i in range(len(keys))]
        self.columns = ", ".join(
            ["row_no", "phone", "raw", "name", "search", "reason", *self.attr_columns]
        )
        self.dups = f"{self.table}_dups"  # rows repeating an earlier row's phone
        kind = "UNLOGGED" if self.parts > 1 else "TEMPORARY"  # neither is WAL-logged
        with connection.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {self.table}, {self.dups}")
            cur.execute(
                f"CREATE {kind} TABLE {self.table} ("
                " row_no integer NOT NULL, phone text, raw text, name text, search text,"
                " reason text" + "".join(f", {c} text" for c in self.attr_columns) + ")"
            )
            cur.execute(
                f"CREATE {kind} TABLE {self.dups} (row_no integer, raw text, first_row integer)"
            )

    def _writer(self):
        """The open COPY (rows stream to PostgreSQL while the file is still being parsed, so
        the server works on one core while Python parses on the other)."""
        if self._copy is None:
            self._cursor = connection.cursor()
            # the driver's own cursor: Django's wrapper does not expose COPY fully
            self._copy_cm = self._cursor.cursor.copy(
                f"COPY {self.table} ({self.columns}) FROM STDIN"
            )
            self._copy = self._copy_cm.__enter__()
        return self._copy.write_row

    def add_invalid(self, rowno: int, raw: str, reason: str) -> None:
        self._writer()((rowno, None, raw, None, None, reason, *self.blank_values))

    def add(self, rowno: int, phone: str, raw: str, name: str, values: list[str]) -> None:
        write = self._copy.write_row if self._copy is not None else self._writer()
        write((rowno, phone, raw, name, contact_search_text(name), None, *values))
        self.staged_valid += 1

    def _attrs_sql(self) -> str:
        """jsonb of the non-blank attribute cells, keys passed as parameters."""
        if not self.keys:
            return "'{}'::jsonb"
        parts = []
        pairs = [f"%(k{i})s::text, nullif(a{i}, '')" for i in range(len(self.keys))]
        for start in range(0, len(pairs), 50):  # a function takes at most 100 arguments
            parts.append("jsonb_build_object(" + ", ".join(pairs[start : start + 50]) + ")")
        return "jsonb_strip_nulls(" + " || ".join(parts) + ")"

    def flush(self, exc: BaseException | None = None) -> None:
        """End the current COPY (the connection is then free for a progress update)."""
        if self._copy is None:
            return
        cm, self._copy, self._copy_cm = self._copy_cm, None, None
        try:
            if exc is None:
                cm.__exit__(None, None, None)
            else:
                cm.__exit__(type(exc), exc, exc.__traceback__)
        finally:
            self._cursor.close()

    def finish(self, counts: ImportCounts) -> None:
        self.flush()
        imp = self.imp
        now = timezone.now()
        params = {
            "source": f"import:{imp.original_name}"[:255],
            "import_id": imp.pk,
            "now": now,
            "list_id": imp.contact_list_id,
            **{f"k{i}": key for i, key in enumerate(self.keys)},
        }
        t0 = time.monotonic()
        with connection.cursor() as cur:
            cur.execute(f"ANALYZE {self.table}")
        if self.parts == 1:
            results = [self._save_part(0, params)]
        else:
            with ThreadPoolExecutor(self.parts) as pool:
                results = list(
                    pool.map(lambda k: self._save_part_thread(k, params), range(self.parts))
                )
        distinct, inserted, added = (sum(r[i] for r in results) for i in range(3))
        t1 = time.monotonic()
        with transaction.atomic():
            _recount_list(imp.contact_list_id)
        if counts.invalid or self.staged_valid > distinct:
            with connection.cursor() as cur:
                self._write_report(cur)
        t2 = time.monotonic()
        logger.info(
            "import %s saved: upsert and memberships %.1fs in %s part(s) (%s added to the "
            "list), report %.1fs; peak RSS %s kB",
            imp.pk,
            t1 - t0,
            self.parts,
            added,
            t2 - t1,
            _peak_rss_kb(),
        )
        counts.imported = inserted
        counts.updated = distinct - inserted
        counts.duplicates = self.staged_valid - distinct

    def _save_part(self, k: int, params: dict) -> tuple[int, int, int]:
        """Save the phones of hash bucket k (all of them with one part), in one transaction:
        (distinct phones, contacts inserted, memberships added)."""
        policy = self.imp.merge_policy
        part = "true" if self.parts == 1 else f"(hashtext(phone) & {self.parts - 1}) = {k}"
        with transaction.atomic(), connection.cursor() as cur:
            # The sorts and hashes over a million staged rows fit in memory with this.
            cur.execute("SET LOCAL work_mem = '128MB'")
            # Imports save one at a time (per bucket): then nobody else inserts these phones
            # meanwhile, except an admin or an opt-out: the IntegrityError branch below.
            for key in [k] if self.parts > 1 else range(SAVE_PARTS):
                cur.execute("SELECT pg_advisory_xact_lock(%s)", [IMPORT_LOCK + key])
            try:
                with transaction.atomic():
                    cur.execute(self._sql(self._fast_sql(policy), part), params)
                    return cur.fetchone()
            except IntegrityError:
                logger.info(
                    "import %s: a phone appeared meanwhile, saving with ON CONFLICT", self.imp.pk
                )
                cur.execute(self._sql(self._concurrent_sql(policy), part), params)
                return cur.fetchone()

    def _save_part_thread(self, k: int, params: dict) -> tuple[int, int, int]:
        try:
            return self._save_part(k, params)
        finally:
            connection.close()  # this thread's own connection

    def _write_report(self, cur) -> None:
        """Refused rows (invalid, and duplicates of an earlier row), in row order, straight from
        the staging tables into the report file."""
        safe = (
            "CASE WHEN left(raw, 1) IN ('=', '+', '-', '@', E'\\t', E'\\r') "
            "THEN '''' || raw ELSE raw END"
        )
        query = (
            f"COPY (SELECT row_no, {safe}, reason FROM {self.table} WHERE phone IS NULL"
            f" UNION ALL SELECT row_no, {safe}, replace(%(dup)s, '{{row}}', first_row::text)"
            f" FROM {self.dups} ORDER BY 1) TO STDOUT WITH (FORMAT csv)"
        )
        self.report.text.flush()
        with cur.cursor.copy(query, {"dup": _dup_reason()}) as copy:
            for data in copy:
                if data:
                    self.report.file.write(data)
                    self.report.rows += 1  # only "any rows?" matters

    def _sql(self, template: str, part: str = "true") -> str:
        return (
            template.replace("{table}", self.table)
            .replace("{dups}", self.dups)
            .replace("{attrs}", self._attrs_sql())
            .replace("{part}", part)
        )

    # The merge policies in SQL (merge_values() is the same in Python, for other databases).
    # {o}: the existing row; {n}_name, {n}_attrs, {n}_search: the file's values. Existing
    # attributes that are not a JSON object (edited by hand) count as empty.
    _OLD_ATTRS = (
        "(CASE WHEN jsonb_typeof(c.attributes) = 'object' THEN c.attributes ELSE '{}'::jsonb END)"
    )

    @classmethod
    def _policy_set(cls, policy: str, name: str, attrs: str, search: str) -> tuple[str, str]:
        """(SET assignments, WHERE the row changes) for overwrite and fill."""
        old = cls._OLD_ATTRS
        if policy == ContactImport.MergePolicy.OVERWRITE:
            assign = (
                f"name = CASE WHEN {name} <> '' THEN {name} ELSE c.name END,"
                f" attributes = {old} || {attrs},"
                f" search_text = CASE WHEN {name} <> '' THEN {search} ELSE c.search_text END,"
                " updated_at = %(now)s"
            )
            changed = f"({name} <> '' AND {name} IS DISTINCT FROM c.name) OR NOT ({old} @> {attrs})"
        else:  # fill blanks
            kept = (
                "(SELECT coalesce(jsonb_object_agg(e.key, e.value), '{}'::jsonb)"
                f" FROM jsonb_each({old}) e WHERE e.value NOT IN ('\"\"'::jsonb, 'null'::jsonb))"
            )
            assign = (
                f"name = CASE WHEN c.name = '' THEN {name} ELSE c.name END,"
                f" attributes = {attrs} || {kept},"
                f" search_text = CASE WHEN c.name = '' AND {name} <> '' THEN {search}"
                "  ELSE c.search_text END,"
                " updated_at = %(now)s"
            )
            changed = (
                f"(c.name = '' AND {name} <> '') OR EXISTS (SELECT 1 FROM jsonb_each({attrs}) n"
                f" WHERE coalesce({old} -> n.key, 'null'::jsonb) IN ('\"\"'::jsonb, 'null'::jsonb))"
            )
        return assign, changed

    # Deduplicated rows: the first occurrence of each phone wins. Sorted by phone: the unique
    # index is filled in order, and concurrent writers lock rows in one order.
    _SRC = (
        "WITH src AS MATERIALIZED ("
        " SELECT DISTINCT ON (phone) phone, name, {attrs} AS attrs, search, row_no"
        " FROM {table} WHERE phone IS NOT NULL AND {part} ORDER BY phone, row_no)"
    )
    _INSERT = (
        "INSERT INTO campaigns_contact AS c (phone, name, attributes, search_text, source,"
        " source_import_id, source_row, created_at, updated_at)"
        " SELECT phone, name, attrs, search, %(source)s, %(import_id)s, row_no, %(now)s, %(now)s"
    )
    # The rows that repeat an earlier row's phone, for the report (computed here, where the
    # deduplicated rows are at hand, and in parallel when the saving is).
    _DUPS = (
        ", dup AS (INSERT INTO {dups} (row_no, raw, first_row)"
        " SELECT s.row_no, s.raw, src.row_no FROM {table} s JOIN src ON src.phone = s.phone"
        " WHERE s.row_no <> src.row_no)"  # (src holds this part's phones only)
    )
    _MEMBERS = (
        "INSERT INTO campaigns_contactlistmembership (contact_list_id, contact_id, added_at)"
        " SELECT %(list_id)s, id, %(now)s"
    )

    @classmethod
    def _fast_sql(cls, policy: str) -> str:
        """The usual case, in one statement: plain INSERTs for the new contacts and their
        memberships (no ON CONFLICT: ~30% cheaper per row), an UPDATE of the existing ones
        that change, memberships for the existing ones. Safe under the advisory lock; another
        writer inserting one of these phones meanwhile raises IntegrityError (then:
        _concurrent_sql)."""
        update = ""
        if policy != ContactImport.MergePolicy.KEEP:
            assign, changed = cls._policy_set(policy, "src.name", "src.attrs", "src.search")
            update = (
                f", upd AS (UPDATE campaigns_contact AS c SET {assign} FROM src"
                f" WHERE c.phone = src.phone AND ({changed}) RETURNING 1)"
            )
        return (
            cls._SRC + cls._DUPS + ", old AS MATERIALIZED ("
            " SELECT c.id, c.phone FROM src JOIN campaigns_contact c ON c.phone = src.phone)"
            f", ins AS ({cls._INSERT} FROM src"
            "  WHERE NOT EXISTS (SELECT 1 FROM old WHERE old.phone = src.phone) RETURNING c.id)"
            + update
            + f", mem_new AS ({cls._MEMBERS} FROM ins RETURNING 1)"
            f", mem_old AS ({cls._MEMBERS} FROM old"
            "  ON CONFLICT (contact_list_id, contact_id) DO NOTHING RETURNING 1)"
            " SELECT (SELECT count(*) FROM src), (SELECT count(*) FROM ins),"
            " (SELECT count(*) FROM mem_new) + (SELECT count(*) FROM mem_old)"
        )  # (upd runs although unreferenced: PostgreSQL runs every data-modifying WITH)

    @classmethod
    def _concurrent_sql(cls, policy: str) -> str:
        """Correct whatever else writes meanwhile: INSERT ... ON CONFLICT (phone) DO UPDATE by
        policy, memberships for every contact of the file."""
        if policy == ContactImport.MergePolicy.KEEP:
            action = "NOTHING"
        else:
            assign, changed = cls._policy_set(
                policy, "EXCLUDED.name", "EXCLUDED.attributes", "EXCLUDED.search_text"
            )
            action = f"UPDATE SET {assign} WHERE {changed}"
        return (
            cls._SRC + cls._DUPS + ", old AS MATERIALIZED ("
            " SELECT c.id FROM src JOIN campaigns_contact c ON c.phone = src.phone)"
            f", up AS ({cls._INSERT} FROM src ON CONFLICT (phone) DO {action}"
            "  RETURNING c.id, (xmax = 0) AS inserted)"
            f", mem AS ({cls._MEMBERS} FROM (SELECT id FROM up UNION SELECT id FROM old) ids"
            "  ON CONFLICT (contact_list_id, contact_id) DO NOTHING RETURNING 1)"
            " SELECT (SELECT count(*) FROM src), (SELECT count(*) FROM up WHERE inserted),"
            " (SELECT count(*) FROM mem)"
        )

    def close(self) -> None:
        try:
            if self._copy is not None:
                self.flush(RuntimeError("import aborted"))
        except Exception:  # psycopg reports the aborted COPY; the table is dropped below
            pass
        try:
            with connection.cursor() as cur:
                cur.execute(f"DROP TABLE IF EXISTS {self.table}, {self.dups}")
        except Exception:  # the connection may be gone; the temp table goes with it
            logger.warning("could not drop %s", self.table, exc_info=True)
