"""What an import tells: its counts (they add up), the refused rows as a CSV report (with the
rows imported without a typed value that did not parse: their reason says so), and the memory
figure it logs."""

from __future__ import annotations

import codecs
import csv
import io
import resource
import tempfile
from dataclasses import dataclass, field

from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from providers.shared.text import csv_safe


@dataclass
class ImportCounts:
    total: int = 0
    imported: int = 0
    updated: int = 0
    duplicates: int = 0
    invalid: int = 0
    legacy: int = 0
    # Rows taken per country of their phone ({"VN": n, "KH": m}): not part of adds_up().
    countries: dict[str, int] = field(default_factory=dict)

    def adds_up(self) -> bool:
        return self.total == self.imported + self.updated + self.duplicates + self.invalid


class ErrorReport:
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


def country_summary(country_counts: dict | None) -> str:
    """Which rows were read in which country, in words: "1,200 Vietnamese numbers, 30 Cambodian
    numbers" (the largest first); "" when no row was taken."""
    parts = []
    for code, n in sorted((country_counts or {}).items(), key=lambda item: (-item[1], item[0])):
        if code == "VN":
            text = ngettext("{n} Vietnamese number", "{n} Vietnamese numbers", n)
        elif code == "KH":
            text = ngettext("{n} Cambodian number", "{n} Cambodian numbers", n)
        else:
            text = ngettext("{n} number of {country}", "{n} numbers of {country}", n)
        parts.append(text.format(n=f"{n:,}", country=code))
    return ", ".join(parts)


def dup_reason() -> str:
    """The report's reason for a row repeating an earlier row's phone ({row}: that row)."""
    return _("Duplicate: the same phone as row {row}; this row was not used.")


def peak_rss_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
