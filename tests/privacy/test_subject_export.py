"""Subject access: everything Loa holds about a phone in one file (JSON and XLSX), from the contact
page and from manage.py subject_export; every message is in it; the export is audited."""

from __future__ import annotations

import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from campaigns.contacts.importing.run import contact_import_run
from campaigns.models import (
    CampaignTestSend,
    Contact,
    ContactImport,
    ContactList,
    Message,
    MessageAttempt,
    OptOut,
)
from campaigns.privacy.models import AuditEvent
from campaigns.privacy.services import consent_record
from tests.factories import CampaignFactory, ProviderAccountFactory, message_for
from webhooks.models import InboundMessage, WebhookEvent

pytestmark = pytest.mark.django_db

PHONE = "84389123457"


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.LANGUAGE_CODE = "en"


@pytest.fixture
def person():
    """A person imported from a file, on a list, messaged by two campaigns (three messages in
    all, one failed after two attempts), who replied once and gave then withdrew a consent."""
    imp = ContactImport.objects.create(
        file=SimpleUploadedFile("k.csv", "phone,name,city\n0389123457,Lê Thị Hỏi,Huế\n".encode()),
        original_name="k.csv",
        contact_list=ContactList.objects.create(name="Huế"),
    )
    contact_import_run(import_id=imp.pk)
    contact = Contact.objects.get(phone=PHONE)
    c1, c2 = CampaignFactory(name="Tết"), CampaignFactory(name="Hè")
    c3 = CampaignFactory(name="Thu", channel=c1.channel, template=c1.template)
    Message.objects.bulk_create(
        [
            message_for(
                c1,
                contact,
                template_data={"customer_name": "Lê Thị Hỏi"},
                status="delivered",
                fee=300,
            ),
            message_for(c2, contact, status="failed", error_code="-114", attempts=2),
            message_for(c3, contact, status="sent", sent_at=timezone.now()),
        ]
    )
    failed = Message.objects.get(campaign=c2)
    MessageAttempt.objects.create(
        message=failed, status_code=200, request_body='{"Phone":"0389123457"}'
    )
    MessageAttempt.objects.create(
        message=failed, status_code=200, response_body='{"CodeResult":"-114"}'
    )
    account = ProviderAccountFactory(kind="esms")
    event = WebhookEvent.objects.create(
        account=account, method="GET", query="phonenumber=0389123457", message=failed
    )
    InboundMessage.objects.create(
        account=account, contact=contact, sender=PHONE, phone=PHONE, text="Cho tôi hỏi", event=event
    )
    OptOut.objects.create(contact=contact, channel_kind="sms", reason="asked")
    CampaignTestSend.objects.create(
        campaign=c1, phone=PHONE, contact=contact, content="Chào Hỏi", outcome="accepted"
    )
    consent_record(
        contact=contact, channel_kind="zalo_zns", granted=True, source="form", actor="system"
    )
    return contact


def test_json_export_from_the_contact_page_holds_every_message(admin_client, person):
    url = reverse("admin:campaigns_contact_subject_export", args=[person.pk])
    resp = admin_client.get(url, {"format": "json"})
    assert resp.status_code == 200
    assert resp["Content-Disposition"].startswith('attachment; filename="subject-84389123457-')
    doc = json.loads(resp.content)
    sections = doc["sections"]
    assert doc["phone"] == PHONE
    assert sections["contact"]["rows"][0]["name"] == "Lê Thị Hỏi"
    assert sections["attributes"]["rows"] == [{"attribute": "city", "value": "Huế"}]
    assert [r["list"] for r in sections["lists"]["rows"]] == ["Huế"]
    messages = sections["messages"]["rows"]
    assert len(messages) == Message.objects.filter(contact=person).count() == 3
    assert {m["campaign"] for m in messages} == {"Tết", "Hè", "Thu"}
    tet = next(m for m in messages if m["campaign"] == "Tết")
    assert (
        json.loads(tet["parameters"]) == {"customer_name": "Lê Thị Hỏi"} and tet["fee"] == "300.00"
    )
    assert len(sections["attempts"]["rows"]) == 2
    assert sections["replies"]["rows"][0]["text"] == "Cho tôi hỏi"
    assert sections["webhook_events"]["rows"][0]["query"] == "phonenumber=0389123457"
    assert sections["opt_outs"]["rows"][0]["reason"] == "asked"
    assert sections["test_sends"]["rows"][0]["text"] == "Chào Hỏi"
    assert sections["consents"]["rows"][0]["granted"] is True
    imports = sections["imports"]["rows"]
    assert imports[0]["file_name"] == "k.csv" and imports[0]["rows"] == "2"
    event = AuditEvent.objects.get(action="subject.export")
    total = sum(len(s["rows"]) for s in sections.values())
    assert event.rows == total and event.target_id == str(person.pk)


def test_xlsx_export_has_a_sheet_per_section(admin_client, person):
    from openpyxl import load_workbook

    url = reverse("admin:campaigns_contact_subject_export", args=[person.pk])
    resp = admin_client.get(url, {"format": "xlsx"})
    assert resp.status_code == 200
    wb = load_workbook(io.BytesIO(resp.content), read_only=True)
    assert {"Contact", "Messages", "Replies", "Imports", "Consents"} <= set(wb.sheetnames)
    rows = list(wb["Messages"].iter_rows(values_only=True))
    assert len(rows) == 1 + 3 and "campaign" in rows[0]


def test_command_takes_any_phone_format(person, tmp_path):
    out = tmp_path / "p.json"
    stdout = io.StringIO()
    call_command(
        "subject_export", "+84 389 123 457", "--format", "json", "--output", str(out), stdout=stdout
    )
    doc = json.loads(out.read_text())
    assert len(doc["sections"]["messages"]["rows"]) == 3
    assert "rows (json)" in stdout.getvalue()
    assert AuditEvent.objects.filter(
        action="subject.export", actor_label="system:manage.py"
    ).exists()
    with pytest.raises(CommandError, match="not a phone number"):
        call_command("subject_export", "hello", "--output", str(tmp_path / "x"))


def test_export_of_a_number_loa_does_not_hold_says_so(tmp_path):
    out = tmp_path / "none.json"
    call_command("subject_export", "0912000111", "--format", "json", "--output", str(out))
    doc = json.loads(out.read_text())
    assert doc["sections"]["contact"]["rows"][0]["in_loa"] is False
    assert doc["sections"]["messages"]["rows"] == []
    # The trail names such a number by its token, never the phone itself.
    assert "912000111" not in AuditEvent.objects.get(action="subject.export").target_label


def test_export_needs_its_permission(client, person):
    from django.contrib.auth import get_user_model

    staff = get_user_model().objects.create_user("viewer", password="pw", is_staff=True)
    client.force_login(staff)
    url = reverse("admin:campaigns_contact_subject_export", args=[person.pk])
    assert client.get(url).status_code == 403
    assert not AuditEvent.objects.filter(action="subject.export").exists()
