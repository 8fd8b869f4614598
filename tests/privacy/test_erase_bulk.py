"""Bulk erase by an uploaded file, through the admin: upload, read the counts, confirm, the
background task erases (django-q2 runs inline in tests), the report; the file is never stored."""

from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from campaigns.contacts.importing.run import contact_import_run
from campaigns.models import Campaign, Contact, ContactImport, ContactList, Message
from campaigns.privacy.erasure import phone_token
from campaigns.privacy.models import AuditEvent, ErasedPhone, ErasureJob
from tests.factories import CampaignFactory, ContactFactory, message_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.LANGUAGE_CODE = "en"


def _xlsx(rows) -> bytes:
    from openpyxl import Workbook

    wb = Workbook()
    for row in rows:
        wb.active.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_bulk_erase_by_file_in_the_admin(admin_client, settings, kind):
    people = [
        ContactFactory(phone=p, name=f"Người {i}")
        for i, p in enumerate(["84389000001", "84389000002", "84389000003"])
    ]
    keep = ContactFactory(phone="84389000009", name="Ở lại")
    campaign = CampaignFactory()
    Message.objects.bulk_create(
        [message_for(campaign, c, status="delivered", fee=250) for c in [*people, keep]]
    )
    Campaign.objects.filter(pk=campaign.pk).update(delivered_count=4, cost=1000)
    rows = [
        ["SĐT", "ghi chú"],
        ["0389000001", "x"],
        ["+84 389 000 002", ""],
        ["84389000003", ""],
        ["0389000777", "not in Loa"],
        ["không có số", ""],
    ]
    content = (
        _xlsx(rows) if kind == "xlsx" else "\n".join(",".join(r) for r in rows).encode("utf-8")
    )
    upload = SimpleUploadedFile(f"xoa.{kind}", content)
    resp = admin_client.post(reverse("admin:privacy_erasurejob_add"), {"file": upload})
    assert resp.status_code == 302, resp.content.decode()[:2000]
    job = ErasureJob.objects.get()
    assert (job.found_count, job.absent_count, job.invalid_rows) == (3, 1, 1)
    assert job.status == ErasureJob.Status.PENDING
    page = admin_client.get(resp["Location"]).content.decode()
    assert "3 contacts will be erased" in page and "1 numbers are not in Loa" in page
    assert "cannot erase" in page
    # Nothing erased before the confirmation; the uploaded file is not kept anywhere.
    assert Contact.objects.get(pk=people[0].pk).name == "Người 0"
    media = settings.MEDIA_ROOT
    assert not media.exists() or not any(p.is_file() for p in media.rglob("*"))

    resp = admin_client.post(reverse("admin:privacy_erasurejob_start", args=[job.pk]))
    assert resp.status_code == 302
    job.refresh_from_db()
    assert job.status == ErasureJob.Status.COMPLETED, job.error_message
    assert job.erased_count == 3 and job.contact_ids == [] and job.absent_tokens == []
    assert any("3 contacts erased" in line for line in job.report)
    for c in people:
        c.refresh_from_db()
        assert c.is_erased and c.name == ""
    keep.refresh_from_db()
    assert keep.name == "Ở lại" and not keep.is_erased
    campaign.refresh_from_db()
    assert campaign.delivered_count == 4 and campaign.cost == 1000
    assert sorted(Message.objects.values_list("fee", flat=True)) == [250] * 4
    # The number Loa did not hold is suppressed too: a later import refuses it.
    assert ErasedPhone.objects.filter(token=phone_token("84389000777")).exists()
    imp = ContactImport.objects.create(
        file=SimpleUploadedFile("later.csv", b"phone\n0389000777\n0389000555\n"),
        original_name="later.csv",
        contact_list=ContactList.objects.create(name="later"),
    )
    contact_import_run(import_id=imp.pk)
    imp.refresh_from_db()
    assert (imp.imported_count, imp.invalid_count) == (1, 1)
    assert AuditEvent.objects.filter(action="contact.erase", rows=3).exists()
    # Started twice: the second start is refused, nothing runs again.
    resp = admin_client.post(reverse("admin:privacy_erasurejob_start", args=[job.pk]), follow=True)
    assert "already started" in resp.content.decode()


def test_a_file_without_phones_is_refused_with_a_clear_error(admin_client):
    upload = SimpleUploadedFile("x.csv", b"name\nAn\nBinh\n")
    resp = admin_client.post(reverse("admin:privacy_erasurejob_add"), {"file": upload})
    assert resp.status_code == 200
    assert "No phone number was found" in resp.content.decode()
    assert not ErasureJob.objects.exists()


def test_bulk_erase_pages_need_the_erase_permission(client):
    from django.contrib.auth import get_user_model

    staff = get_user_model().objects.create_user("m", password="pw", is_staff=True)
    client.force_login(staff)
    assert client.get(reverse("admin:privacy_erasurejob_add")).status_code == 403
    assert client.get(reverse("admin:privacy_erasurejob_changelist")).status_code == 403
