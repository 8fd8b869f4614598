"""Issue 17, item 1 in a real browser, in Vietnamese: a marketer opens a draft's review step,
sends a test to a number on a sandbox channel with a chosen contact's data, sees the result in
the page, and sees it on the campaign page. Screenshot: docs/screenshots/testsend-review.png."""

import pytest
from django.utils import translation

from campaigns.models import Campaign, CampaignTestSend, Message
from tests.browser.conftest import CHROMIUM_ARGS, ensure_roles, login, shot
from tests.factories import (
    CampaignFactory,
    ChannelFactory,
    ContactFactory,
    ContactListFactory,
    TemplateFactory,
    UserFactory,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def page_vi_1366(browser, live_server):
    context = browser.new_context(
        base_url=live_server.url,
        locale="vi-VN",
        timezone_id="Asia/Ho_Chi_Minh",
        viewport={"width": 1366, "height": 768},
    )
    p = context.new_page()
    p.set_default_timeout(20_000)
    yield p
    context.close()


def _vi(text) -> str:
    with translation.override("vi"):
        return str(text)


def test_a_marketer_sends_a_test_from_the_review_step(page_vi_1366):
    assert CHROMIUM_ARGS  # the browser fixture's arguments (tests/browser/conftest.py)
    page = page_vi_1366
    ensure_roles()
    UserFactory(username="lan", groups=["Marketer"])
    channel = ChannelFactory(name="Zalo OA Cửa hàng")  # the sandbox provider
    template = TemplateFactory(
        account=channel.account,
        official_account=channel.official_account,
        name="Xác nhận đơn hàng",
        body="Xin chào {{customer_name}}, đơn hàng {{order_code}} của bạn đã được xác nhận.",
    )
    first = ContactFactory(name="Nguyễn Thị Hoa", attributes={"order": "DH1001"})
    wanted = ContactFactory(
        name="Trần Văn Bảo", phone="84983111222", attributes={"order": "DH2002"}
    )
    campaign = CampaignFactory(
        name="Khuyến mãi tháng 12",
        channel=channel,
        template=template,
        lists=[ContactListFactory(contacts=[first, wanted], name="Khách quen")],
    )

    login(page, "lan")
    page.goto(f"/admin/campaigns/campaign/{campaign.pk}/wizard/5/")
    page.wait_for_selector("#test-send")
    # The first recipient is picked; the marketer looks the other one up by name, no accents.
    page.fill("#test-send-contact-search", "tran van")
    page.wait_for_function(
        "() => document.querySelectorAll('#test-send-contact option').length === 1"
    )
    assert "Trần Văn Bảo" in page.inner_text("#test-send-contact")
    # Their own phone, and a Cambodian number this Zalo channel cannot reach.
    page.fill("#id_phones", "0912 345 678\n+855 12 345 678")
    page.click("#test-send-button")

    page.wait_for_selector("#test-send-results")
    row = page.locator("#test-send-result-1")
    assert "0912 345 678" in row.inner_text()
    assert _vi(CampaignTestSend.Outcome.ACCEPTED.label) in row.inner_text()
    refused = page.locator("#test-send-result-2").inner_text()
    assert _vi(CampaignTestSend.Outcome.REFUSED.label) in refused and "855" in refused
    # Only what went out counts against the day; the numbers are remembered for the next test.
    assert "4" in page.inner_text("#test-send-left")
    assert page.input_value("#id_phones").splitlines() == ["0912 345 678", "+855 12 345 678"]
    page.locator("#test-send").scroll_into_view_if_needed()
    shot(page, "testsend-review")

    sent = CampaignTestSend.objects.get(campaign=campaign, outcome="accepted")
    assert sent.phone == "84912345678" and sent.contact == wanted
    assert sent.template_data == {"customer_name": "Trần Văn Bảo", "order_code": "DH2002"}
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DRAFT and campaign.total_count == 0
    assert not Message.objects.filter(campaign=campaign).exists()

    page.goto(f"/admin/campaigns/campaign/{campaign.pk}/change/")
    table = page.locator("#test-sends")
    text = table.inner_text()
    assert "0912 345 678" in text and "lan" in text
    assert _vi(CampaignTestSend.Outcome.ACCEPTED.label) in text
