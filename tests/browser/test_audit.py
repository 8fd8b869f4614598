"""The audit trail in a real browser (issue 21): a marketer exports contacts from the contacts
page; an administrator then finds that export in the audit trail (searching by the marketer's
name and by a date range), with its row count, and the trail offers no way to add, change or
delete an event."""

import csv
import io
from pathlib import Path

import pytest
from django.utils import timezone

from campaigns.privacy.models import AuditEvent
from tests.browser.conftest import PASSWORD, ensure_roles, login, logout, shot
from tests.factories import ContactFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_marketers_export_is_found_in_the_audit_trail(page, live_server):
    ensure_roles()
    UserFactory(username="lan", groups=["Marketer"])
    from django.contrib.auth.models import User

    User.objects.create_superuser("boss", "boss@example.com", PASSWORD)
    for i in range(7):
        ContactFactory(name=f"Khách {i}")

    login(page, "lan")
    page.goto("/admin/campaigns/contact/")
    with page.expect_download() as info:
        page.click("#export-contacts")
    text = Path(info.value.path()).read_text(encoding="utf-8-sig")
    assert len(list(csv.reader(io.StringIO(text)))) == 8  # header + 7
    logout(page)

    login(page, "boss")
    page.goto("/admin/privacy/auditevent/")
    today = timezone.localdate().isoformat()
    page.fill("#audit-since", today)
    page.fill("#audit-until", today)
    page.click("#audit-date-apply")
    page.wait_for_load_state()
    page.fill("#searchbar", "lan")
    page.press("#searchbar", "Enter")
    page.wait_for_load_state()
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 1
    row = rows.first.inner_text()
    assert "lan" in row and "Exported contacts" in row and "\t7\t" in row
    assert "since=" in page.url and "q=lan" in page.url  # the date range kept with the search
    # No "Add" button, no delete action; the event's page has no save or delete button.
    assert page.locator(".object-tools .addlink").count() == 0
    assert page.locator("select[name=action]").count() == 0
    shot(page, "audit-trail")
    rows.first.locator("th a, td a").first.click()
    page.wait_for_load_state()
    assert page.locator("input[name=_save]").count() == 0
    assert page.locator(".deletelink").count() == 0
    event = AuditEvent.objects.get(action="export.contacts")
    assert event.rows == 7 and event.actor_label == "lan" and event.ip_address == "127.0.0.1"
