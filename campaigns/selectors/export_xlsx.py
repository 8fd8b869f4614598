"""A campaign's results as an Excel workbook (the CSV is export.py)."""

from __future__ import annotations

from django.utils import timezone

from campaigns.models import Campaign
from campaigns.selectors.export import EXPORT_HEADER, campaign_export_queryset
from providers.errors import explain
from providers.shared.phones import format_local
from providers.shared.text import csv_safe

# The CSV's columns, with the translated meaning of the error code after the code.
_AFTER_CODE = EXPORT_HEADER.index("error_code") + 1
XLSX_HEADER = [*EXPORT_HEADER[:_AFTER_CODE], "error_meaning", *EXPORT_HEADER[_AFTER_CODE:]]
XLSX_MAX_ROWS = 1_048_575  # Excel's sheet limit, less the header row


def campaign_export_xlsx(*, campaign: Campaign, fileobj) -> int:
    """Every recipient's outcome as an XLSX sheet, written in openpyxl's write-only (streaming)
    mode. Text cells are formula-injection safe (openpyxl would store "=..." as a formula);
    times are local (Excel has no time zones). Returns the rows written."""
    # openpyxl (a third-party package) is imported on the first XLSX export, not in every process
    # that loads the admin: it takes a fifth of a second to import.
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(title=f"campaign-{campaign.pk}")
    ws.freeze_panes = "A2"
    bold = Font(bold=True)
    header = []
    for title in XLSX_HEADER:
        cell = WriteOnlyCell(ws, value=title)
        cell.font = bold
        header.append(cell)
    ws.append(header)
    qs = campaign_export_queryset(campaign=campaign)
    meanings: dict[str, str] = {}

    def local(v):
        return timezone.localtime(v).replace(tzinfo=None) if v else None

    written = 0
    for phone, name, status, code, message, fee, sent, delivered, read, failed, pmid in qs[
        :XLSX_MAX_ROWS
    ].iterator(chunk_size=2000):
        if code and code not in meanings:
            meanings[code] = explain(code)
        ws.append(
            [
                csv_safe(phone),
                csv_safe(format_local(phone)),
                csv_safe(name),
                status,
                csv_safe(code),
                csv_safe(meanings.get(code, "")),
                csv_safe(message),
                float(fee) if fee is not None else None,
                local(sent),
                local(delivered),
                local(read),
                local(failed),
                csv_safe(pmid),
            ]
        )
        written += 1
    wb.save(fileobj)
    return written
