"""A marketer builds a segment by clicking (issue 17, item 2), in Vietnamese: "Thành phố" contains
"ha noi" AND has tag VIP, sees the live count and a sample change as the rules change, saves,
and finds the count on the segment list. Screenshot: docs/screenshots/segments-builder.png."""

from __future__ import annotations

import json

import pytest

from campaigns.models import Contact, Segment, Tag
from tests.browser.conftest import ensure_roles, login, shot
from tests.conftest import wait_for
from tests.factories import UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def seed() -> None:
    cities = ["Hà Nội", "HÀ NỘI", "Ha Noi", "Đà Nẵng", "Huế", "TP. Hồ Chí Minh"]
    for n in range(36):
        Contact.objects.create(
            phone=f"849120000{n:02d}",
            name=f"Khách {n}",
            attributes={"Thành phố": cities[n % 6], "Ngày sinh": f"{1 + n % 28:02d}/05/1990"},
            tags=["vip"] if n % 3 == 0 else [],
        )
    Tag.objects.create(key="vip", name="VIP")


def test_marketer_builds_a_segment_by_clicking(page_vi, live_server):
    page = page_vi
    page.set_viewport_size({"width": 1366, "height": 768})
    ensure_roles()
    UserFactory(username="lan", groups=["Marketer"])
    seed()
    # Hà Nội in three spellings: n % 6 in (0, 1, 2) -> 18 contacts; VIP: n % 3 == 0 -> 12;
    # both: n % 6 == 0 -> 6.
    login(page, "lan")
    page.goto("/admin/campaigns/segment/add/")
    assert "Enter a valid JSON" not in page.content()
    page.fill("#id_name", "Khách VIP Hà Nội")
    builder = page.locator(".loa-segment-builder")
    first = builder.locator(".loa-sb-rule").nth(0)
    first.locator("select.loa-sb-attribute").select_option("Thành phố")
    # a text attribute offers text operators; a date one offers date operators
    ops = first.locator("select.loa-sb-op option").evaluate_all("os => os.map(o => o.value)")
    assert "contains" in ops and "birthday_days" not in ops
    first.locator("select.loa-sb-op").select_option("contains")
    first.locator("input.loa-sb-value").fill("ha noi")
    count = page.locator("#segment-live-count")
    assert wait_for(lambda: count.inner_text() == "18", timeout=15), count.inner_text()
    assert page.locator("#segment-live-sample li").count() == 10  # a sample of ten

    builder.locator("button.loa-sb-add").click()
    second = builder.locator(".loa-sb-rule").nth(1)
    second.locator("select.loa-sb-attribute").select_option("__tag__")
    ops = second.locator("select.loa-sb-op option").evaluate_all("os => os.map(o => o.value)")
    assert ops == ["has_tag", "not_has_tag"]
    second.locator("input.loa-sb-value").fill("VIP")
    assert wait_for(lambda: count.inner_text() == "6", timeout=15), count.inner_text()
    samples = page.locator("#segment-live-sample li").all_inner_texts()
    assert len(samples) == 6 and all("0912 000 0" in s for s in samples)  # local phone form
    third_birthday = builder.locator("select.loa-sb-attribute").nth(0)
    assert third_birthday.locator("option[value='Ngày sinh']").count() == 1
    shot(page, "segments-builder")

    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist .success")
    assert "Enter a valid JSON" not in page.content()
    seg = Segment.objects.get(name="Khách VIP Hà Nội")
    assert seg.rules == [
        {"attribute": "Thành phố", "op": "contains", "value": "ha noi"},
        {"op": "has_tag", "value": "VIP"},
    ], json.dumps(seg.rules, ensure_ascii=False)
    row = page.locator("#result_list tbody tr", has_text="Khách VIP Hà Nội")
    assert row.locator("td.field-list_count").inner_text() == "6"

    # The saved segment opens in the builder again, with its count.
    page.goto(f"/admin/campaigns/segment/{seg.pk}/change/")
    assert page.locator("#segment-count").inner_text() == "6"
    assert page.locator(".loa-sb-rule").count() == 2
    assert page.locator(".loa-sb-rule input.loa-sb-value").nth(0).input_value() == "ha noi"

    # A group: Hà Nội AND has VIP AND (any of: born on the 1st of May, city Huế) -> n % 6 == 0
    # and n % 28 == 0 -> n = 0 only; the JSON view holds the group as the builder wrote it.
    page.click("button.loa-sb-add-group")
    group = page.locator(".loa-sb-group")
    rule = group.locator(".loa-sb-rule").nth(0)
    rule.locator("select.loa-sb-attribute").select_option("Ngày sinh")
    date_ops = rule.locator("select.loa-sb-op option").evaluate_all("os => os.map(o => o.value)")
    assert "birthday_days" in date_ops and "contains" not in date_ops
    rule.locator("select.loa-sb-op").select_option("on")
    rule.locator("input.loa-sb-value").fill("01/05/1990")
    group.locator("button.loa-sb-add-in-group").click()
    other = group.locator(".loa-sb-rule").nth(1)
    other.locator("select.loa-sb-attribute").select_option("Thành phố")
    other.locator("select.loa-sb-op").select_option("eq")
    other.locator("input.loa-sb-value").fill("hue")
    count = page.locator("#segment-live-count")
    assert wait_for(lambda: count.inner_text() == "1", timeout=15), count.inner_text()
    written = json.loads(page.locator("textarea[name=rules]").input_value())
    assert written[2] == {
        "match": "any",
        "rules": [
            {"attribute": "Ngày sinh", "op": "on", "value": "01/05/1990"},
            {"attribute": "Thành phố", "op": "eq", "value": "hue"},
        ],
    }
