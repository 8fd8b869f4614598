"""Issue 17, items 11 and 12, in a real browser and in Vietnamese, as the users meet them:

- item 11: the dashboard fits 1366 px (no sideways scroll); a confirmation page and the test-send
  page carry their title once; a contact's lists are named, with Vietnamese column headers; the
  contact staff's import page and the marketer's channel page show no link that answers 403;
- item 12: a Google Contacts export (names in First/Middle/Last, several numbers in one cell
  joined by " ::: ") imported by contact staff with a real qcluster worker: the names read in
  Vietnamese order and the import says what it did with the extra numbers.

Screenshots: docs/screenshots/polish-dashboard-1366.png, polish-google-import.png."""

from __future__ import annotations

import pytest
from django.utils import translation
from django.utils.translation import gettext as _

from campaigns.models import Contact, ContactImport, ContactListMembership
from tests.browser.conftest import ensure_roles, login, shot
from tests.browser.test_journey import seed_history
from tests.conftest import wait_for
from tests.contacts.conftest import report_rows
from tests.factories import (
    CampaignFactory,
    ChannelFactory,
    ContactFactory,
    ContactListFactory,
    TemplateFactory,
    UserFactory,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

GOOGLE_CSV = (
    "First Name,Middle Name,Last Name,Nickname,Labels,E-mail 1 - Label,E-mail 1 - Value,"
    "Phone 1 - Label,Phone 1 - Value,Phone 2 - Label,Phone 2 - Value\n"
    "An,Văn,Nguyễn,,* myContacts,,,Mobile,0912 345 678,,\n"
    "Bình,Thị,Trần,,* myContacts,* Home,binh@example.com,Mobile,"
    "0987 654 321 ::: +84 903 123 456,,\n"
    "Châu,Minh,Lê,,* myContacts,,,Mobile,0977 111 222 ::: 0977 111 223 ::: 024 3826 1234,,\n"
    "Dũng,,Phạm,,* myContacts,,,Mobile,123 ::: 456789,,\n"
    "Hà,Thu,Hoàng,,* myContacts,,,Work,+84 901 222 333,Mobile,0901 222 334\n"
).encode()


def _world():
    channel = ChannelFactory(
        name="Zalo ZNS (sandbox)",
        account__name="Sandbox",
        official_account__name="Loa Demo OA",
    )
    template = TemplateFactory(
        account=channel.account,
        official_account=channel.official_account,
        name="Xác nhận đơn hàng",
        provider_template_id="205644",
        body="Xin chào {{customer_name}}, đơn hàng {{order_code}} của bạn đã được xác nhận.",
    )
    return channel, template


def test_dashboard_fits_1366_and_pages_read_once(page_vi, live_server):
    from campaigns.selectors.dashboard import dashboard_cache_clear

    page = page_vi
    page.set_viewport_size({"width": 1366, "height": 768})
    ensure_roles()
    channel, template = _world()
    seed_history(channel, template)
    running = CampaignFactory(
        name="Khuyến mãi Tết", channel=channel, template=template, status="running"
    )
    lan = UserFactory(username="lan", groups=["Marketer"])
    assert lan.pk

    # The dashboard with a week of sends: its chart's table for screen readers stays inside.
    login(page, "lan")
    dashboard_cache_clear()
    page.goto("/admin/")
    page.wait_for_selector("#dash-sends svg")
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 1366, f"the dashboard scrolls sideways: {width}px wide at 1366"
    assert page.locator("#dash-sends table.visually-hidden").count() == 1
    shot(page, "polish-dashboard-1366")

    # A confirmation page carries its title once (Django's header shows it already).
    page.goto(f"/admin/campaigns/campaign/{running.pk}/action/pause/")
    page.wait_for_selector("#confirm-action")
    title = page.inner_text("#content h1")
    assert page.locator("#content h1", has_text=title).count() == 1
    assert page.locator("h1, h2", has_text=title).count() == 1

    # The marketer reads the channel's provider account; Loa does not offer a link to a 403.
    page.goto(f"/admin/providers/channel/{channel.pk}/change/")
    page.wait_for_selector("#content-main")
    assert "Sandbox" in page.inner_text("#content-main")
    assert page.locator("a[href*='/admin/providers/provideraccount/']").count() == 0
    # The message list names its campaign column in Vietnamese, not "CAMPAIGN".
    page.goto("/admin/campaigns/message/")
    headers = page.inner_text("#result_list thead").lower()
    assert "chiến dịch" in headers and "campaign" not in headers


def test_template_test_send_page_has_one_title(page_vi, live_server):
    ensure_roles()
    _channel, template = _world()
    UserFactory(username="boss", is_superuser=True, is_staff=True)
    login(page_vi, "boss")
    page_vi.goto(f"/admin/templates_app/template/{template.pk}/test-send/")
    page_vi.wait_for_selector("#content h1")
    title = page_vi.inner_text("#content h1")
    assert page_vi.locator("h1, h2", has_text=title).count() == 1


def test_contact_page_names_its_lists_and_staff_see_no_dead_link(page_vi, live_server):
    page = page_vi
    ensure_roles()
    thu = UserFactory(username="thu", groups=["Contact staff"])
    contact = ContactFactory(name="Nguyễn Văn An", phone="84912345678")
    lst = ContactListFactory(name="Khách VIP", size=0)
    ContactListMembership.objects.create(contact_list=lst, contact=contact)

    login(page, "thu")
    page.goto(f"/admin/campaigns/contact/{contact.pk}/change/")
    group = page.locator(".inline-group").filter(has_text="Khách VIP")
    text = group.inner_text()
    assert f"{lst.pk}:{contact.pk}" not in text
    assert "Khách VIP · Nguyễn Văn An" in text
    head = group.locator("thead").inner_text().lower()
    assert "danh sách liên hệ" in head and "contact list" not in head

    # The import page of a file the staff member uploaded: "created by" is text, not a link
    # to a user page contact staff may not open.
    imp = ContactImport.objects.create(
        original_name="khach.csv", contact_list=lst, created_by=thu, status="completed"
    )
    page.goto(f"/admin/campaigns/contactimport/{imp.pk}/change/")
    page.wait_for_selector("#content-main")
    assert "thu" in page.inner_text(".field-created_by_text")
    assert page.locator("a[href*='/admin/auth/user/']").count() == 0


def test_google_contacts_import(page_vi, live_server, qcluster):
    """Contact staff upload Google Contacts' export; the worker imports it."""
    page = page_vi
    page.set_viewport_size({"width": 1366, "height": 768})
    ensure_roles()
    cluster = qcluster()
    UserFactory(username="thu", groups=["Contact staff"])

    login(page, "thu")
    page.goto("/admin/campaigns/contactimport/add/")
    page.set_input_files(
        "#id_file",
        files=[{"name": "contacts.csv", "mimeType": "text/csv", "buffer": GOOGLE_CSV}],
    )
    page.fill("#id_new_list_name", "Danh bạ Google")
    page.click("#upload-submit")
    page.wait_for_selector("#preview-table")
    # "Phone 1 - Value" is recognized as the phone column; no whole-name column is guessed.
    assert page.input_value("#id_map_8") == "phone"
    assert "name" not in [page.input_value(f"#id_map_{i}") for i in range(11)]
    # ... and the page says how the names and the extra numbers will be read.
    assert page.locator("#name-composed").count() == 1
    assert "phone_2, phone_3, phone_4" in page.inner_text("#several-phones")
    page.click("#start-import")
    page.wait_for_selector("#import-panel")

    imp = wait_for(
        lambda: ContactImport.objects.filter(status__in=["completed", "failed"]).first(),
        timeout=90,
    )
    assert imp is not None and imp.status == "completed", cluster.output()
    assert (imp.imported_count, imp.invalid_count) == (4, 1)
    page.wait_for_function(
        "() => (document.querySelector('#import-warnings') || {}).textContent"
        " && document.querySelector('#import-warnings').textContent.indexOf('phone_2') >= 0",
        timeout=30_000,
    )
    warnings = page.inner_text("#import-warnings")
    assert "phone_2, phone_3, phone_4" in warnings and "3, 4" in warnings  # rows 3 and 4
    shot(page, "polish-google-import")

    names = dict(Contact.objects.values_list("phone", "name"))
    assert names == {
        "84912345678": "Nguyễn Văn An",
        "84987654321": "Trần Thị Bình",
        "84977111222": "Lê Minh Châu",
        "84901222333": "Hoàng Thu Hà",
    }
    chau = Contact.objects.get(phone="84977111222")
    assert (chau.attributes["phone_2"], chau.attributes["phone_3"]) == (
        "84977111223",
        "024 3826 1234",
    )
    # The contact list shows the composed names to the staff member.
    page.goto(f"/admin/campaigns/contact/?list={imp.contact_list_id}")
    listing = page.inner_text("#result_list")
    assert "Trần Thị Bình" in listing and "Lê Minh Châu" in listing
    # The refused row's reason is the true one: several numbers, none valid (written in the
    # uploader's language, as the worker wrote it).
    header, refused = report_rows(imp)
    with translation.override("vi"):
        several = _("The cell holds {n} phone numbers and none of them is valid: {reasons}")
    assert refused[:2] == ["5", "123 ::: 456789"]
    assert refused[2].startswith(several.split("{reasons}")[0].format(n=2))
