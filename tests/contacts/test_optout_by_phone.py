"""Issue 17, item 5: an opt-out is recorded by phone (any format, either country), from the
contact page and from a file, by contact staff and by marketers, through the admin pages.

The Marketer role is given campaigns.add_optout by a data migration of the lead's (campaigns 0016;
roles are migrations here, 0002 and 0007). Until it lands, `marketer_may_opt_out` grants the same
permission the same way, and test_the_marketer_role_may_add_opt_outs says whether it has landed.
"""

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import translation

from campaigns.models import Contact, OptOut
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

ADD = reverse("admin:campaigns_optout_add")
CHANGELIST = reverse("admin:campaigns_optout_changelist")
UPLOAD = reverse("admin:campaigns_optout_upload")


@pytest.fixture(autouse=True)
def english(client):
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    with translation.override("en"):
        yield


@pytest.fixture
def marketer_may_opt_out(db):
    """What campaigns 0016 grants (see the module's docstring)."""
    Group.objects.get(name="Marketer").permissions.add(
        Permission.objects.get(content_type__app_label="campaigns", codename="add_optout")
    )


@pytest.fixture
def staff(client):
    client.force_login(UserFactory(username="staff", groups=["Contact staff"]))
    return client


@pytest.fixture
def marketer_client(client, marketer_may_opt_out):
    client.force_login(UserFactory(username="mk", groups=["Marketer"]))
    return client


def add(client, phone, *, country="VN", channel_kind="all", reason=""):
    return client.post(
        ADD,
        {"country": country, "phone": phone, "channel_kind": channel_kind, "reason": reason},
    )


def test_the_marketer_role_may_add_opt_outs():
    """Granted by campaigns migration 0017 (issue 17, item 5)."""
    marketer = Group.objects.get(name="Marketer")
    assert marketer.permissions.filter(codename="add_optout").exists()


@pytest.mark.parametrize("who", ["staff", "marketer_client"])
def test_an_opt_out_by_phone_creates_the_contact(request, who):
    client = request.getfixturevalue(who)
    page = client.get(ADD).content.decode()
    assert 'name="phone"' in page and 'name="country"' in page
    assert 'name="contact"' not in page  # no internal id to type
    response = add(client, "+84 912 345 678", reason="Gọi tổng đài xin ngừng")
    assert response.status_code == 302
    assert response["Location"] == CHANGELIST + "?q=84912345678"
    opt_out = OptOut.objects.get()
    assert opt_out.contact.phone == "84912345678"
    assert opt_out.channel_kind == OptOut.ALL
    assert opt_out.reason == "Gọi tổng đài xin ngừng"
    assert opt_out.source == OptOut.Source.ADMIN
    listing = client.get(response["Location"]).content.decode()
    assert "0912 345 678 opted out of All channels." in listing
    assert "0912 345 678" in listing


def test_a_local_phone_links_the_existing_contact(staff):
    contact = Contact.objects.create(phone="84987654321", name="Nguyễn Văn An")
    assert add(staff, "098.765.4321", channel_kind="zalo_zns").status_code == 302
    assert Contact.objects.count() == 1
    opt_out = OptOut.objects.get()
    assert opt_out.contact == contact
    assert opt_out.channel_kind == "zalo_zns"
    assert opt_out.reason == "Opted out in the admin by staff"


def test_a_cambodian_number_is_read_in_the_chosen_country(staff):
    assert add(staff, "012 345 678", country="KH").status_code == 302
    assert OptOut.objects.get().contact.phone == "85512345678"
    # written with its calling code, it is read as written whatever the select says
    assert add(staff, "+855 97 123 4567", country="VN").status_code == 302
    assert OptOut.objects.filter(contact__phone="855971234567").exists()


def test_a_wrong_phone_says_why_never_choose_a_valid_option(staff):
    response = add(staff, "12345")
    assert response.status_code == 200
    page = response.content.decode()
    assert "valid choice" not in page and "valid option" not in page
    assert 'class="errorlist' in page
    assert not OptOut.objects.exists() and not Contact.objects.exists()


def test_an_earlier_opt_out_is_kept_and_said(staff):
    add(staff, "0912345678", reason="first")
    response = add(staff, "+84912345678", reason="second")
    assert response.status_code == 302
    assert OptOut.objects.get().reason == "first"
    listing = staff.get(response["Location"]).content.decode()
    assert "0912 345 678 had already opted out of All channels." in listing


def test_the_change_page_shows_the_phone_not_an_id(staff):
    add(staff, "0912345678")
    opt_out = OptOut.objects.get()
    page = staff.get(reverse("admin:campaigns_optout_change", args=[opt_out.pk])).content.decode()
    assert "0912 345 678" in page
    assert 'name="contact"' not in page


def test_a_user_without_the_permission_may_not(client):
    # A staff user who may only look at contacts (no role grants fewer rights than that).
    viewer = UserFactory(username="viewer", is_staff=True)
    viewer.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_contact", "view_optout"])
    )
    client.force_login(viewer)
    assert client.get(ADD).status_code == 403
    assert add(client, "0912345678").status_code == 403
    contact = Contact.objects.create(phone="84912345678")
    page = client.get(reverse("admin:campaigns_contact_change", args=[contact.pk])).content
    assert b'id="contact-opt-out"' not in page
    url = reverse("admin:campaigns_optout_contact", args=[contact.pk])
    assert client.post(url, {"channel_kind": "all"}).status_code == 403
    assert client.get(UPLOAD).status_code == 403
    contacts = client.get(reverse("admin:campaigns_contact_changelist")).content.decode()
    assert UPLOAD not in contacts  # no link that leads to a 403
    assert not OptOut.objects.exists()


@pytest.mark.parametrize("who", ["staff", "marketer_client"])
def test_opt_out_from_the_contact_page(request, who):
    client = request.getfixturevalue(who)
    contact = Contact.objects.create(phone="84912345678", name="Trần Thị Bình")
    page = client.get(reverse("admin:campaigns_contact_change", args=[contact.pk])).content
    url = reverse("admin:campaigns_optout_contact", args=[contact.pk])
    assert f'id="contact-opt-out" href="{url}"'.encode() in page
    confirm = client.get(url).content.decode()
    assert "0912 345 678" in confirm and 'name="channel_kind"' in confirm
    response = client.post(url, {"channel_kind": "sms", "reason": "Khách nhắn STOP"})
    assert response["Location"] == reverse("admin:campaigns_contact_change", args=[contact.pk])
    opt_out = contact.opt_outs.get()
    assert (opt_out.channel_kind, opt_out.reason) == ("sms", "Khách nhắn STOP")
    again = client.post(url, {"channel_kind": "sms"}, follow=True).content.decode()
    assert "0912 345 678 had already opted out of SMS." in again
    assert client.get(url).content.decode().count('id="optout-current"') == 1


@pytest.mark.parametrize("who", ["staff", "marketer_client"])
def test_the_opt_out_file_upload(request, who):
    client = request.getfixturevalue(who)
    listing = client.get(CHANGELIST).content.decode()
    assert 'id="upload-optouts"' in listing
    content = "SĐT\n0912 345 678\n+84 987 654 321\nkhông có\n".encode()
    response = client.post(
        UPLOAD,
        {"file": SimpleUploadedFile("stop.csv", content), "channel_kind": "all", "country": "VN"},
    )
    assert response.status_code == 200
    assert set(OptOut.objects.values_list("contact__phone", flat=True)) == {
        "84912345678",
        "84987654321",
    }
    contacts = client.get(reverse("admin:campaigns_contact_changelist")).content.decode()
    assert reverse("admin:campaigns_optout_upload") in contacts
