"""The admin pages through Django's test client: upload -> preview -> mapping -> result, search,
export, opt-out upload, segments. Element ids are the ones the browser test relies on."""

import csv
import io
import re
import unicodedata

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import translation

from campaigns.contacts.importing.run import contact_import_run
from campaigns.models import Contact, ContactImport, ContactList, OptOut, Segment
from tests.contacts import hostile

pytestmark = pytest.mark.django_db

UPLOAD = reverse("admin:campaigns_contactimport_add")


@pytest.fixture(autouse=True)
def english(client):
    """Assertions read English text: ask for English (LANGUAGE_CODE is "vi")."""
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    with translation.override("en"):
        yield


def upload(client, content, name="khach.csv", **data):
    payload = {"merge_policy": "fill", "new_list_name": "Khách hàng 2026", **data}
    payload["file"] = SimpleUploadedFile(name, content)
    return client.post(UPLOAD, payload)


def count(html: str, element_id: str) -> int:
    match = re.search(rf'id="{element_id}"[^>]*>([\d,]+)<', html)
    assert match, f"#{element_id} not found"
    return int(match.group(1).replace(",", ""))


def test_upload_preview_map_and_result(admin_client, django_capture_on_commit_callbacks):
    page = admin_client.get(UPLOAD)
    assert page.status_code == 200
    assert 'id="id_file"' in page.content.decode()

    response = upload(admin_client, hostile.utf16_unicode_text() + b"")
    imp = ContactImport.objects.get()
    map_url = reverse("admin:campaigns_contactimport_map", args=[imp.pk])
    assert response.status_code == 302 and response["Location"] == map_url
    assert imp.status == ContactImport.Status.UPLOADED
    assert imp.contact_list.name == "Khách hàng 2026"

    preview = admin_client.get(map_url).content.decode()
    assert 'id="detected-encoding">UTF-16 (BOM)<' in preview
    assert 'id="detected-delimiter">tab<' in preview
    assert "Nguyễn Văn An" in preview  # the preview rows, decoded
    # guessed: STT ignored, Họ tên = name, SĐT = phone, Thành phố = attribute
    assert re.search(r'name="map_0".*?<option value="ignore" selected', preview, re.S)
    assert re.search(r'name="map_1".*?<option value="name" selected', preview, re.S)
    assert re.search(r'name="map_2".*?<option value="phone" selected', preview, re.S)
    assert 'id="start-import"' in preview

    with django_capture_on_commit_callbacks(execute=True):
        done = admin_client.post(
            map_url,
            {
                "has_header": "1",
                "map_0": "ignore",
                "map_1": "name",
                "map_2": "phone",
                "map_3": "attribute",
                "key_3": "Tỉnh",
            },
        )
    result_url = reverse("admin:campaigns_contactimport_change", args=[imp.pk])
    assert done.status_code == 302 and done["Location"] == result_url
    imp.refresh_from_db()
    assert imp.status == ContactImport.Status.COMPLETED, imp.error_message
    html = admin_client.get(result_url).content.decode()
    assert count(html, "count-total") == 3
    assert count(html, "count-imported") == 3
    assert count(html, "count-updated") == 0
    assert count(html, "count-duplicate") == 0
    assert count(html, "count-invalid") == 0
    assert Contact.objects.get(phone="84987654321").attributes == {"tinh": "Hà Nội"}
    # The mapping as people read it, not the stored JSON; the run spoke the uploader's language.
    assert "column 2 → name · column 3 → phone · column 4 → “tinh”" in html
    assert '"phone": 2' not in html
    assert imp.language == translation.get_language()

    progress = admin_client.get(
        reverse("admin:campaigns_contactimport_progress", args=[imp.pk])
    ).json()
    assert progress["finished"] and progress["imported"] == 3 and progress["percent"] == 100


def test_result_with_refused_rows_and_report_download(
    admin_client, django_capture_on_commit_callbacks
):
    Contact.objects.create(phone="84912345678", name="Known")
    content = hostile.csv_text(
        [
            ["phone", "name"],
            ["0987654321", "An"],
            ["0912345678", "Binh"],
            ["+84 987 654 321", "An again"],
            ["8.49877E+10", "Lost digits"],
            ["=1+2", "Formula"],
        ]
    ).encode()
    upload(admin_client, content)
    imp = ContactImport.objects.get()
    map_url = reverse("admin:campaigns_contactimport_map", args=[imp.pk])
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(map_url, {"has_header": "1", "map_0": "phone", "map_1": "name"})
    html = admin_client.get(
        reverse("admin:campaigns_contactimport_change", args=[imp.pk])
    ).content.decode()
    assert [
        count(html, f"count-{k}") for k in ("total", "imported", "updated", "duplicate", "invalid")
    ] == [5, 1, 1, 1, 2]
    assert 'id="error-report-link"' in html
    report = admin_client.get(reverse("admin:campaigns_contactimport_errors", args=[imp.pk]))
    assert report.status_code == 200
    assert "attachment" in report["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(b"".join(report.streaming_content).decode("utf-8-sig"))))
    assert [r[0] for r in rows[1:]] == ["4", "5", "6"]
    assert rows[3][1] == "'=1+2"


def test_upload_errors_are_shown_not_500(admin_client):
    for content in (b"", hostile.binary_garbage(), hostile.xlsx_zip_bomb()):
        response = upload(admin_client, content, name="x.xlsx" if content[:2] == b"PK" else "x.csv")
        assert response.status_code == 200
        assert 'class="errorlist' in response.content.decode()
    assert ContactImport.objects.count() == 0
    no_list = admin_client.post(
        UPLOAD, {"merge_policy": "fill", "file": SimpleUploadedFile("a.csv", hostile.utf8_bom())}
    )
    assert "Choose a list or name a new one" in no_list.content.decode()


def test_mapping_without_a_phone_column_is_refused(admin_client):
    upload(admin_client, hostile.no_phone_column())
    imp = ContactImport.objects.get()
    map_url = reverse("admin:campaigns_contactimport_map", args=[imp.pk])
    page = admin_client.get(map_url).content.decode()
    assert not re.search(r'<option value="phone" selected', page)
    response = admin_client.post(
        map_url, {"has_header": "1", "map_0": "name", "map_1": "attribute", "map_2": "attribute"}
    )
    assert response.status_code == 200
    assert "Choose the column that holds the phone numbers" in response.content.decode()
    imp.refresh_from_db()
    assert imp.status == ContactImport.Status.UPLOADED


def test_reread_with_another_encoding(admin_client):
    upload(admin_client, hostile.cp1258_decomposed())
    imp = ContactImport.objects.get()
    map_url = reverse("admin:campaigns_contactimport_map", args=[imp.pk])
    page = admin_client.get(map_url).content.decode()
    assert "Windows-1258" in page and "Nguyễn Văn An" in page
    admin_client.post(map_url, {"reread": "1", "encoding": "utf-8", "delimiter": ","})
    # not UTF-8: refused with a message, and the import falls back to detection
    page = admin_client.get(map_url, follow=True).content.decode()
    assert "Nguyễn Văn An" in page


def test_contact_search_ignores_diacritics_and_takes_phones(admin_client):
    Contact.objects.create(phone="84987654321", name="Nguyễn Văn An", search_text="nguyen van an")
    Contact.objects.create(phone="84912345678", name="Trần Bình", search_text="tran binh")
    url = reverse("admin:campaigns_contact_changelist")

    def found(q):
        html = admin_client.get(url, {"q": q}).content.decode()
        return sorted(set(re.findall(r"849\d{8}", html)))

    assert found("nguyen") == ["84987654321"]
    assert found("Nguyễn an") == ["84987654321"]
    assert found("BINH") == ["84912345678"]
    assert found("0912 345 678") == ["84912345678"]
    assert found("+84 98") == ["84987654321"]
    assert found("0987") == ["84987654321"]
    assert found("5678") == ["84912345678"]
    assert found("zzz") == []


def test_contact_changelist_filters_export_and_actions(admin_client):
    hn = ContactList.objects.create(name="HN")
    a = Contact.objects.create(phone="84987654321", name="=cmd", attributes={"city": "Huế"})
    b = Contact.objects.create(phone="84912345678", name="B")
    hn.contacts.add(a)
    OptOut.objects.create(contact=b, channel_kind="sms")
    url = reverse("admin:campaigns_contact_changelist")
    assert "84912345678" in admin_client.get(url, {"opted_out": "sms"}).content.decode()
    assert "84987654321" not in admin_client.get(url, {"opted_out": "any"}).content.decode()
    assert "84912345678" not in admin_client.get(url, {"list": hn.pk}).content.decode()

    export = admin_client.get(reverse("admin:campaigns_contact_export"), {"list": hn.pk})
    text = b"".join(export.streaming_content).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert len(rows) == 2 and rows[1][:4] == ["84987654321", "0987 654 321", "'=cmd", "Huế"]

    admin_client.post(url, {"action": "opt_out_all", "_selected_action": [a.pk]})
    assert a.opt_outs.filter(channel_kind=OptOut.ALL).exists()
    response = admin_client.post(url, {"action": "export_selected", "_selected_action": [b.pk]})
    assert "84912345678" in b"".join(response.streaming_content).decode("utf-8-sig")


def test_contact_add_normalizes_the_phone(admin_client):
    response = admin_client.post(
        reverse("admin:campaigns_contact_add"),
        {
            "phone": "0987 654 321",
            "name": "Đỗ Minh",
            "attributes": '{"city": "Huế"}',
            "opt_outs-TOTAL_FORMS": "0",
            "opt_outs-INITIAL_FORMS": "0",
            "memberships-TOTAL_FORMS": "0",
            "memberships-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    c = Contact.objects.get()
    assert (c.phone, c.search_text) == ("84987654321", "do minh")
    bad = admin_client.post(
        reverse("admin:campaigns_contact_add"),
        {
            "phone": "8.49877E+10",
            "name": "x",
            "attributes": "{}",
            "opt_outs-TOTAL_FORMS": "0",
            "opt_outs-INITIAL_FORMS": "0",
            "memberships-TOTAL_FORMS": "0",
            "memberships-INITIAL_FORMS": "0",
        },
    )
    assert "scientific notation" in bad.content.decode()


def test_opt_out_upload_page(admin_client):
    url = reverse("admin:campaigns_optout_upload")
    assert admin_client.get(url).status_code == 200
    content = b"phone\n0987654321\n0912345678\nnope\n"
    response = admin_client.post(
        url,
        {
            "file": SimpleUploadedFile("stop.csv", content),
            "channel_kind": "zalo_zns",
            "reason": "",
        },
    )
    html = response.content.decode()
    assert count(html, "optout-total") == 3
    assert count(html, "optout-new") == 2
    assert count(html, "optout-invalid") == 1
    assert OptOut.objects.filter(channel_kind="zalo_zns", source=OptOut.Source.FILE).count() == 2
    bad = admin_client.post(url, {"file": SimpleUploadedFile("x.csv", b""), "channel_kind": "all"})
    assert "The submitted file is empty." in bad.content.decode()  # Django's own check


def test_segment_admin_shows_the_live_count(admin_client):
    Contact.objects.create(phone="84987654321", attributes={"city": "Hà Nội"})
    Contact.objects.create(phone="84912345678", attributes={"city": "Huế"})
    response = admin_client.post(
        reverse("admin:campaigns_segment_add"),
        {
            "name": "Hà Nội",
            "description": "",
            "match": "all",
            "rules": '[{"attribute": "city", "op": "eq", "value": "Hà Nội"}]',
        },
    )
    assert response.status_code == 302
    segment = Segment.objects.get()
    page = admin_client.get(
        reverse("admin:campaigns_segment_change", args=[segment.pk])
    ).content.decode()
    assert re.search(r'id="segment-count">1<', page)
    bad = admin_client.post(
        reverse("admin:campaigns_segment_add"),
        {"name": "bad", "match": "all", "rules": '[{"attribute": "city", "op": "like"}]'},
    )
    assert "operator must be one of" in bad.content.decode()
    export = admin_client.get(reverse("admin:campaigns_segment_export", args=[segment.pk]))
    assert "84987654321" in b"".join(export.streaming_content).decode("utf-8-sig")


def test_contact_staff_role_can_upload(client, django_capture_on_commit_callbacks):
    from tests.factories import UserFactory

    user = UserFactory(groups=["Contact staff"])
    client.force_login(user)
    upload(client, hostile.utf8_bom())
    imp = ContactImport.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("admin:campaigns_contactimport_map", args=[imp.pk]),
            {"has_header": "1", "map_1": "name", "map_2": "phone"},
        )
    imp.refresh_from_db()
    assert imp.imported_count == 3
    assert client.get(reverse("admin:campaigns_contact_changelist")).status_code == 200


def test_a_failed_import_can_be_retried(admin_client):
    upload(admin_client, hostile.no_phone_column())
    imp = ContactImport.objects.get()
    ContactImport.objects.filter(pk=imp.pk).update(status=ContactImport.Status.QUEUED)
    imp = contact_import_run(import_id=imp.pk)
    assert imp.status == ContactImport.Status.FAILED
    page = admin_client.get(reverse("admin:campaigns_contactimport_change", args=[imp.pk]))
    html = page.content.decode()
    assert 'id="import-error"' in html and "No phone column" in html
    assert 'id="retry-import"' in html
    map_url = reverse("admin:campaigns_contactimport_map", args=[imp.pk])
    response = admin_client.post(map_url, {"retry": "1"})
    assert response.status_code == 302 and response["Location"] == map_url
    assert 'id="start-import"' in admin_client.get(map_url).content.decode()
    imp.refresh_from_db()
    assert imp.status == ContactImport.Status.UPLOADED


def test_searched_changelist_counts_only_up_to_a_cap(admin_client, monkeypatch):
    from campaigns.admin.contacts import ContactPaginator

    monkeypatch.setattr(ContactPaginator, "CAP", 3)
    for i in range(6):
        Contact.objects.create(
            phone=f"8498765430{i}", name=f"Nguyễn {i}", search_text=f"nguyen {i}"
        )
    paginator = ContactPaginator(Contact.objects.filter(search_text__contains="nguyen"), 2)
    assert paginator.count == 4  # CAP + 1: "more than 3"
    assert ContactPaginator(Contact.objects.filter(search_text__contains="nguyen 5"), 2).count == 1
    page = admin_client.get(reverse("admin:campaigns_contact_changelist"), {"q": "nguyen"})
    assert page.status_code == 200


def test_upload_limit_stops_storing_the_body(admin_client, settings):
    settings.CONTACT_UPLOAD_MAX_BYTES = 1000
    response = upload(admin_client, b"phone\n" + b"0987654321\n" * 500)
    assert response.status_code == 200
    assert "larger than the 0 MB limit" in response.content.decode()
    assert ContactImport.objects.count() == 0


def test_upload_still_checks_csrf(admin_user):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    response = client.post(
        UPLOAD,
        {
            "new_list_name": "x",
            "merge_policy": "fill",
            "file": SimpleUploadedFile("a.csv", hostile.utf8_bom()),
        },
    )
    assert response.status_code == 403
    assert ContactImport.objects.count() == 0
    page = client.get(UPLOAD)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode()).group(1)
    ok = client.post(
        UPLOAD,
        {
            "csrfmiddlewaretoken": token,
            "new_list_name": "x",
            "merge_policy": "fill",
            "file": SimpleUploadedFile("a.csv", hostile.utf8_bom()),
        },
    )
    assert ok.status_code == 302
    assert ContactImport.objects.count() == 1


def test_list_tags_are_typed_as_text_and_filter_the_lists(admin_client):
    add = reverse("admin:campaigns_contactlist_add")
    response = admin_client.post(
        add,
        {
            "name": "Khách VIP",
            "description": "",
            # decomposed accents (a Mac keyboard) are the same tag as composed ones
            "tags": " vip,  Hà Nội , VIP,, khách cũ, " + unicodedata.normalize("NFD", "Hà Nội"),
        },
    )
    assert response.status_code == 302
    vip = ContactList.objects.get(name="Khách VIP")
    assert vip.tags == ["vip", "Hà Nội", "khách cũ"]  # trimmed, deduplicated, order kept
    ContactList.objects.create(name="Khác", tags=["hcm"])
    page = admin_client.get(reverse("admin:campaigns_contactlist_change", args=[vip.pk]))
    assert 'value="vip, Hà Nội, khách cũ"' in page.content.decode()
    filtered = admin_client.get(reverse("admin:campaigns_contactlist_changelist"), {"tag": "hcm"})
    assert [cl.name for cl in filtered.context["cl"].result_list] == ["Khác"]
    too_long = admin_client.post(add, {"name": "X", "description": "", "tags": "a" * 51})
    assert too_long.status_code == 200 and ContactList.objects.filter(name="X").count() == 0


def test_the_contact_page_shows_what_was_sent_to_the_contact(admin_client, client):
    from campaigns.engine.materialize import campaign_materialize
    from campaigns.models import Message
    from tests.factories import CampaignFactory, ContactListFactory, UserFactory

    campaign = CampaignFactory(name="Ưu đãi tháng 12", lists=[ContactListFactory(size=2)])
    campaign_materialize(campaign_id=campaign.pk)
    msg = Message.objects.filter(campaign=campaign).order_by("pk").first()
    Message.objects.filter(pk=msg.pk).update(status="failed", error_code="-118")
    url = reverse("admin:campaigns_contact_change", args=[msg.contact_id])
    with translation.override("en"):
        html = admin_client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'id="contact-messages"' in html and "Ưu đãi tháng 12" in html and "-118" in html
    assert reverse("admin:campaigns_message_change", args=[msg.pk]) in html
    # Contact staff manage contacts, not campaigns: no messages on their page.
    staff = UserFactory(username="thu", groups=["Contact staff"])
    client.force_login(staff)
    page = client.get(url)
    assert page.status_code == 200 and 'id="contact-messages"' not in page.content.decode()
