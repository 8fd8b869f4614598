"""Contact import: stream a CSV, normalize phones, upsert contacts, add them to a list.

Counts always add up: total = imported + updated + duplicates + invalid, and every refused row
gets a reason in the error report.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from campaigns.models import Contact, ContactImport, ContactList, ContactListMembership
from campaigns.text import search_key
from providers.phones import normalize_phone

PHONE_HEADERS = {
    "phone",
    "phone_number",
    "mobile",
    "sdt",
    "sđt",
    "so_dien_thoai",
    "số điện thoại",
    "so dien thoai",
    "dien thoai",
    "điện thoại",
    "msisdn",
    "tel",
}
NAME_HEADERS = {
    "name",
    "full_name",
    "fullname",
    "ho_ten",
    "họ tên",
    "ho ten",
    "họ và tên",
    "ten",
    "tên",
    "customer",
}


def guess_column(headers: list[str], candidates: set[str]) -> str | None:
    for h in headers:
        if h.strip().lower() in candidates:
            return h
    return None


@dataclass
class ImportCounts:
    total: int = 0
    imported: int = 0
    updated: int = 0
    duplicates: int = 0
    invalid: int = 0
    legacy: int = 0
    errors: list[tuple[int, str, str]] = field(default_factory=list)


def contact_import_run(*, import_id: int) -> ImportCounts:
    imp = ContactImport.objects.select_related("contact_list").get(pk=import_id)
    ContactImport.objects.filter(pk=imp.pk).update(
        status=ContactImport.Status.RUNNING, started_at=timezone.now()
    )
    try:
        with imp.file.open("rb") as fh:
            raw = fh.read()
        text = raw.decode("utf-8-sig")
        counts = contact_import_rows(imp=imp, text=text)
    except Exception as exc:  # the import fails visibly with its reason; nothing half-counted
        ContactImport.objects.filter(pk=imp.pk).update(
            status=ContactImport.Status.FAILED,
            error_message=str(exc)[:2000],
            finished_at=timezone.now(),
        )
        raise
    return counts


def contact_import_rows(*, imp: ContactImport, text: str) -> ImportCounts:
    reader = csv.DictReader(io.StringIO(text))
    headers = reader.fieldnames or []
    mapping = imp.mapping or {}
    phone_col = mapping.get("phone") or guess_column(headers, PHONE_HEADERS)
    if not phone_col:
        raise ValueError(
            _("No phone column found; the header must include a column such as “phone” or “SĐT”.")
        )
    name_col = mapping.get("name") or guess_column(headers, NAME_HEADERS)
    attr_cols = [h for h in headers if h not in (phone_col, name_col)]
    counts = ImportCounts()
    seen: set[str] = set()
    rows: dict[str, tuple[int, str, dict]] = {}
    for rowno, row in enumerate(reader, start=2):
        counts.total += 1
        result = normalize_phone(row.get(phone_col))
        if not result.ok:
            counts.invalid += 1
            counts.errors.append((rowno, str(row.get(phone_col) or ""), result.error))
            continue
        counts.legacy += int(result.legacy_rewritten)
        if result.phone in seen:
            counts.duplicates += 1
            continue
        seen.add(result.phone)
        attrs = {
            k: (row.get(k) or "").strip() for k in attr_cols if k and (row.get(k) or "").strip()
        }
        rows[result.phone] = (rowno, (row.get(name_col) or "").strip() if name_col else "", attrs)
    _upsert(imp, rows, counts)
    report = ""
    if counts.errors:
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["row", "value", "reason"])
        for rowno, value, reason in counts.errors:
            w.writerow([rowno, _safe(value), reason])
        report = buf.getvalue()
    ContactImport.objects.filter(pk=imp.pk).update(
        status=ContactImport.Status.COMPLETED,
        total_rows=counts.total,
        processed_rows=counts.total,
        imported_count=counts.imported,
        updated_count=counts.updated,
        duplicate_count=counts.duplicates,
        invalid_count=counts.invalid,
        legacy_rewritten_count=counts.legacy,
        finished_at=timezone.now(),
    )
    if report:
        imp.refresh_from_db()
        imp.error_report.save(
            f"errors-{imp.pk}.csv", ContentFile(report.encode("utf-8-sig")), save=True
        )
    return counts


def _safe(value: str) -> str:
    """Formula-injection guard for spreadsheet exports (OWASP: = + - @ TAB CR)."""
    return "'" + value if value and value[0] in "=+-@\t\r" else value


def _upsert(
    imp: ContactImport, rows: dict[str, tuple[int, str, dict]], counts: ImportCounts
) -> None:
    phones = list(rows)
    source = f"import:{imp.original_name}"
    for i in range(0, len(phones), 2000):
        chunk = phones[i : i + 2000]
        with transaction.atomic():
            existing = {c.phone: c for c in Contact.objects.filter(phone__in=chunk)}
            new, changed = [], []
            for phone in chunk:
                rowno, name, attrs = rows[phone]
                c = existing.get(phone)
                if c is None:
                    new.append(
                        Contact(
                            phone=phone,
                            name=name,
                            attributes=attrs,
                            search_text=search_key(name, phone),
                            source=source,
                            source_import=imp,
                            source_row=rowno,
                        )
                    )
                    continue
                merged = dict(c.attributes or {})
                for k, v in attrs.items():
                    if imp.merge_policy == ContactImport.MergePolicy.OVERWRITE or not merged.get(k):
                        merged[k] = v
                new_name = (
                    name
                    if (
                        name
                        and (imp.merge_policy == ContactImport.MergePolicy.OVERWRITE or not c.name)
                    )
                    else c.name
                )
                if merged != c.attributes or new_name != c.name:
                    c.attributes, c.name = merged, new_name
                    c.search_text = search_key(new_name, phone)
                    changed.append(c)
                counts.updated += 1
            Contact.objects.bulk_create(new, batch_size=1000)
            counts.imported += len(new)
            if changed:
                Contact.objects.bulk_update(
                    changed, ["attributes", "name", "search_text"], batch_size=1000
                )
            ids = list(Contact.objects.filter(phone__in=chunk).values_list("id", flat=True))
            before = ContactListMembership.objects.filter(contact_list=imp.contact_list).count()
            ContactListMembership.objects.bulk_create(
                [
                    ContactListMembership(contact_list=imp.contact_list, contact_id=cid)
                    for cid in ids
                ],
                ignore_conflicts=True,
                batch_size=1000,
            )
            after = ContactListMembership.objects.filter(contact_list=imp.contact_list).count()
            ContactList.objects.filter(pk=imp.contact_list_id).update(
                contact_count=F("contact_count") + (after - before)
            )
        ContactImport.objects.filter(pk=imp.pk).update(
            processed_rows=min(counts.total, i + len(chunk))
        )
