"""Retention of the personal data in files: uploaded contact files and their error reports are
deleted LOA_IMPORT_FILE_RETENTION_DAYS after the upload (the import row, its counts and warnings
stay: the import's page then says the file was removed). Run by the daily purge
(webhooks/management/commands/purge_old_data.py, which also blanks old raw webhook bodies)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from campaigns.models import ContactImport

logger = logging.getLogger("loa.retention")

# An import still being read keeps its file whatever its age.
BUSY = (ContactImport.Status.QUEUED, ContactImport.Status.RUNNING)


def import_files_purge(
    *, now: datetime | None = None, days: int | None = None, dry_run: bool = False
) -> int:
    """Delete the stored file and error report of imports uploaded more than `days` ago (default
    LOA_IMPORT_FILE_RETENTION_DAYS; 0 keeps them forever). Returns the files deleted (or, with
    dry_run, that would be)."""
    days = settings.LOA_IMPORT_FILE_RETENTION_DAYS if days is None else days
    if days <= 0:
        return 0
    cutoff = (now or timezone.now()) - timedelta(days=days)
    old = (
        ContactImport.objects.filter(created_at__lt=cutoff)
        .exclude(status__in=BUSY)
        .filter(~Q(file="") | ~Q(error_report=""))
    )
    removed = 0
    for imp in old.iterator(chunk_size=200):
        for field in (imp.file, imp.error_report):
            if field and field.name:
                removed += 1
                if not dry_run:
                    # A file already gone (deleted by hand, another node's disk) is no error.
                    field.storage.delete(field.name)
        if not dry_run:
            ContactImport.objects.filter(pk=imp.pk).update(file="", error_report="")
            # An upload never started cannot start without its file: it says why.
            ContactImport.objects.filter(pk=imp.pk, status=ContactImport.Status.UPLOADED).update(
                status=ContactImport.Status.FAILED,
                error_message=_(
                    "The file was removed {days} days after its upload (data retention) before "
                    "the import was started. Upload it again."
                ).format(days=days),
            )
    if removed and not dry_run:
        logger.info("retention: %s import files removed (older than %s days)", removed, days)
    return removed
