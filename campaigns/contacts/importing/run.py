"""An import's life: created from an upload (the file inspected, a mapping guessed), previewed,
mapped by a person, started in the background, then run once: read every row, send the valid
ones to a sink (sinks.py), report the others, count.

Counts always add up: total = imported + updated + duplicates + invalid, and every refused row
(invalid or duplicate) is in the error report with its row number, raw value and reason.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.files import File
from django.db import connection, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from campaigns.attribute_types import converter, unparsed_reason
from campaigns.contacts.importing.files import (
    PREVIEW_ROWS,
    ImportFileError,
    TableInfo,
    inspect_file,
    iter_rows,
    max_rows,
    read_preview,
)
from campaigns.contacts.importing.mapping import (
    SEVERAL_SEPARATOR,
    column_titles,
    complete_mapping,
    guess_mapping,
    mapping_errors,
    tag_attribute_index,
)
from campaigns.contacts.importing.redact import import_redact
from campaigns.contacts.importing.report import ErrorReport, ImportCounts, peak_rss_kb
from campaigns.contacts.importing.sinks import BatchSink, PostgresSink
from campaigns.contacts.typed import declared_types
from campaigns.models import ContactImport, ContactList
from campaigns.privacy.erasure import ErasedChecker, erased_checker, national_numbers
from campaigns.privacy.models import ConsentPurpose, ConsentSource
from campaigns.privacy.services import consent_grant_bulk
from providers.shared.phones import (
    DEFAULT_COUNTRY,
    FAST_PATHS,
    PhoneResult,
    fast_mobile,
    normalize_phone,
    phone_country,
)
from providers.shared.text import fold

logger = logging.getLogger("loa.imports")

MAX_NAME = 200  # Contact.name max_length
MAX_ATTRIBUTE = 1000
PROGRESS_EVERY = 25_000  # rows between progress updates (and COPY chunks)
ANALYZE_AFTER = 20_000  # new contacts after which the import refreshes the planner statistics


@dataclass
class Preview:
    info: TableInfo
    header: list[str]  # column titles (the file's header, or "Column 1"...)
    rows: list[list[str]]  # the first data rows
    mapping: dict  # a guess (or the import's saved mapping)


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
    country: str = "",
    consent_channels: list[str] | tuple[str, ...] = (),
) -> ContactImport:
    """Inspect an uploaded file and record it as an import waiting for its column mapping.

    `country`: where local-format phones are read ("VN", "KH"; "" = the list's default).
    `consent_channels`: channel kinds (or "all") every person in the file consented to receive
    advertising on; recorded for each contact of the file when the import completes.
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
        country=country,
        consent_channels=list(dict.fromkeys(consent_channels)),
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


def import_country(imp: ContactImport) -> str:
    """The country an import reads local-format phones in: its own choice, else its list's."""
    return imp.country or imp.contact_list.default_country or DEFAULT_COUNTRY


def contact_import_execute(*, imp: ContactImport) -> ImportCounts:
    """Read the whole file into a sink, save, and record the counts, warnings and error report
    on the import. Raises ImportFileError when the file is refused as a whole."""
    with imp.file.open("rb") as fh:
        info = inspect_file(fh, encoding=imp.encoding or None, delimiter=imp.delimiter or None)
        mapping = _run_mapping(fh, info, imp.mapping)
        has_header = mapping.get("has_header", True)
        estimated = max(0, info.estimated_rows - (1 if has_header else 0))
        ContactImport.objects.filter(pk=imp.pk).update(
            encoding=info.encoding,
            delimiter=info.delimiter,
            mapping=mapping,
            total_rows=estimated,
            processed_rows=0,
        )
        report = ErrorReport()
        # Numbers erased on request are refused (reported, not imported) unless consented again.
        erased = erased_checker()
        try:
            counts, row_warnings, records = _read_and_save(
                fh, info, mapping, imp, report, estimated, erased
            )
            report_name = _report_save(imp, report)
        finally:
            report.close()
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
        country=import_country(imp),  # kept as read: the list's default may change later
        country_counts=counts.countries,
        warnings=[*info.warnings, *row_warnings, *_spanning_warnings(info, records)],
        error_report=report_name,
        finished_at=timezone.now(),
    )
    if erased is not None and erased.found:
        # The stored copy of this upload keeps no erased person's row either.
        imp.refresh_from_db()
        import_redact(imp=imp, national=frozenset(national_numbers(erased.found)))
    if connection.vendor == "postgresql" and counts.imported >= ANALYZE_AFTER:
        _analyze(imp)
    return counts


def _run_mapping(fh, info: TableInfo, mapping: dict | None) -> dict:
    """The import's mapping, or (an import started without one: the command line, an old row)
    the guessed one completed by whatever was saved; raises ImportFileError if it is unusable.
    Either way completed from the header (split name columns, several phones per cell)."""
    first, rows = read_preview(fh, info)
    if mapping and mapping.get("phone") is not None:
        return complete_mapping(mapping, first, rows)
    guessed = guess_mapping(first, rows)
    mapping = {**guessed, **{k: v for k, v in (mapping or {}).items() if v is not None}}
    errors = mapping_errors(mapping, len(column_titles(first, rows, True)))
    if errors:
        header = ", ".join(f"“{c}”" for c in first[:12] if c.strip())
        raise ImportFileError(
            " ".join(errors) + " " + _("The first row is: {header}.").format(header=header)
        )
    return complete_mapping(mapping, first, rows)


def _read_and_save(
    fh,
    info: TableInfo,
    mapping: dict,
    imp: ContactImport,
    report: ErrorReport,
    estimated: int,
    erased: ErasedChecker | None = None,
) -> tuple[ImportCounts, list[str], int]:
    """Every row into the database's sink, then saved: (counts, warnings, records read)."""
    keys = list((mapping.get("attributes") or {}).values()) + (mapping.get("extra_phones") or [])
    typed = _typed_columns(keys)  # read before the sink opens a COPY on the connection
    sink = (
        PostgresSink(imp, report, keys, rows=estimated)
        if connection.vendor == "postgresql"
        else BatchSink(imp, report, keys)
    )
    try:
        started = time.monotonic()
        counts, row_warnings, records = _read_into(
            fh, info, mapping, sink, imp, estimated, erased, typed=typed
        )
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
        if imp.consent_channels:
            _consent_record(imp, sink)
    finally:
        sink.close()
    if not counts.adds_up():  # an invariant, not a user error: fail loudly
        raise RuntimeError(f"counts do not add up: {counts}")
    return counts, row_warnings, records


def _consent_record(imp: ContactImport, sink) -> None:
    """The advertising consent the uploader declared for the file: one record per contact of the
    file and channel kind, written in two statements per kind over the file's phones (the
    staging table on PostgreSQL, the phones kept by the batch sink elsewhere)."""
    started = time.monotonic()
    written = consent_grant_bulk(
        contacts=sink.file_contacts(),
        channel_kinds=imp.consent_channels,
        purpose=ConsentPurpose.ADVERTISING,
        source=ConsentSource.IMPORT,
        actor=imp.created_by,
        contact_import=imp,
    )
    logger.info(
        "import %s: %s consent records in %.1fs", imp.pk, written, time.monotonic() - started
    )


def _report_save(imp: ContactImport, report: ErrorReport) -> str:
    """The error report into the import's storage (its name), or "" when no row was refused."""
    if not report.rows:
        return ""
    report.file.seek(0)
    imp.error_report.save(
        f"errors-{imp.pk}.csv",
        File(report.file, name=f"errors-{imp.pk}.csv"),
        save=False,
    )
    return imp.error_report.name


def _spanning_warnings(info: TableInfo, records: int) -> list[str]:
    """A warning when fewer records than lines were read: cells spanning lines."""
    if (
        info.kind == "csv"
        and info.lines
        and records + (1 if info.skip_first_line else 0) < info.lines
    ):
        return [
            _(
                "{lines} lines were read as {records} rows: some cells span several lines. If "
                'that is not intended, a quote mark (") is probably unbalanced; check the rows '
                "in the error report."
            ).format(lines=f"{info.lines:,}", records=f"{records:,}")
        ]
    return []


def _analyze(imp: ContactImport) -> None:
    """The import is done for the user; now refresh the planner's statistics, or searches on a
    table that just grew by a million rows get their plans from its old size (autovacuum would
    analyze it too, but only within minutes)."""
    started = time.monotonic()
    try:
        with connection.cursor() as cur:
            cur.execute("ANALYZE campaigns_contact, campaigns_contactlistmembership")
    except Exception:  # statistics are an optimisation: never fail an import for them
        logger.warning("import %s: ANALYZE failed", imp.pk, exc_info=True)
    logger.info("import %s: tables analyzed in %.1fs", imp.pk, time.monotonic() - started)


def _typed_columns(keys: list[str]) -> list[tuple]:
    """(position in the row's values, converter, key, type, date format) of each attribute column
    declared a date, lunar date or number; [] when none is (the loop then does nothing more)."""
    declared = declared_types(keys)
    tag_index = tag_attribute_index(keys)
    typed = []
    for pos, key in enumerate(keys):
        if key in declared and pos != tag_index:
            kind, fmt = declared[key]
            convert = converter(kind, fmt)
            if convert is not None:
                typed.append((pos, convert, key, kind, fmt))
    return typed


def _read_into(
    fh, info, mapping, sink, imp, estimated, erased=None, *, typed=()
) -> tuple[ImportCounts, list[str], int]:
    """The hot loop: one pass over the records, each row to the sink or to the report.

    Long because it is the per-row loop of a million-row import: written for speed (locals, no
    per-row dict, no helper call per row): at a million rows every microsecond is a second.
    """
    counts = ImportCounts()
    has_header = mapping.get("has_header", True)
    pi = int(mapping["phone"])
    ni = mapping.get("name")
    ni = int(ni) if ni is not None else None
    attr_cols = [(int(i), key) for i, key in (mapping.get("attributes") or {}).items()]
    attr_idx = [i for i, _key in attr_cols]
    parts = [int(i) for i in mapping.get("name_parts") or []]  # a name split in columns
    extra_keys = mapping.get("extra_phones") or []
    extra_blank = [""] * len(extra_keys)
    several, several_rows = 0, []  # rows whose cell held several numbers (the first taken)
    unparsed, unparsed_rows = 0, []  # rows imported without a typed value that did not parse
    note = sink.report.add
    widest = 1 + max([pi, ni or 0, *attr_idx, *parts])
    limit = max_rows()
    # Local numbers are read in the import's country; its fast path is picked once (for
    # Vietnam it is fast_mobile: the same per-row work as before Cambodia was served).
    country = import_country(imp)
    fast = FAST_PATHS.get(country, fast_mobile)
    others: dict[str, int] = {}  # rows taken in another country (written with its code)
    ragged_more, ragged_less, blank = [], [], 0
    ncols = None
    records = total = invalid = legacy = 0
    rowno = 1 if info.skip_first_line else 0  # the row number Excel shows
    next_progress = PROGRESS_EVERY
    add, add_invalid = sink.add, sink.add_invalid
    # The report's reason for a number erased on request (its value column stays empty: the
    # report must not bring the number back).
    erased_reason = _(
        "Erased on request: this person asked for their data to be erased; the number is not "
        "imported again unless they consent anew."
    )
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
        phone = fast(raw)
        extra = extra_blank
        if phone is None:
            if SEVERAL_SEPARATOR in raw:  # Google Contacts: "0912 345 678 ::: 0987 654 321"
                result, extra = _several_phones(raw, country, len(extra_keys))
                if result.phone is not None:
                    several += 1
                    if len(several_rows) < 11:
                        several_rows.append(rowno)
            else:
                result = normalize_phone(raw, country=country)
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
            if result.country != country:
                others[result.country] = others.get(result.country, 0) + 1
        if erased is not None and erased(phone):
            invalid += 1
            add_invalid(rowno, "", erased_reason)
            if (taken := phone_country(phone)) != country:
                others[taken] -= 1  # counted above as taken: it is refused after all
            if extra is not extra_blank:
                several -= 1
                if several_rows and several_rows[-1] == rowno:
                    several_rows.pop()
            continue
        name = " ".join(record[ni].split()) if ni is not None else ""
        if not name and parts:  # no whole name: composed Last Middle First, as Vietnamese is
            name = " ".join(" ".join([record[i] for i in parts]).split())
        values = [record[i].strip() for i in attr_idx]
        if len(name) > MAX_NAME or (values and max(map(len, values)) > MAX_ATTRIBUTE):
            invalid += 1
            add_invalid(rowno, raw, _oversized(name, values, attr_cols))
            if (taken := phone_country(phone)) != country:
                others[taken] -= 1  # counted above as taken: it is refused after all
            if extra is not extra_blank:  # taken from several numbers: refused after all
                several -= 1
                if several_rows and several_rows[-1] == rowno:
                    several_rows.pop()
            continue
        if typed:
            # Typed columns: the stored form, or the cell dropped (never stored as text a date
            # rule or a trigger would misread) and the row noted in the report; the row's
            # other values are imported.
            bad = False
            for pos, convert, key, kind, fmt in typed:
                cell = values[pos]
                if cell:
                    out = convert(cell)
                    if out is None:
                        values[pos] = ""
                        note(rowno, cell, unparsed_reason(key, kind, fmt, cell))
                        bad = True
                    else:
                        values[pos] = out
            if bad:
                unparsed += 1
                if len(unparsed_rows) < 11:
                    unparsed_rows.append(rowno)
        if extra_keys:
            values += extra
        add(rowno, phone, raw, name, values)
        if total >= next_progress:
            next_progress += PROGRESS_EVERY
            logger.debug("import %s: %s rows, peak RSS %s kB", imp.pk, total, peak_rss_kb())
            sink.flush()
            ContactImport.objects.filter(pk=imp.pk).update(
                processed_rows=total, total_rows=max(estimated, total)
            )
    counts.total, counts.invalid, counts.legacy = total, invalid, legacy
    # Every row not refused was taken; those not in `others` were read in `country`.
    counts.countries = {country: total - invalid - sum(others.values()), **others}
    counts.countries = {c: n for c, n in counts.countries.items() if n}
    if ncols is None:
        raise ImportFileError(_("The file is empty (it has no rows)."))
    found = _row_warnings(ragged_more, ragged_less, blank, legacy)
    if several:
        found.append(_several_warning(several, several_rows, extra_keys))
    if unparsed:
        found.append(
            _(
                "{n} rows had a value that does not fit its attribute's type (rows {rows}): "
                "those rows were imported without that value; the report gives each value "
                "and why."
            ).format(n=f"{unparsed:,}", rows=_rows_text(unparsed_rows))
        )
    return counts, found, records


def _several_phones(raw: str, country: str, keep: int) -> tuple[PhoneResult, list[str]]:
    """A cell with several numbers (Google Contacts' " ::: "): the first valid one, and the
    others for the `keep` extra attributes (normalized when valid, as written when not; the last
    attribute takes the rest). None valid: the refusal says so, with each number's own reason."""
    cells = [c.strip() for c in raw.split(SEVERAL_SEPARATOR) if c.strip()]
    results = [normalize_phone(c, country=country) for c in cells]
    taken = next((r for r in results if r.phone is not None), None)
    if taken is None:
        reasons = "; ".join(r.error for r in results) or str(_("The phone is empty."))
        return (
            PhoneResult(
                None,
                _("The cell holds {n} phone numbers and none of them is valid: {reasons}").format(
                    n=len(cells), reasons=reasons
                ),
                False,
                country,
            ),
            [""] * keep,
        )
    others = [r.phone or c for c, r in zip(cells, results, strict=True) if r is not taken]
    if keep and len(others) > keep:
        others[keep - 1 :] = [", ".join(others[keep - 1 :])]
    return taken, (others + [""] * keep)[:keep]


def _several_warning(n: int, rows: list[int], keys: list[str]) -> str:
    """The import report's note on cells with several numbers (`rows`: the first few)."""
    if keys:
        return _(
            "{n} rows had several phone numbers in one cell (rows {rows}): the first valid "
            "number was imported and the others were kept as the attributes {keys}."
        ).format(n=f"{n:,}", rows=_rows_text(rows), keys=", ".join(keys))
    return _(
        "{n} rows had several phone numbers in one cell (rows {rows}): the first valid number "
        "was imported; the others were not kept."
    ).format(n=f"{n:,}", rows=_rows_text(rows))


def _row_warnings(
    ragged_more: list[int], ragged_less: list[int], blank: int, legacy: int
) -> list[str]:
    """What the reading noticed about the rows, in words."""
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
    if legacy:
        found.append(
            _(
                "{n} phones had an old 11-digit number (before the 2018 renumbering) and were "
                "rewritten to the current 10-digit number."
            ).format(n=f"{legacy:,}")
        )
    return found


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
