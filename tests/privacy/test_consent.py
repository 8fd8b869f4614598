"""Consent (issue 21): recorded from every source, withdrawn by every opt-out path, with the
current state kept beside the history. Through the real paths: the admin's pages (admin client),
the import command and the admin upload, the webhook endpoint for STOP replies."""

import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from campaigns.contacts.importing.run import contact_import_run
from campaigns.contacts.optout import contact_opt_out
from campaigns.models import Contact, ContactImport, OptOut
from campaigns.privacy.models import ConsentRecord, ConsentSource, ConsentState
from campaigns.privacy.selectors import contact_has_advertising_consent
from campaigns.privacy.services import consent_grant_bulk, consent_record
from tests.factories import ChannelFactory, ContactFactory, ProviderAccountFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

ADV = "advertising"


@pytest.fixture
def admin_client(admin_client):
    admin_client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return admin_client


def states(contact) -> dict:
    return {
        (s.channel_kind, s.purpose): s.granted for s in ConsentState.objects.filter(contact=contact)
    }


# ---- the service -----------------------------------------------------------------------------------


def test_a_consent_and_its_withdrawal_are_history_and_the_state_follows_the_last():
    c = ContactFactory()
    user = UserFactory(username="lan")
    consent_record(contact=c, channel_kind="sms", granted=True, source="api", actor="api:shop-web")
    assert contact_has_advertising_consent(contact_id=c.pk, channel_kind="sms")
    assert not contact_has_advertising_consent(contact_id=c.pk, channel_kind="zalo_zns")
    consent_record(contact=c, channel_kind="sms", granted=False, source="admin", actor=user)
    assert not contact_has_advertising_consent(contact_id=c.pk, channel_kind="sms")
    history = list(ConsentRecord.objects.filter(contact=c).order_by("at", "id"))
    assert [(r.granted, r.source, r.actor_label) for r in history] == [
        (True, "api", "api:shop-web"),
        (False, "admin", "lan"),
    ]
    assert history[1].actor == user


def test_all_channels_then_one_withdrawn_leaves_the_others():
    c = ContactFactory()
    consent_record(contact=c, channel_kind="all", granted=True, source="form")
    assert contact_has_advertising_consent(contact_id=c.pk, channel_kind="viber")
    consent_record(contact=c, channel_kind="sms", granted=False, source="inbound")
    assert not contact_has_advertising_consent(contact_id=c.pk, channel_kind="sms")
    assert contact_has_advertising_consent(contact_id=c.pk, channel_kind="viber")
    # A withdrawal of "all" withdraws every channel, whatever was granted per channel before.
    consent_record(contact=c, channel_kind="zalo_zns", granted=True, source="form")
    consent_record(contact=c, channel_kind="all", granted=False, source="admin")
    assert not any(states(c).values())


def test_an_older_statement_typed_in_late_does_not_override_the_newer_one():
    c = ContactFactory()
    consent_record(contact=c, channel_kind="sms", granted=False, source="inbound")
    consent_record(
        contact=c,
        channel_kind="sms",
        granted=True,
        source="form",
        at=timezone.now() - timedelta(days=30),
        note="paper form from last month",
    )
    assert states(c) == {("sms", ADV): False}
    assert ConsentRecord.objects.filter(contact=c).count() == 2


def test_bad_input_is_refused_with_a_clear_error():
    c = ContactFactory()
    with pytest.raises(ValueError, match="channel kind"):
        consent_record(contact=c, channel_kind="fax", granted=True, source="api")
    with pytest.raises(ValueError, match="purpose"):
        consent_record(contact=c, channel_kind="sms", purpose="x", granted=True, source="api")
    with pytest.raises(ValueError, match="source"):
        consent_record(contact=c, channel_kind="sms", granted=True, source="pigeon")


def test_bulk_grant_writes_history_and_upserts_states():
    a, b = ContactFactory(), ContactFactory()
    consent_record(contact=a, channel_kind="sms", granted=False, source="inbound")
    n = consent_grant_bulk(
        contacts=Contact.objects.filter(pk__in=[a.pk, b.pk]),
        channel_kinds=["sms", "zalo_zns"],
        source="import",
    )
    assert n == 4
    assert states(a) == {("sms", ADV): True, ("zalo_zns", ADV): True}
    assert states(b) == {("sms", ADV): True, ("zalo_zns", ADV): True}


# ---- import: the admin upload and the command -----------------------------------------------------


def test_admin_upload_with_the_consent_option_records_a_consent_per_contact(
    admin_client, admin_user, django_capture_on_commit_callbacks
):
    response = admin_client.post(
        reverse("admin:campaigns_contactimport_add"),
        {
            "merge_policy": "fill",
            "new_list_name": "Đăng ký khuyến mãi",
            "consent_channels": ["sms", "zalo_zns"],
            "file": SimpleUploadedFile(
                "dang-ky.csv",
                "SĐT,Họ tên\n0987654321,An\n0912345678,Bình\n0987654321,An\n".encode(),
            ),
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    imp = ContactImport.objects.get()
    assert imp.consent_channels == ["sms", "zalo_zns"]
    contact_import_run(import_id=imp.pk)
    imp.refresh_from_db()
    assert imp.status == ContactImport.Status.COMPLETED, imp.error_message
    records = ConsentRecord.objects.all()
    assert records.count() == 4  # 2 distinct phones x 2 channels (the duplicate row adds none)
    for r in records:
        assert (r.source, r.granted, r.purpose) == ("import", True, ADV)
        assert r.contact_import_id == imp.pk and r.file_name == "dang-ky.csv"
        assert r.actor == admin_user
    an = Contact.objects.get(phone="84987654321")
    assert contact_has_advertising_consent(contact_id=an.pk, channel_kind="sms")
    assert not contact_has_advertising_consent(contact_id=an.pk, channel_kind="viber")
    # The import's page says what was declared.
    page = admin_client.get(reverse("admin:campaigns_contactimport_change", args=[imp.pk]))
    assert "Zalo ZNS" in page.content.decode()


def test_import_without_the_option_records_no_consent(tmp_path):
    f = tmp_path / "khach.csv"
    f.write_text("phone\n0987654321\n")
    call_command("import_contacts", str(f), "--list", "Khách")
    assert Contact.objects.count() == 1
    assert not ConsentRecord.objects.exists()


def test_import_command_consent_option(tmp_path, capsys):
    f = tmp_path / "khach.csv"
    f.write_text("phone,name\n0987654321,An\n0912345678,Bình\nxx,bad\n")
    call_command("import_contacts", str(f), "--list", "Khách", "--consent", "all")
    out = capsys.readouterr().out
    assert "advertising consent recorded for: all" in out
    assert ConsentRecord.objects.filter(channel_kind="all", source="import").count() == 2
    for c in Contact.objects.all():
        assert contact_has_advertising_consent(contact_id=c.pk, channel_kind="viber")


# ---- the contact form in the admin ------------------------------------------------------------------


def _contact_form(contact, **extra):
    return {
        "phone": contact.phone,
        "country": "VN",
        "name": contact.name,
        "attributes": "{}",
        "opt_outs-TOTAL_FORMS": "0",
        "opt_outs-INITIAL_FORMS": "0",
        "memberships-TOTAL_FORMS": "0",
        "memberships-INITIAL_FORMS": "0",
        **extra,
    }


def test_contact_form_records_consents_and_withdrawals_with_the_user(admin_client, admin_user):
    c = ContactFactory(phone="84987654321", attributes={})
    url = reverse("admin:campaigns_contact_change", args=[c.pk])
    page = admin_client.get(url).content.decode()
    assert "Advertising consent on" in page and "No consent recorded." in page
    r = admin_client.post(
        url,
        _contact_form(
            c, advertising_consent=["sms", "zalo_zns"], consent_note="paper form, Hà Nội store"
        ),
    )
    assert r.status_code == 302, r.content.decode()[:3000]
    assert states(c) == {("sms", ADV): True, ("zalo_zns", ADV): True}
    r = admin_client.post(url, _contact_form(c, advertising_consent=["zalo_zns"]))
    assert r.status_code == 302
    assert states(c) == {("sms", ADV): False, ("zalo_zns", ADV): True}
    history = list(ConsentRecord.objects.filter(contact=c).order_by("id"))
    assert [(h.channel_kind, h.granted) for h in history] == [
        ("sms", True),
        ("zalo_zns", True),
        ("sms", False),
    ]
    assert all(h.source == "admin" and h.actor == admin_user for h in history)
    assert history[0].note == "paper form, Hà Nội store"
    page = admin_client.get(url).content.decode()
    assert 'id="contact-consents"' in page and "paper form, Hà Nội store" in page
    # Saving the form without touching the boxes records nothing.
    admin_client.post(url, _contact_form(c, advertising_consent=["zalo_zns"]))
    assert ConsentRecord.objects.filter(contact=c).count() == 3


# ---- withdrawals: every opt-out path ----------------------------------------------------------------


def _withdrawn(contact, kind) -> set:
    return set(
        ConsentRecord.objects.filter(contact=contact, channel_kind=kind, granted=False).values_list(
            "purpose", "source"
        )
    )


def test_opt_out_service_records_a_withdrawal_of_both_purposes():
    c = ContactFactory(phone="84987654321")
    consent_record(contact=c, channel_kind="sms", granted=True, source="form")
    contact_opt_out(phone="0987654321", channel_kind="sms", reason="asked by phone")
    assert _withdrawn(c, "sms") == {("advertising", "admin"), ("customer_care", "admin")}
    assert not contact_has_advertising_consent(contact_id=c.pk, channel_kind="sms")
    # The same opt-out again is not a new withdrawal (the first one is the evidence).
    contact_opt_out(phone="0987654321", channel_kind="sms")
    assert ConsentRecord.objects.filter(contact=c, granted=False).count() == 2


def test_admin_action_opt_out_all_records_withdrawals(admin_client, admin_user):
    a, b = ContactFactory(), ContactFactory()
    r = admin_client.post(
        reverse("admin:campaigns_contact_changelist"),
        {"action": "opt_out_all", "_selected_action": [a.pk, b.pk]},
    )
    assert r.status_code == 302
    for c in (a, b):
        assert _withdrawn(c, "all") == {("advertising", "admin"), ("customer_care", "admin")}
    assert set(ConsentRecord.objects.values_list("actor_id", flat=True)) == {admin_user.pk}


def test_admin_opt_out_by_phone_and_contact_page_record_withdrawals(admin_client, admin_user):
    r = admin_client.post(
        reverse("admin:campaigns_optout_add"),
        {"phone": "0987654321", "country": "VN", "channel_kind": "zalo_zns", "reason": ""},
    )
    assert r.status_code == 302, r.content.decode()[:2000]
    c = Contact.objects.get(phone="84987654321")
    assert ("advertising", "admin") in _withdrawn(c, "zalo_zns")
    r = admin_client.post(
        reverse("admin:campaigns_optout_contact", args=[c.pk]),
        {"channel_kind": "sms", "reason": "called the shop"},
    )
    assert r.status_code == 302
    rec = ConsentRecord.objects.get(contact=c, channel_kind="sms", purpose="advertising")
    assert not rec.granted and rec.note == "called the shop" and rec.actor == admin_user


def test_opt_out_file_records_withdrawals_with_the_file_source(admin_client):
    known = ContactFactory(phone="84987654321")
    consent_record(contact=known, channel_kind="all", granted=True, source="import")
    r = admin_client.post(
        reverse("admin:campaigns_optout_upload"),
        {
            "file": SimpleUploadedFile("stop.csv", b"phone\n0987654321\n0912345678\nnope\n"),
            "channel_kind": "zalo_zns",
            "reason": "",
        },
    )
    assert r.status_code == 200
    assert OptOut.objects.filter(source=OptOut.Source.FILE).count() == 2
    assert _withdrawn(known, "zalo_zns") == {("advertising", "file"), ("customer_care", "file")}
    assert not contact_has_advertising_consent(contact_id=known.pk, channel_kind="zalo_zns")
    assert contact_has_advertising_consent(contact_id=known.pk, channel_kind="sms")
    new = Contact.objects.get(phone="84912345678")
    assert ("advertising", "file") in _withdrawn(new, "zalo_zns")


SEED = json.loads(
    (
        Path(__file__).resolve().parents[1] / "fixtures" / "mmp" / "webhook_conversation.json"
    ).read_text()
)


def test_a_stop_reply_through_the_webhook_records_an_inbound_withdrawal(client):
    account = ProviderAccountFactory(kind="vna_mmp", secrets={"api_key": "k"})
    ChannelFactory(
        account=account, kind="viber_bot", official_account=None, external_id=SEED["channelId"]
    )
    contact = ContactFactory(phone="84901888484")
    consent_record(contact=contact, channel_kind="viber_bot", granted=True, source="form")
    payload = {
        **SEED,
        "messageId": "m-stop",
        "message": {"type": "text", "message": "TU CHOI"},
        "contact": {**SEED["contact"], "phone": "0901888484"},
    }
    url = reverse("webhooks:receive", args=[account.webhook_token])
    r = client.post(url, json.dumps(payload), content_type="application/json")
    assert r.status_code == 200
    rec = ConsentRecord.objects.get(contact=contact, purpose="advertising", granted=False)
    assert rec.channel_kind == "viber_bot" and rec.source == ConsentSource.INBOUND
    assert rec.note == "TU CHOI"
    assert not contact_has_advertising_consent(contact_id=contact.pk, channel_kind="viber_bot")


def test_an_ordinary_reply_records_no_consent(client):
    """The providers' notes say nothing that makes a reply a consent: only opt-outs count."""
    account = ProviderAccountFactory(kind="vna_mmp", secrets={"api_key": "k"})
    ChannelFactory(
        account=account, kind="viber_bot", official_account=None, external_id=SEED["channelId"]
    )
    ContactFactory(phone="84901888484")
    payload = {**SEED, "contact": {**SEED["contact"], "phone": "0901888484"}}
    url = reverse("webhooks:receive", args=[account.webhook_token])
    assert client.post(url, json.dumps(payload), content_type="application/json").status_code == 200
    assert not ConsentRecord.objects.exists()
