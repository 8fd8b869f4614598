"""Issue 17, item 6: a contact's attributes are edited as name/value rows (campaigns/admin/kv_rows.py),
the JSON only behind "Advanced"; through the admin with the test client, for each role."""

import json

import pytest
from django.urls import reverse
from django.utils import translation

from campaigns.models import Contact
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

INLINES = {
    "opt_outs-TOTAL_FORMS": "0",
    "opt_outs-INITIAL_FORMS": "0",
    "memberships-TOTAL_FORMS": "0",
    "memberships-INITIAL_FORMS": "0",
}


@pytest.fixture(autouse=True)
def english(client):
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    with translation.override("en"):
        yield


@pytest.fixture
def staff(client):
    client.force_login(UserFactory(username="staff", groups=["Contact staff"]))
    return client


@pytest.fixture
def contact(db):
    return Contact.objects.create(
        phone="84912345678",
        name="Nguyễn Văn An",
        attributes={"city": "Hà Nội", "points": 120, "tags": ["vip", "online"]},
    )


def rows_post(rows, *, json_text="", json_initial="", **extra):
    """The POST a browser sends for the rows (and, untouched, the JSON view)."""
    return {
        "country": "VN",
        "phone": "0912 345 678",
        "name": "Nguyễn Văn An",
        "attributes-key": [r[0] for r in rows],
        "attributes-value": [r[1] for r in rows],
        "attributes-type": [r[2] if len(r) > 2 else "text" for r in rows],
        "attributes-json": json_text,
        "attributes-json-initial": json_initial,
        **INLINES,
        **extra,
    }


def change_url(contact):
    return reverse("admin:campaigns_contact_change", args=[contact.pk])


def test_the_page_shows_rows_and_json_only_as_advanced(staff, contact):
    page = staff.get(change_url(contact)).content.decode()
    assert 'name="attributes-key" value="city"' in page
    assert 'name="attributes-value" value="Hà Nội"' in page
    # a number keeps its type: its row is marked json
    assert 'name="attributes-value" value="120"' in page
    assert page.count('name="attributes-key"') == 3 + 3  # three filled, three blank
    assert '<details class="loa-kv-advanced">' in page
    assert "loa/kv_rows.js" in page
    assert '<textarea name="attributes"' not in page  # the old raw JSON field


def test_staff_edit_add_and_remove_rows(staff, contact):
    response = staff.post(
        change_url(contact),
        rows_post(
            [
                ("city", "Đà Nẵng"),
                ("points", "150", "json"),
                ("ma_don_hang", "DH-2026-001"),
                ("", ""),
            ]
        ),
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    contact.refresh_from_db()
    # "tags" was removed (its row deleted); types kept; the new row added
    assert contact.attributes == {"city": "Đà Nẵng", "points": 150, "ma_don_hang": "DH-2026-001"}


def test_a_row_without_a_name_or_a_name_twice_is_refused(staff, contact):
    nameless = staff.post(change_url(contact), rows_post([("city", "Huế"), ("", "VIP")]))
    assert nameless.status_code == 200
    assert "The value “VIP” has no name" in nameless.content.decode()
    # the rows typed are shown again, not lost
    assert 'name="attributes-value" value="VIP"' in nameless.content.decode()
    twice = staff.post(change_url(contact), rows_post([("city", "Huế"), ("city", "Vinh")]))
    assert "The name “city” is used twice" in twice.content.decode()
    contact.refresh_from_db()
    assert contact.attributes["city"] == "Hà Nội"


def test_the_advanced_json_view_wins_when_edited(staff, contact):
    initial = json.dumps({"city": "Hà Nội"})
    edited = json.dumps({"city": "Cần Thơ", "age": 31}, ensure_ascii=False)
    response = staff.post(
        change_url(contact),
        rows_post([("city", "Hà Nội")], json_text=edited, json_initial=initial),
    )
    assert response.status_code == 302
    contact.refresh_from_db()
    assert contact.attributes == {"city": "Cần Thơ", "age": 31}
    # untouched (the same text as rendered), the rows win
    response = staff.post(
        change_url(contact),
        rows_post([("city", "Huế")], json_text=initial, json_initial=initial),
    )
    contact.refresh_from_db()
    assert contact.attributes == {"city": "Huế"}
    bad = staff.post(change_url(contact), rows_post([], json_text="{city: Huế", json_initial=""))
    assert "The JSON view is not valid JSON" in bad.content.decode()
    assert "[1, 2]" not in bad.content.decode()
    not_object = staff.post(change_url(contact), rows_post([], json_text="[1, 2]"))
    assert "Attributes must be an object" in not_object.content.decode()


def test_the_admin_adds_a_contact_with_rows(admin_client):
    response = admin_client.post(
        reverse("admin:campaigns_contact_add"),
        rows_post([("thanh_pho", "Hà Nội"), ("", "")], phone="0987 654 321"),
    )
    assert response.status_code == 302
    assert Contact.objects.get().attributes == {"thanh_pho": "Hà Nội"}


def test_a_script_posting_the_json_still_works(admin_client):
    response = admin_client.post(
        reverse("admin:campaigns_contact_add"),
        {"phone": "0987654321", "name": "x", "attributes": '{"city": "Huế"}', **INLINES},
    )
    assert response.status_code == 302
    assert Contact.objects.get().attributes == {"city": "Huế"}


def test_the_marketer_reads_the_attributes_as_a_table(client, contact):
    client.force_login(UserFactory(username="mk", groups=["Marketer"]))
    page = client.get(change_url(contact)).content.decode()
    assert 'id="contact-attributes"' in page
    assert '<th scope="row">city</th><td>Hà Nội</td>' in page
    assert "<td>vip, online</td>" in page and "<td>120</td>" in page
    assert 'name="attributes-key"' not in page
    # and cannot change them
    response = client.post(change_url(contact), rows_post([("city", "Huế")]))
    assert response.status_code == 403
    contact.refresh_from_db()
    assert contact.attributes["city"] == "Hà Nội"
