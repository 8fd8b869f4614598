"""Erasure on request, through the real path: a person imported twice (a CSV and an XLSX, both
stored in MEDIA_ROOT, one with its error report), messaged through eSMS (HTTP mocked at the
requests seam), called back, who replied on an MMP channel, is erased from the contact page. Then
no table (dumpdata and every text column) and no file under MEDIA_ROOT holds the phone in any
stored form or the name; the campaign's counts and costs are unchanged; a re-import of the number
is refused and reported."""

from __future__ import annotations

import io
import json
import logging
import zipfile
from decimal import Decimal
from pathlib import Path

import pytest
import responses
from django.apps import apps
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse

from campaigns.contacts.importing.run import contact_import_run
from campaigns.engine.lifecycle import campaign_send_now
from campaigns.models import Campaign, Contact, ContactImport, ContactList, Message, OptOut
from campaigns.privacy.erasure import contact_token, phone_token
from campaigns.privacy.models import AuditEvent, ErasedPhone
from tests.factories import CampaignFactory, ChannelFactory, ProviderAccountFactory, TemplateFactory
from webhooks.models import InboundMessage, WebhookEvent

pytestmark = pytest.mark.django_db(transaction=True)

ESMS_V4 = "https://rest.esms.vn/MainService.svc/json/SendZaloMessage_V4_post_json/"
PHONE = "84389123457"
LOCAL = "0389123457"
NAME = "Phạm Thị Xoá"
FOLDED = "pham thi xoa"
# Every stored form: 84..., +84..., 0... all contain the national number; the page form has spaces.
FORBIDDEN = ["389123457", "0389 123 457", "389 123 457", NAME, FOLDED]
KEEP_PHONE = "84912345678"

SEED = json.loads(
    (
        Path(__file__).resolve().parents[1] / "fixtures" / "mmp" / "webhook_conversation.json"
    ).read_text()
)


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    """A media folder of this test's own: the scan reads every file in it."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.LANGUAGE_CODE = "en"


def _import(content: bytes, name: str, list_name: str) -> ContactImport:
    imp = ContactImport.objects.create(
        file=SimpleUploadedFile(name, content),
        original_name=name,
        contact_list=ContactList.objects.get_or_create(name=list_name)[0],
    )
    contact_import_run(import_id=imp.pk)
    imp.refresh_from_db()
    assert imp.status == ContactImport.Status.COMPLETED, imp.error_message
    return imp


def _xlsx(rows) -> bytes:
    from openpyxl import Workbook

    wb = Workbook()
    for row in rows:
        wb.active.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _media_texts(root: Path) -> dict[str, str]:
    """Every file under MEDIA_ROOT as text (an XLSX: its XML parts)."""
    out = {}
    for path in root.rglob("*"):
        if not path.is_file():
            continue
        data = path.read_bytes()
        if data[:2] == b"PK":
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                out[str(path)] = " ".join(
                    z.read(n).decode("utf-8", "replace") for n in z.namelist()
                )
        else:
            out[str(path)] = data.decode("utf-8-sig", "replace")
    return out


def _database_texts() -> list[str]:
    """Every row of every model as text (all columns), and the whole dumpdata."""
    texts = []
    for model in apps.get_models():
        for row in model._base_manager.values_list():
            texts.append(f"{model._meta.label} {json.dumps(row, default=str, ensure_ascii=False)}")
    out = io.StringIO()
    call_command("dumpdata", stdout=out)
    texts.append("dumpdata " + out.getvalue())
    return texts


def _leaks(texts) -> list[str]:
    return [f"{bad!r} in {t[:200]}" for t in texts for bad in FORBIDDEN if bad in t]


def _send_campaign(contact_list) -> Campaign:
    account = ProviderAccountFactory(
        kind="esms", secrets={"api_key": "APIKEY123", "secret_key": "SECRET456"}
    )
    channel = ChannelFactory(account=account, official_account__oa_id="4097311281936189049")
    template = TemplateFactory(
        account=account, provider_template_id="205644", params=["customer_name", "order_code"]
    )
    campaign = CampaignFactory(channel=channel, template=template, lists=[contact_list])
    calls = []

    def reply(request):
        calls.append(json.loads(request.body))
        return 200, {}, json.dumps({"CodeResult": "100", "SMSID": f"sms-{len(calls)}"})

    responses.add_callback(responses.POST, ESMS_V4, callback=reply, content_type="application/json")
    campaign_send_now(campaign_id=campaign.pk)
    assert len(calls) == 2 and {c["Phone"] for c in calls} == {LOCAL, "0912345678"}
    return campaign


def _callback(client, campaign, phone_local: str, smsid: str, price: str):
    url = reverse("webhooks:receive", args=[campaign.channel.account.webhook_token])
    q = {
        "SMSID": smsid,
        "SendFailed": "0",
        "SendStatus": "5",
        "SendSuccess": "1",
        "TotalPrice": price,
        "RequestId": "",
        "TypeId": "25",
        "phonenumber": phone_local,
    }
    assert client.get(url, q).status_code == 200


@responses.activate
def test_erase_a_messaged_replying_twice_imported_person_leaves_no_trace(
    admin_client, settings, caplog
):
    # Every log record of the whole journey (imports, send, callbacks, reply, erase, re-import),
    # at every level: Loa's own log lines never carry the phone or the name, before or after.
    caplog.set_level(logging.DEBUG)
    first = _import(
        f"SĐT,Họ tên,order\n{LOCAL},{NAME},DH001\n0912345678,Trần Văn Giữ,DH002\n".encode(),
        "khach.csv",
        "Khách VIP",
    )
    second = _import(
        _xlsx(
            [
                ["phone", "name", "order"],
                ["+84 389 123 457", NAME, "DH009"],
                ["0912345678", "Trần Văn Giữ", "DH010"],
                [LOCAL, "lặp lại", "DH011"],  # a duplicate: its value goes to the error report
            ]
        ),
        "khach.xlsx",
        "Khách VIP",
    )
    assert second.error_report, "the duplicate row is reported"
    person = Contact.objects.get(phone=PHONE)
    assert person.name == NAME
    campaign = _send_campaign(ContactList.objects.get(name="Khách VIP"))

    mine = Message.objects.get(campaign=campaign, contact=person)
    other = Message.objects.get(campaign=campaign, phone=KEEP_PHONE)
    _callback(admin_client, campaign, LOCAL, mine.provider_message_id, "300.0000")
    _callback(admin_client, campaign, "0912345678", other.provider_message_id, "300.0000")
    # A callback no message claims (unknown id) naming the number: kept raw, unlinked.
    _callback(admin_client, campaign, LOCAL, "sms-unknown", "0")
    assert WebhookEvent.objects.filter(message=None, query__contains=LOCAL).exists()

    # The person replies on an MMP channel (seed 000's conversation webhook).
    mmp = ProviderAccountFactory(kind="vna_mmp", secrets={"api_key": "k"})
    ChannelFactory(
        account=mmp, kind="viber_bot", official_account=None, external_id=SEED["channelId"]
    )
    payload = {
        **SEED,
        "message": {"type": "text", "message": f"Tôi là {NAME}, số {LOCAL}"},
        "contact": {**SEED["contact"], "name": NAME, "phone": LOCAL},
    }
    url = reverse("webhooks:receive", args=[mmp.webhook_token])
    assert (
        admin_client.post(url, json.dumps(payload), content_type="application/json").status_code
        == 200
    )
    reply = InboundMessage.objects.get()
    assert reply.contact == person

    # The admin's history names the contact (its str: name and phone).
    LogEntry.objects.create(
        user_id=LogEntry.objects.model._meta.get_field("user").related_model.objects.first().pk,
        content_type=ContentType.objects.get_for_model(Contact),
        object_id=str(person.pk),
        object_repr=str(person)[:200],
        action_flag=CHANGE,
        change_message=f"Changed name: {NAME}",
    )
    # Someone looked at the contact (the audit trail labels it with name and phone).
    assert (
        admin_client.get(reverse("admin:campaigns_contact_change", args=[person.pk])).status_code
        == 200
    )

    campaign.refresh_from_db()
    before = {
        f: getattr(campaign, f)
        for f in ("total_count", "sent_count", "delivered_count", "failed_count", "cost")
    }
    assert before["delivered_count"] == 2 and before["cost"] == Decimal("600.00")
    fees = dict(Message.objects.values_list("pk", "fee"))
    media = Path(settings.MEDIA_ROOT)
    assert _leaks(_media_texts(media).values()), "the files hold the person before the erase"
    assert _leaks(_database_texts())

    # The confirmation page says what is erased and what cannot be.
    erase_url = reverse("admin:campaigns_contact_erase", args=[person.pk])
    page = admin_client.get(erase_url).content.decode()
    assert "irreversible token" in page
    assert "What Loa cannot erase" in page and "providers" in page
    assert "messages already delivered to the person" in page
    resp = admin_client.post(erase_url)
    assert resp.status_code == 302

    leaks = _leaks(_database_texts()) + _leaks(
        f"{path}: {text}" for path, text in _media_texts(media).items()
    )
    assert leaks == []

    person.refresh_from_db()
    token = contact_token(phone_token(PHONE))
    assert person.phone == token and person.name == "" and person.attributes == {}
    assert person.is_erased
    assert OptOut.objects.filter(contact=person, channel_kind=OptOut.ALL).exists()
    assert ErasedPhone.objects.filter(token=phone_token(PHONE)).exists()
    mine.refresh_from_db()
    assert mine.phone == token and mine.status == Message.Status.DELIVERED
    assert set(mine.template_data.values()) == {"***"}
    assert dict(Message.objects.values_list("pk", "fee")) == fees
    campaign.refresh_from_db()
    assert {f: getattr(campaign, f) for f in before} == before
    # The other person is untouched.
    assert Contact.objects.get(phone=KEEP_PHONE).name == "Trần Văn Giữ"
    other.refresh_from_db()
    assert other.template_data["customer_name"] == "Trần Văn Giữ"
    # The stored files still hold the other person's rows (rewritten, not deleted).
    assert any("912345678" in t for t in _media_texts(media).values())
    first.refresh_from_db()
    assert first.file and first.encoding == "utf-8-sig"
    # The erase is in the audit trail.
    assert AuditEvent.objects.filter(action="contact.erase", target_label=token).exists()
    # The contact page and the search still work on a token.
    assert (
        admin_client.get(reverse("admin:campaigns_contact_change", args=[person.pk])).status_code
        == 200
    )
    assert (
        admin_client.get(reverse("admin:campaigns_contact_changelist"), {"q": token}).status_code
        == 200
    )
    assert admin_client.get(reverse("admin:campaigns_message_changelist")).status_code == 200

    # Imported again: refused as "erased on request", reported, not imported; the stored copy of
    # that upload keeps no row of the person.
    again = _import(
        f"phone,name\n{LOCAL},{NAME}\n0987000111,Người Mới\n".encode(), "lai.csv", "Lại"
    )
    assert again.invalid_count == 1 and again.imported_count == 1
    assert not Contact.objects.filter(phone=PHONE).exists()
    with again.error_report.open("rb") as fh:
        report = fh.read().decode("utf-8-sig")
    assert "Erased on request" in report and "389123457" not in report
    assert _leaks(f"{p}: {t}" for p, t in _media_texts(media).items()) == []
    assert caplog.records and _leaks([caplog.text]) == []


def test_a_new_consent_lifts_the_suppression(settings):
    from campaigns.privacy.bulk_erase import contact_erase
    from campaigns.privacy.erasure import erased_phone_consent_again

    contact = Contact.objects.create(phone=PHONE, name=NAME)
    contact_erase(contact=contact, actor="system")
    blocked = _import(f"phone\n{LOCAL}\n".encode(), "a.csv", "A")
    assert blocked.invalid_count == 1 and blocked.imported_count == 0
    assert erased_phone_consent_again(phone="+84 389 123 457")
    taken = _import(f"phone\n{LOCAL}\n".encode(), "b.csv", "B")
    assert taken.imported_count == 1
    assert Contact.objects.filter(phone=PHONE).exists()


def test_erase_twice_is_refused_and_without_permission_forbidden(admin_client):
    from django.contrib.auth import get_user_model
    from django.test import Client

    contact = Contact.objects.create(phone=PHONE, name=NAME)
    url = reverse("admin:campaigns_contact_erase", args=[contact.pk])
    staff = get_user_model().objects.create_user("staff", password="pw", is_staff=True)
    client = Client()
    client.force_login(staff)
    assert client.get(url).status_code == 403
    assert client.post(url).status_code == 403
    assert admin_client.post(url).status_code == 302
    contact.refresh_from_db()
    assert contact.is_erased
    resp = admin_client.post(url, follow=True)
    assert "already erased" in resp.content.decode()


def test_a_stored_file_the_import_could_not_read_is_deleted_when_it_holds_the_number(settings):
    from campaigns.privacy.bulk_erase import contact_erase

    unreadable = ContactImport.objects.create(
        file=SimpleUploadedFile("broken.csv", b"\x00\x01\x02\x00 0389123457 \x00\xff\xfe\x00" * 50),
        original_name="broken.csv",
        contact_list=ContactList.objects.create(name="broken"),
        status=ContactImport.Status.FAILED,
    )
    other = ContactImport.objects.create(
        file=SimpleUploadedFile("other.csv", b"\x00\x01\x02\x00 0912345678 \x00\xff" * 50),
        original_name="other.csv",
        contact_list=ContactList.objects.get(name="broken"),
        status=ContactImport.Status.FAILED,
    )
    path = Path(unreadable.file.path)
    contact_erase(contact=Contact.objects.create(phone=PHONE, name=NAME), actor="system")
    unreadable.refresh_from_db()
    other.refresh_from_db()
    assert not unreadable.file and not path.exists()
    assert other.file and Path(other.file.path).exists()
