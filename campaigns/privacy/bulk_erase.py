"""Erase requests: one person from the contact page (`contact_erase`), or a bulk erase from an uploaded file of phones (CSV or XLSX: one number a row, in any column and
any format; a header row is fine).

1. `erasure_job_prepare`: the file is read in the request and never stored (it is a list of the
   very people who asked to be forgotten): the job keeps the ids of the contacts found, the tokens
   of the numbers Loa does not hold (they are suppressed too, so a later import cannot bring them
   in), and counts. The page then says what will happen and asks for confirmation.
2. `erasure_job_start`: queued in the background (django-q2), recorded in the audit trail.
3. `erasure_job_run`: campaigns.privacy.erasure.contacts_erase in batches, the job's progress
   updated after each; the stored files are redacted once at the end.
"""

from __future__ import annotations

import csv
import io
import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from campaigns.models import Contact
from campaigns.privacy.erasure import contacts_erase, erasure_finish, is_erased_value, phone_token
from campaigns.privacy.models import AuditAction, ErasedPhone, ErasureJob
from campaigns.privacy.services import audit_record
from providers.shared.errors import Refused
from providers.shared.phones import fast_mobile, normalize_phone

logger = logging.getLogger("loa.privacy")

MAX_BYTES = 50 * 1024 * 1024
MAX_ROWS = 1_000_000
TASK = "campaigns.privacy.bulk_erase.erasure_job_run"
LOOKUP_CHUNK = 5000


def _rows(content: bytes, filename: str):
    """The file's rows as lists of strings."""
    if filename.lower().endswith((".xlsx", ".xlsm")) or content[:2] == b"PK":
        from openpyxl import load_workbook  # noqa: PLC0415 - heavy, only for a workbook

        try:
            wb = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises many types for a broken workbook
            raise Refused(
                _("The Excel workbook could not be read ({error}).").format(error=exc),
                code="erase_file_unreadable",
            ) from exc
        try:
            for values in wb.worksheets[0].iter_rows(values_only=True):
                yield [
                    str(int(v)) if isinstance(v, float) and v.is_integer() else str(v or "")
                    for v in values
                ]
        finally:
            wb.close()
        return
    for encoding in ("utf-8-sig", "utf-16", "cp1258"):
        try:
            text = content.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:  # cp1258 decodes nearly anything; kept for the type checker
        text = content.decode("utf-8", errors="replace")
    sample = text[:4096]
    delimiter = max(",;\t|", key=sample.count) if any(d in sample for d in ",;\t|") else ","
    yield from csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)


def erasure_job_prepare(*, content: bytes, filename: str, actor=None) -> ErasureJob:
    """Read the file, find the contacts; the job waits for confirmation. Raises Refused for a file
    that cannot be read, is too large, or holds no phone."""
    if len(content) > MAX_BYTES:
        raise Refused(_("The file is larger than 50 MB."), code="erase_file_too_large")
    phones: set[str] = set()
    rows = invalid = 0
    for row in _rows(content, filename):
        if not any(c.strip() for c in row):
            continue
        rows += 1
        if rows > MAX_ROWS:
            raise Refused(
                _("The file has more than {n} rows. Split it into smaller files.").format(
                    n=f"{MAX_ROWS:,}"
                ),
                code="erase_file_too_many_rows",
            )
        for cell in row:
            phone = fast_mobile(cell.strip())  # the common case, without phonenumbers
            if phone is None and cell.strip():
                result = normalize_phone(cell, mobile_only=False)
                phone = result.phone if result.ok else None
            if phone is not None:
                phones.add(phone)
                break
        else:
            invalid += 1
    if not phones:
        raise Refused(
            _("No phone number was found in the file (one number a row, any column)."),
            code="erase_file_no_phone",
        )
    found: dict[str, int] = {}
    ordered = sorted(phones)
    for i in range(0, len(ordered), LOOKUP_CHUNK):
        found.update(
            Contact.objects.filter(phone__in=ordered[i : i + LOOKUP_CHUNK]).values_list(
                "phone", "pk"
            )
        )
    absent = [phone_token(p) for p in ordered if p not in found]
    # A header row ("phone", "SĐT") is no number: not counted as a row without one.
    if invalid and rows:
        invalid -= 1 if _has_header(content, filename) else 0
    return ErasureJob.objects.create(
        original_name=filename[:255],
        rows=rows,
        invalid_rows=invalid,
        contact_ids=sorted(found.values()),
        absent_tokens=absent,
        found_count=len(found),
        absent_count=len(absent),
        created_by=actor if getattr(actor, "pk", None) else None,
    )


def _has_header(content: bytes, filename: str) -> bool:
    for row in _rows(content, filename):
        if any(c.strip() for c in row):
            return not any(normalize_phone(c, mobile_only=False).ok for c in row if c.strip())
    return False


def erasure_job_start(*, job_id: int, actor=None, request=None) -> bool:
    """Queue a job waiting for confirmation; False when it is not waiting (started already)."""
    from django_q.tasks import async_task  # noqa: PLC0415 - django-q2 loads the ORM

    with transaction.atomic():
        n = ErasureJob.objects.filter(pk=job_id, status=ErasureJob.Status.PENDING).update(
            status=ErasureJob.Status.QUEUED
        )
        if not n:
            return False
        job = ErasureJob.objects.get(pk=job_id)
        audit_record(
            action=AuditAction.CONTACT_ERASE,
            actor=actor,
            request=request,
            target=job,
            rows=job.found_count,
            detail={"bulk": True, "not_in_loa": job.absent_count, "rows": job.rows},
        )
        transaction.on_commit(lambda: async_task(TASK, job_id, group="erasure"))
    return True


def erasure_job_run(job_id: int) -> dict:
    """The background task: erase, suppress the absent numbers, redact the files, report."""
    n = ErasureJob.objects.filter(
        pk=job_id, status__in=[ErasureJob.Status.QUEUED, ErasureJob.Status.RUNNING]
    ).update(status=ErasureJob.Status.RUNNING, started_at=timezone.now())
    if not n:
        return {"skipped": True}
    job = ErasureJob.objects.get(pk=job_id)
    try:
        ErasedPhone.objects.bulk_create(
            [ErasedPhone(token=t) for t in job.absent_tokens],
            ignore_conflicts=True,
            batch_size=1000,
        )

        def progress(done: int) -> None:
            ErasureJob.objects.filter(pk=job_id).update(erased_count=done)

        result = contacts_erase(
            contact_ids=job.contact_ids,
            progress=progress,
            finish=False,
            batch_size=getattr(settings, "LOA_ERASURE_BATCH_SIZE", 2000),
        )
        erasure_finish(phones=result.phones)
    except Exception as exc:
        logger.exception("bulk erase %s failed", job_id)
        ErasureJob.objects.filter(pk=job_id).update(
            status=ErasureJob.Status.FAILED,
            error_message=str(exc)[:2000],
            finished_at=timezone.now(),
        )
        raise
    report = [
        _("{n} contacts erased.").format(n=f"{result.contacts:,}"),
        _("{n} were already erased.").format(n=f"{result.already:,}"),
        _("{n} numbers were not in Loa; they are suppressed from future imports.").format(
            n=f"{job.absent_count:,}"
        ),
        _("{n} rows held no phone number.").format(n=f"{job.invalid_rows:,}"),
        _(
            "{n} messages and {a} sending attempts rewritten; campaign counts and costs kept."
        ).format(n=f"{result.messages:,}", a=f"{result.attempts:,}"),
    ]
    ErasureJob.objects.filter(pk=job_id).update(
        status=ErasureJob.Status.COMPLETED,
        erased_count=result.contacts + result.already,
        report=report,
        contact_ids=[],
        absent_tokens=[],
        finished_at=timezone.now(),
    )
    return {"erased": result.contacts, "messages": result.messages}


def contact_erase(*, contact: Contact, actor=None, request=None):
    """Erase one person (the contact page's "Erase this person", after its confirmation), and
    record it in the audit trail. Refused for a contact already erased."""
    if is_erased_value(contact.phone):
        raise Refused(_("This contact was already erased."), code="already_erased")
    contact_id = contact.pk
    result = contacts_erase(contact_ids=[contact_id])
    contact.refresh_from_db()
    audit_record(
        action=AuditAction.CONTACT_ERASE,
        actor=actor,
        request=request,
        target=contact,  # its label is the token now
        rows=result.messages,
        detail={"messages": result.messages, "attempts": result.attempts},
    )
    return result
