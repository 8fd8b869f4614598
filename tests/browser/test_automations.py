"""A marketer creates a birthday automation from the admin (issue 20) and sees its preview: who
would get it on a chosen day, the count, the solar and lunar dates. Screenshots:
docs/screenshots/automation-preview.png, automations-list.png."""

from __future__ import annotations

import importlib
import json

import pytest
from django.contrib.auth.models import Permission

from campaigns.automations.models import Automation
from tests.automations.helpers import MAPPING, contact, sendable
from tests.browser.conftest import ensure_roles, login, shot
from tests.factories import ContactListFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_marketer_creates_a_birthday_automation_and_sees_its_preview(page, live_server):
    ensure_roles()
    grants = importlib.import_module(
        "campaigns.automations.migrations.0003_marketer_permissions"
    ).GRANTS["Marketer"]
    user = UserFactory(username="lan", groups=["Marketer"])
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="automations", codename__in=grants)
    )
    channel, template = sendable()
    members = ContactListFactory(
        name="Khách thân thiết",
        contacts=[
            contact("84930000001", birthday="1990-06-01"),
            contact("84930000002", birthday="1985-06-01"),
            contact("84930000003", birthday="1990-06-02"),
        ],
    )
    login(page, "lan")
    page.goto("/admin/automations/automation/add/")
    page.fill("#id_name", "Chúc mừng sinh nhật")
    page.select_option("#id_kind", "date_trigger")
    page.select_option("#id_channel", str(channel.pk))
    page.select_option("#id_template", str(template.pk))
    page.fill("#id_param_mapping", json.dumps(MAPPING))
    page.check(f"#id_lists input[value='{members.pk}']")
    page.fill("#id_send_time", "08:00")
    page.fill("#id_attribute_key", "birthday")
    page.select_option("#id_direction", "on")
    page.click("input[name=_save]")
    page.wait_for_selector("#preview-form")
    automation = Automation.objects.get()
    assert automation.kind == "date_trigger" and automation.next_run_at is not None

    page.fill("#id_day", "2027-06-01")
    page.click("#preview-form button[type=submit]")
    page.wait_for_selector("#preview-count")
    assert page.inner_text("#preview-count").startswith("2 contacts would get it.")
    day = page.inner_text("#preview-day")
    assert "01/06/2027" in day or "1 Jun 2027" in day or "06/01/2027" in day
    assert "lunar" in day
    rows = page.locator("#preview-contacts tbody tr")
    assert rows.count() == 2
    assert "1985-06-01" in page.inner_text("#preview-contacts")
    assert "1990-06-02" not in page.inner_text("#preview-contacts")
    shot(page, "automation-preview")
    page.goto("/admin/automations/automation/")
    assert "On the date in “birthday” (every year) at 08:00" in page.inner_text("#result_list")
    assert "lunar" in page.inner_text("#result_list")
    shot(page, "automations-list")


def test_automation_pages_have_no_serious_accessibility_violation(page_vi, live_server):
    """axe-core on the automations list, the form, the preview (in Vietnamese) and the holidays."""
    try:
        from axe_playwright_python.sync_playwright import Axe
    except ImportError:
        pytest.skip("axe-playwright-python is not installed: pip install -e '.[dev]'")
    from django.utils import timezone

    from campaigns.automations.services import holidays_seed
    from tests.automations.helpers import make_automation
    from tests.browser.test_accessibility import violations

    axe = Axe()
    UserFactory(username="root", is_superuser=True)
    holidays_seed(years=[2027])
    members = ContactListFactory(contacts=[contact("84931000001", birthday="1990-06-01")])
    automation = make_automation(now=timezone.now(), lists=[members])
    login(page_vi, "root")
    found = []
    for name, url in [
        ("list", "/admin/automations/automation/"),
        ("form", f"/admin/automations/automation/{automation.pk}/change/"),
        ("preview", f"/admin/automations/automation/{automation.pk}/preview/?day=2027-06-01"),
        ("holidays", "/admin/automations/holiday/"),
    ]:
        page_vi.goto(url)
        found += violations(axe, page_vi, name)
    assert not found, "\n".join(found)
