"""The audit trail (issue 21): who viewed a contact, exported anything (which export, how many
rows), changed a provider account, sent, scheduled or cancelled a campaign, with time and address;
append-only in the admin (403 for add, change and delete, superusers included), searchable, purged
after LOA_AUDIT_RETENTION_DAYS. Through the admin client: the same requests a browser makes."""

import csv
import io
import json
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils import timezone
from django_q.models import Schedule

from campaigns.engine.lifecycle import campaign_cancel, campaign_schedule
from campaigns.models import Campaign, ContactList, Message
from campaigns.privacy.models import AuditAction, AuditEvent
from campaigns.privacy.receivers import api_key_created_receiver
from campaigns.privacy.services import audit_purge, audit_record
from campaigns.privacy.tasks import privacy_audit_purge
from tests.factories import (
    CampaignFactory,
    ContactFactory,
    ContactListFactory,
    ProviderAccountFactory,
    UserFactory,
    message_for,
)
from tests.providers.test_account_settings_form import esms_post

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def english(client):
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"


def only(action) -> AuditEvent:
    events = list(AuditEvent.objects.filter(action=action))
    assert len(events) == 1, [(e.action, e.target_label) for e in events]
    return events[0]


def test_a_marketers_contact_export_appears_with_its_row_count(client):
    marketer = UserFactory(username="mai", groups=["Marketer"])
    client.force_login(marketer)
    ContactList.objects.create(name="empty")
    for i in range(3):
        ContactFactory(name=f"Khách {i}")
    response = client.get(reverse("admin:campaigns_contact_export"), REMOTE_ADDR="203.0.113.7")
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    assert len(rows) == 4  # header + 3
    event = only(AuditAction.EXPORT_CONTACTS)
    assert event.rows == 3 and event.actor == marketer and event.actor_label == "mai"
    assert event.ip_address == "203.0.113.7"
    assert event.detail["export"] == "changelist" and event.detail["complete"] is True


def test_list_segment_and_selected_exports_are_logged_with_what_was_exported(admin_client):
    members = [ContactFactory(), ContactFactory()]
    cl = ContactListFactory(name="VIP Hà Nội", contacts=members)
    r = admin_client.post(
        reverse("admin:campaigns_contactlist_changelist"),
        {"action": "export_lists", "_selected_action": [cl.pk]},
    )
    b"".join(r.streaming_content)
    r = admin_client.post(
        reverse("admin:campaigns_contact_changelist"),
        {"action": "export_selected", "_selected_action": [members[0].pk]},
    )
    b"".join(r.streaming_content)
    events = list(AuditEvent.objects.filter(action="export.contacts").order_by("id"))
    assert [(e.detail["export"], e.rows) for e in events] == [("lists", 2), ("selected", 1)]
    assert events[0].target_type == "campaigns.contactlist" and events[0].target_label == cl.name


def test_a_download_cut_short_is_logged_with_the_rows_sent_so_far(rf, admin_user):
    from campaigns.admin.downloads import audit_on_done
    from campaigns.contacts.export import contacts_export_csv
    from campaigns.models import Contact

    for _i in range(3):
        ContactFactory()
    request = rf.get("/admin/campaigns/contact/export/")
    request.user = admin_user
    on_done = audit_on_done(request, action=AuditAction.EXPORT_CONTACTS)
    stream = contacts_export_csv(queryset=Contact.objects.all(), on_done=on_done)
    next(stream), next(stream), next(stream)  # BOM, header, one contact
    stream.close()  # the browser went away: the server closes the response's iterator
    event = only(AuditAction.EXPORT_CONTACTS)
    assert event.rows == 1 and event.detail["complete"] is False


def _campaign_with_messages(n=2):
    campaign = CampaignFactory(status=Campaign.Status.COMPLETED)
    Message.objects.bulk_create(
        [message_for(campaign, ContactFactory(), status=Message.Status.SENT) for _ in range(n)]
    )
    return campaign


def test_campaign_results_exports_csv_and_xlsx_are_logged_with_their_rows(admin_client):
    campaign = _campaign_with_messages(2)
    r = admin_client.get(reverse("admin:campaigns_campaign_export", args=[campaign.pk]))
    b"".join(r.streaming_content)
    r = admin_client.get(reverse("admin:campaigns_campaign_export_xlsx", args=[campaign.pk]))
    assert r.status_code == 200
    assert b"".join(r.streaming_content).startswith(b"PK")  # a zip: the workbook
    events = list(AuditEvent.objects.filter(action="export.campaign").order_by("id"))
    assert [(e.detail["format"], e.rows) for e in events] == [("csv", 2), ("xlsx", 2)]
    assert all(e.target_id == str(campaign.pk) and e.target_label == campaign.name for e in events)


def test_the_failing_rows_report_is_logged(admin_client):
    campaign = CampaignFactory(lists=[ContactListFactory(contacts=[ContactFactory(name="")])])
    campaign.param_mapping = {"customer_name": {"source": "field", "value": "name"}}
    campaign.save()
    url = reverse("admin:templates_app_campaign_validation_report", args=[campaign.pk])
    r = admin_client.get(url)
    text = b"".join(r.streaming_content).decode("utf-8-sig")
    event = only(AuditAction.EXPORT_VALIDATION)
    assert event.rows == len(text.strip().splitlines()) - 1


def test_opening_a_contact_is_logged_and_a_list_or_a_refusal_is_not(client, admin_client):
    contact = ContactFactory(phone="84987654321", name="Trần Thu")
    admin_client.get(reverse("admin:campaigns_contact_changelist"))
    assert not AuditEvent.objects.exists()
    assert (
        admin_client.get(reverse("admin:campaigns_contact_change", args=[contact.pk])).status_code
        == 200
    )
    event = only(AuditAction.CONTACT_VIEW)
    assert event.target_type == "campaigns.contact" and event.target_id == str(contact.pk)
    assert "Trần Thu" in event.target_label and event.actor_label == "root"
    nobody = UserFactory(username="nobody")
    client.force_login(nobody)
    client.get(reverse("admin:campaigns_contact_change", args=[contact.pk]))
    assert AuditEvent.objects.count() == 1


def test_provider_account_change_names_fields_never_values(admin_client):
    esms = ProviderAccountFactory(
        name="eSMS chính",
        kind="esms",
        secrets={"api_key": "esms-KEY-7f3a9c0001", "secret_key": "esms-SECRET-0002"},
        settings={"sandbox": True, "http": {"connect_timeout": 4}},
    )
    created = only(AuditAction.PROVIDER_ACCOUNT_CHANGE)  # creating one is always an event
    assert created.detail == {"created": True} and created.actor_label == "system"
    created.delete()
    # A worker's own save (no person, no request) is not an event.
    esms.last_callback_at = timezone.now()
    esms.save()
    assert not AuditEvent.objects.exists()
    url = reverse("admin:providers_provideraccount_change", args=[esms.pk])
    data = esms_post(esms, rate_limit="5", secret_api_key="esms-KEY-NEW-999")
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:3000]
    event = only(AuditAction.PROVIDER_ACCOUNT_CHANGE)
    assert event.target_type == "providers.provideraccount" and event.target_label == "eSMS chính"
    assert "rate_limit" in event.detail["changed"] and event.actor_label == "root"
    dumped = json.dumps(event.detail) + event.target_label
    assert "esms-KEY" not in dumped and "SECRET" not in dumped
    assert event.ip_address == "127.0.0.1"


def test_campaign_send_schedule_and_cancel_are_logged(admin_user):
    campaign = CampaignFactory(lists=[ContactListFactory(contacts=[ContactFactory()])])
    when = timezone.now() + timedelta(days=1)
    campaign_schedule(campaign_id=campaign.pk, when=when, user=admin_user)
    event = only(AuditAction.CAMPAIGN_SCHEDULE)
    assert event.actor == admin_user and event.detail["scheduled_at"] == when.isoformat()
    assert campaign_cancel(campaign_id=campaign.pk, user=admin_user) == 0
    cancel = only(AuditAction.CAMPAIGN_CANCEL)
    assert cancel.rows == 0 and cancel.target_id == str(campaign.pk)


@pytest.mark.django_db(transaction=True)
def test_send_now_from_the_wizard_is_logged_with_its_recipients(client, settings):
    import responses

    from tests.privacy.test_consent_campaign import BROADCAST, _draft

    settings.LOA = {**settings.LOA, "QUIET_HOURS": "00:00-23:59"}  # a promotion, at any hour
    from django.contrib.auth.models import Permission

    # Permissions, not the Marketer group: a transactional test's flush removes the groups that
    # migrations created (the permissions are created again).
    user = UserFactory(username="mai")
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="campaigns",
            codename__in=["view_campaign", "change_campaign", "add_campaign", "send_campaign"],
        )
    )
    client.force_login(user)
    with responses.RequestsMock() as mock:
        mock.add(responses.POST, BROADCAST, json={"messageId": "m-1"})
        campaign = _draft(user, contacts=[ContactFactory(), ContactFactory()])
        campaign_draft = Campaign.objects.get(pk=campaign.pk)
        campaign_draft.requires_advertising_consent = False
        campaign_draft.save()
        r = client.post(
            reverse("admin:campaigns_campaign_wizard", args=[campaign.pk, 5]),
            {"action": "send_now"},
            REMOTE_ADDR="198.51.100.4",
        )
        assert r.status_code == 302
    event = only(AuditAction.CAMPAIGN_SEND)
    assert event.rows == 2 and event.actor == user and event.ip_address == "198.51.100.4"


def test_api_key_receiver_records_creations_only():
    key = ProviderAccountFactory(name="shop-web")  # stands in for the API's key model
    api_key_created_receiver(sender=type(key), instance=key, created=True)
    api_key_created_receiver(sender=type(key), instance=key, created=False)
    event = only(AuditAction.API_KEY_CREATE)
    assert event.detail == {"name": "shop-web"} and event.actor_label == "system"


# ---- the admin: read-only for everyone, searchable ---------------------------------------------------


def test_the_audit_admin_refuses_add_change_and_delete_even_to_a_superuser(admin_client):
    event = audit_record(action="contact.view", actor="someone", target_label="x")
    add = admin_client.get(reverse("admin:privacy_auditevent_add"))
    assert add.status_code == 403
    assert admin_client.post(reverse("admin:privacy_auditevent_add"), {}).status_code == 403
    change = reverse("admin:privacy_auditevent_change", args=[event.pk])
    assert admin_client.get(change).status_code == 200  # viewing is allowed
    r = admin_client.post(change, {"actor_label": "forged", "action": "contact.view"})
    assert r.status_code == 403
    delete = reverse("admin:privacy_auditevent_delete", args=[event.pk])
    assert admin_client.get(delete).status_code == 403
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    changelist = reverse("admin:privacy_auditevent_changelist")
    r = admin_client.post(changelist, {"action": "delete_selected", "_selected_action": [event.pk]})
    event.refresh_from_db()
    assert event.actor_label == "someone"
    assert AuditEvent.objects.count() == 1
    # The consent history is read-only the same way.
    assert admin_client.get(reverse("admin:privacy_consentrecord_add")).status_code == 403


def test_the_audit_admin_searches_by_actor_action_target_and_date_range(admin_client):
    old = audit_record(action="export.contacts", actor="lan", target_label="VIP Hà Nội", rows=10)
    AuditEvent.objects.filter(pk=old.pk).update(at=timezone.now() - timedelta(days=40))
    audit_record(action="contact.view", actor="minh", target_label="Trần Thu (0987 654 321)")
    audit_record(action="campaign.cancel", actor="lan", target_label="Tết 2027")
    url = reverse("admin:privacy_auditevent_changelist")

    def shown(**params) -> set:
        r = admin_client.get(url, params)
        assert r.status_code == 200
        return {e.target_label for e in r.context["cl"].result_list}

    assert shown() == {"VIP Hà Nội", "Trần Thu (0987 654 321)", "Tết 2027"}
    assert shown(q="lan") == {"VIP Hà Nội", "Tết 2027"}
    assert shown(q="0987 654 321") == {"Trần Thu (0987 654 321)"}
    assert shown(q="export.contacts") == {"VIP Hà Nội"}
    assert shown(action__exact="campaign.cancel") == {"Tết 2027"}
    today = timezone.localdate()
    assert shown(since=str(today - timedelta(days=1))) == {
        "Trần Thu (0987 654 321)",
        "Tết 2027",
    }
    assert shown(until=str(today - timedelta(days=30))) == {"VIP Hà Nội"}
    assert shown(since=str(today - timedelta(days=1)), q="lan") == {"Tết 2027"}
    page = admin_client.get(url).content.decode()
    assert 'id="audit-date-range"' in page


def test_the_administrator_role_may_view_the_trail():
    admin_role = Group.objects.get(name="Administrator")
    codenames = set(admin_role.permissions.values_list("codename", flat=True))
    assert {"view_auditevent", "view_consentrecord", "erase_person", "export_person"} <= codenames
    assert "delete_auditevent" not in codenames and "change_auditevent" not in codenames


# ---- retention -----------------------------------------------------------------------------------------


def test_the_daily_purge_removes_events_past_the_retention_and_keeps_the_rest(settings):
    settings.LOA_AUDIT_RETENTION_DAYS = 30
    old = audit_record(action="contact.view", actor="a")
    recent = audit_record(action="contact.view", actor="b")
    AuditEvent.objects.filter(pk=old.pk).update(at=timezone.now() - timedelta(days=31))
    AuditEvent.objects.filter(pk=recent.pk).update(at=timezone.now() - timedelta(days=29))
    assert privacy_audit_purge() == 1
    assert list(AuditEvent.objects.values_list("actor_label", flat=True)) == ["b"]
    settings.LOA_AUDIT_RETENTION_DAYS = 0  # keep forever
    AuditEvent.objects.update(at=timezone.now() - timedelta(days=4000))
    assert audit_purge() == 0 and AuditEvent.objects.count() == 1


def test_the_purge_is_scheduled_daily():
    schedule = Schedule.objects.get(name="loa: audit trail purge")
    assert schedule.func == "campaigns.privacy.tasks.privacy_audit_purge"
    assert schedule.schedule_type == Schedule.DAILY and schedule.repeats == -1
