"""A campaign's results as an Excel workbook: the CSV's table (export.py), typed cells."""

from __future__ import annotations

import re

from campaigns.models import Campaign
from campaigns.selectors.export import MONEY, TIME, VALUE, campaign_export_table, vnd

XLSX_MAX_ROWS = 1_048_575  # Excel's sheet limit, less the header row
TIME_FORMAT = "dd/mm/yyyy hh:mm"
VND_FORMAT = '#,##0 "₫"'
# The characters XML 1.0 cannot hold (openpyxl's ILLEGAL_CHARACTERS_RE, without importing openpyxl).
ILLEGAL_CHARACTERS_RE = re.compile(r"[\000-\010]|[\013-\014]|[\016-\037]")


def _text(value) -> str | None:
    """Text as XML may hold it: control characters (other than tab and newlines) are dropped,
    openpyxl refuses them."""
    if value is None or value == "":
        return None
    return ILLEGAL_CHARACTERS_RE.sub("", str(value))


def campaign_export_xlsx(*, campaign: Campaign, fileobj) -> int:
    """Every recipient's outcome as an XLSX sheet, written in openpyxl's write-only (streaming)
    mode. Cells are typed: times are real dates (local, as Excel has no time zones), the fee a
    number in VND, text is text. A text cell needs no formula guard: it is written as a string
    (data_type "s", an inline string), never as a formula, whatever it starts with (openpyxl
    would otherwise take "=..." for a formula, so the type is set explicitly). Returns the rows
    written."""
    # openpyxl (a third-party package) is imported on the first XLSX export, not in every process
    # that loads the admin (this module is imported by the view only when it runs).
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    table = campaign_export_table(campaign=campaign, limit=XLSX_MAX_ROWS)
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(title=f"campaign-{campaign.pk}")
    ws.freeze_panes = "A2"
    bold = Font(bold=True)

    def text_cell(value):
        cell = WriteOnlyCell(ws, value=value)
        cell.data_type = "s"  # a string, even when it starts with "="
        return cell

    header = []
    for title in table.header:
        cell = text_cell(_text(title))
        cell.font = bold
        header.append(cell)
    ws.append(header)

    # One styled cell per typed column, its value replaced on each row: a write-only sheet
    # serializes a row as it is appended, so the cell can be reused (creating and styling a cell
    # per value was a fifth of the export's time).
    styled: dict[int, object] = {}
    for i, kind in enumerate(table.kinds):
        if kind in (TIME, MONEY):
            cell = WriteOnlyCell(ws)
            cell.number_format = TIME_FORMAT if kind == TIME else VND_FORMAT
            styled[i] = cell

    def typed(i, value, kind):
        if value is None or value == "":
            return None
        if i in styled:
            cell = styled[i]
            cell.value = vnd(value) if kind == MONEY else value
            return cell
        if kind == VALUE and isinstance(value, int | float):
            return value
        text = _text(value)
        # Only a string starting with "=" is taken for a formula by openpyxl; others go as they are.
        return text_cell(text) if text and text[0] == "=" else text

    kinds = list(enumerate(table.kinds))
    written = 0
    for row in table.rows:
        ws.append([typed(i, v, k) for (i, k), v in zip(kinds, row, strict=True)])
        written += 1
    wb.save(fileobj)
    return written
