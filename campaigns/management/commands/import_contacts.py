"""Import a contact file from the command line: the same service as the admin upload.

    python manage.py import_contacts customers.csv --list "Khách hàng 2026" --merge fill

Prints the detected encoding, delimiter and mapping, then the counts (they add up: total =
imported + updated + duplicates + invalid) and where the error report is. Exit status 1 when the
file is refused as a whole.
"""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from campaigns.contacts.importing.files import DELIMITER_LABELS, ENCODING_LABELS, ImportFileError
from campaigns.contacts.importing.mapping import slugify_header
from campaigns.contacts.importing.run import (
    contact_import_prepare,
    contact_import_preview,
    contact_import_run,
)
from campaigns.models import ContactImport, ContactList
from campaigns.privacy.models import ConsentRecord
from providers.shared.phones import CALLING_CODES


class Command(BaseCommand):
    help = "Import contacts from a CSV, TSV or XLSX file into a contact list."

    def add_arguments(self, parser):
        parser.add_argument("file", help="CSV, TSV or XLSX file")
        parser.add_argument(
            "--list", required=True, dest="list_name", help="list name (created if missing)"
        )
        parser.add_argument(
            "--merge",
            choices=[c.value for c in ContactImport.MergePolicy],
            default=ContactImport.MergePolicy.FILL,
            help="what to do with contacts that already exist (default: fill blanks)",
        )
        parser.add_argument(
            "--phone-column", help="header text or 1-based number of the phone column"
        )
        parser.add_argument(
            "--name-column", help="header text or 1-based number of the name column"
        )
        parser.add_argument(
            "--ignore-column", action="append", default=[], help="a column not to keep (repeatable)"
        )
        parser.add_argument(
            "--country",
            choices=list(CALLING_CODES),
            help="country of phones written without +84/+855 (default: the list's, else VN)",
        )
        parser.add_argument(
            "--consent",
            action="append",
            default=[],
            choices=[k for k, _label in ConsentRecord.CHANNEL_CHOICES],
            metavar="CHANNEL",
            help="every person in the file consented to advertising on this channel kind "
            "(repeatable; 'all' for every channel): a consent record per contact, source the file",
        )
        parser.add_argument("--encoding", choices=list(ENCODING_LABELS), help="skip detection")
        parser.add_argument("--delimiter", help="skip detection: , ; tab |")

    def handle(self, *args, **options):
        path = Path(options["file"])
        if not path.is_file():
            raise CommandError(f"No such file: {path}")
        delimiter = options["delimiter"]
        if delimiter in ("tab", "\\t"):
            delimiter = "\t"
        contact_list, _created = ContactList.objects.get_or_create(name=options["list_name"])
        with path.open("rb") as fh:
            try:
                imp = contact_import_prepare(
                    file=fh,
                    filename=path.name,
                    contact_list=contact_list,
                    merge_policy=options["merge"],
                    encoding=options["encoding"],
                    delimiter=delimiter,
                    country=options["country"] or "",
                    consent_channels=options["consent"],
                )
            except ImportFileError as exc:
                raise CommandError(str(exc)) from exc
        mapping = dict(imp.mapping)
        wanted_any = options["phone_column"] or options["name_column"] or options["ignore_column"]
        titles = self._titles(imp) if wanted_any else []
        for key in ("phone", "name"):
            wanted = options[f"{key}_column"]
            if wanted:
                mapping[key] = self._column(wanted, titles)
                mapping["attributes"].pop(str(mapping[key]), None)
        for wanted in options["ignore_column"]:
            mapping["attributes"].pop(str(self._column(wanted, titles)), None)
        if mapping != imp.mapping:
            ContactImport.objects.filter(pk=imp.pk).update(mapping=mapping)
        self.stdout.write(
            f"{path.name}: {ENCODING_LABELS.get(imp.encoding, imp.encoding or 'XLSX')}, "
            f"delimiter {DELIMITER_LABELS.get(imp.delimiter, imp.delimiter or '-')}, "
            f"about {imp.total_rows:,} rows"
        )
        self.stdout.write(
            "columns: phone={} name={} attributes={}".format(
                self._title(titles, mapping.get("phone")),
                self._title(titles, mapping.get("name")),
                ", ".join(mapping.get("attributes", {}).values()) or "-",
            )
        )
        imp = contact_import_run(import_id=imp.pk)
        for warning in imp.warnings:
            self.stdout.write(self.style.WARNING(f"warning: {warning}"))
        if imp.status != ContactImport.Status.COMPLETED:
            raise CommandError(imp.error_message or f"import {imp.pk} {imp.status}")
        self.stdout.write(
            f"total={imp.total_rows} imported={imp.imported_count} updated={imp.updated_count} "
            f"duplicate={imp.duplicate_count} invalid={imp.invalid_count} "
            f"legacy_rewritten={imp.legacy_rewritten_count}"
        )
        # Which rows were read in which country, e.g. "countries: VN=1200 KH=30 (local: KH)"
        self.stdout.write(
            "countries: {} (local numbers read as {})".format(
                " ".join(f"{c}={n}" for c, n in sorted(imp.country_counts.items())) or "-",
                imp.country,
            )
        )
        if imp.consent_channels:
            self.stdout.write(
                f"advertising consent recorded for: {', '.join(imp.consent_channels)}"
            )
        if imp.error_report:
            self.stdout.write(f"error report: {imp.error_report.path}")
        self.stdout.write(self.style.SUCCESS(f"import {imp.pk} completed into “{contact_list}”"))

    def _titles(self, imp: ContactImport) -> list[str]:
        return contact_import_preview(imp=imp).header

    @staticmethod
    def _title(titles: list[str], idx) -> str:
        if not isinstance(idx, int):
            return "-"
        return titles[idx] if idx < len(titles) else f"column {idx + 1}"

    @staticmethod
    def _column(wanted: str, titles: list[str]) -> int:
        if wanted.isdigit() and 1 <= int(wanted) <= len(titles):
            return int(wanted) - 1
        slugs = [slugify_header(t) for t in titles]
        if slugify_header(wanted) in slugs:
            return slugs.index(slugify_header(wanted))
        raise CommandError(f"No column {wanted!r}; the columns are: {', '.join(titles)}")
