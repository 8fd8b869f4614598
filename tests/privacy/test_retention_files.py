"""Retention of personal data in files and raw bodies: import files and error reports go after
LOA_IMPORT_FILE_RETENTION_DAYS, raw webhook bodies after LOA_WEBHOOK_BODY_RETENTION_DAYS (rows
kept), both by the daily purge (purge_old_data)."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from campaigns.contacts.importing.run import contact_import_run
from campaigns.models import ContactImport, ContactList
from tests.factories import ProviderAccountFactory
from webhooks.management.commands.purge_old_data import data_purge
from webhooks.models import WebhookEvent

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.LANGUAGE_CODE = "en"


def _import(name: str, days_ago: int) -> ContactImport:
    imp = ContactImport.objects.create(
        file=SimpleUploadedFile(name, b"phone,name\n0389123457,An\nabc,bad\n"),
        original_name=name,
        contact_list=ContactList.objects.get_or_create(name="r")[0],
    )
    contact_import_run(import_id=imp.pk)
    ContactImport.objects.filter(pk=imp.pk).update(
        created_at=timezone.now() - timedelta(days=days_ago)
    )
    imp.refresh_from_db()
    assert imp.file and imp.error_report
    return imp


def test_import_files_and_reports_are_removed_after_the_retention(admin_client, settings):
    settings.LOA_IMPORT_FILE_RETENTION_DAYS = 30
    old, recent = _import("old.csv", 31), _import("new.csv", 29)
    old_paths = [old.file.path, old.error_report.path]
    result = data_purge()
    assert result["import_files"] == 2
    old.refresh_from_db()
    recent.refresh_from_db()
    assert not old.file and not old.error_report
    assert old.imported_count == 1 and old.invalid_count == 1  # the row and its counts stay
    assert all(not Path(p).exists() for p in old_paths)
    assert recent.file and recent.error_report
    assert recent.file.storage.exists(recent.file.name)
    # The import's page still opens without its file.
    page = admin_client.get(reverse("admin:campaigns_contactimport_change", args=[old.pk]))
    assert page.status_code == 200


def test_zero_keeps_import_files(settings):
    settings.LOA_IMPORT_FILE_RETENTION_DAYS = 0
    old = _import("old.csv", 400)
    assert data_purge()["import_files"] == 0
    old.refresh_from_db()
    assert old.file


def test_raw_webhook_bodies_are_blanked_before_their_rows_go(settings):
    settings.LOA_WEBHOOK_BODY_RETENTION_DAYS = 14
    settings.LOA_RETENTION_WEBHOOK_DAYS = 90
    account = ProviderAccountFactory(kind="esms")

    def event(days: int, outcome: str) -> WebhookEvent:
        e = WebhookEvent.objects.create(
            account=account,
            method="GET",
            query="phonenumber=0389123457",
            body='{"phone":"0389123457"}',
            headers={"X-Forwarded-For": "1.2.3.4"},
            outcome=outcome,
        )
        WebhookEvent.objects.filter(pk=e.pk).update(
            received_at=timezone.now() - timedelta(days=days)
        )
        return e

    applied_old = event(15, WebhookEvent.Outcome.APPLIED)
    applied_new = event(13, WebhookEvent.Outcome.APPLIED)
    failed_old = event(15, WebhookEvent.Outcome.FAILED)  # waits for a person's "Re-apply"
    gone = event(91, WebhookEvent.Outcome.APPLIED)
    stdout = io.StringIO()
    call_command("purge_old_data", "--no-schedule", stdout=stdout)
    assert "blanked: 1 webhook bodies" in stdout.getvalue()
    applied_old.refresh_from_db()
    assert (applied_old.body, applied_old.query, applied_old.headers) == ("", "", {})
    assert applied_old.outcome == WebhookEvent.Outcome.APPLIED  # the row and its outcome stay
    applied_new.refresh_from_db()
    failed_old.refresh_from_db()
    assert "0389123457" in applied_new.body and "0389123457" in failed_old.body
    assert not WebhookEvent.objects.filter(pk=gone.pk).exists()
    assert data_purge(dry_run=True)["webhook_bodies"] == 0
