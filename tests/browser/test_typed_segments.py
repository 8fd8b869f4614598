"""A declared date attribute in the rule builder (issue 20): "het_han" declared a date offers the
date operators, "in the next N days" counts live, and a lunar date attribute offers only whether
it is filled."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns.models import AttributeDefinition, Contact, Segment
from tests.browser.conftest import ensure_roles, login
from tests.conftest import wait_for
from tests.factories import UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_date_rules_on_a_declared_attribute(page_vi, live_server):
    page = page_vi
    ensure_roles()
    UserFactory(username="lan", groups=["Marketer"])
    AttributeDefinition.objects.create(key="het_han", label="Hết hạn", type="date")
    AttributeDefinition.objects.create(key="sinh_am", label="Sinh nhật âm", type="lunar_date")
    today = timezone.localdate()
    for n in range(12):  # expiring in 0, 3, 6, ... 33 days
        Contact.objects.create(
            phone=f"849120001{n:02d}",
            name=f"Khách {n}",
            attributes={"het_han": (today + timedelta(days=3 * n)).isoformat()},
        )
    login(page, "lan")
    page.goto("/admin/campaigns/segment/add/")
    page.fill("#id_name", "Sắp hết hạn")
    rule = page.locator(".loa-segment-builder .loa-sb-rule").nth(0)
    rule.locator("select.loa-sb-attribute").select_option("sinh_am")
    ops = rule.locator("select.loa-sb-op option").evaluate_all("os => os.map(o => o.value)")
    assert ops == ["not_empty", "empty"]
    rule.locator("select.loa-sb-attribute").select_option("het_han")
    ops = rule.locator("select.loa-sb-op option").evaluate_all("os => os.map(o => o.value)")
    assert {"next_days", "anniversary_in", "before", "after"} <= set(ops)
    rule.locator("select.loa-sb-op").select_option("next_days")
    assert rule.locator("input.loa-sb-value").get_attribute("type") == "number"
    rule.locator("input.loa-sb-value").fill("10")
    count = page.locator("#segment-live-count")
    assert wait_for(lambda: count.inner_text() == "4", timeout=15), count.inner_text()  # 0-9
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist .success")
    # The builder writes the number of days as a number.
    assert Segment.objects.get(name="Sắp hết hạn").rules == [
        {"attribute": "het_han", "op": "next_days", "value": 10}
    ]
