"""The API overview in a real browser: from the admin's home page to the API messages page, a
search by client reference, and the found message's page."""

from decimal import Decimal

import pytest

from campaigns.api.models import ApiApplication
from tests.api.callback_fixtures import api_message_for
from tests.browser.conftest import login, shot
from tests.factories import UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_admin_opens_the_api_overview_and_finds_a_message_by_reference(page):
    UserFactory(username="boss", is_staff=True, is_superuser=True)
    shop = ApiApplication.objects.create(name="Shop Hoa")
    api_message_for(shop, status="delivered", fee=Decimal("300"), client_reference="DH-1001")
    api_message_for(shop, status="failed", client_reference="DH-1002", phone="84901888484")

    login(page, "boss")
    page.click("#api-overview-index a")
    page.wait_for_selector("#api-days-table")
    row = page.locator("tr.api-day").first
    assert "Shop Hoa" in row.inner_text()
    assert row.locator(".api-total").inner_text() == "2"
    assert "300" in row.locator(".api-cost").inner_text()

    page.fill("#api-q", "DH-1002")
    page.click("#api-search input[type=submit]")
    page.wait_for_selector("#api-results")
    results = page.locator("tr.api-result")
    assert results.count() == 1
    assert "DH-1002" in results.first.inner_text()
    shot(page, "api-overview")

    results.first.locator("a").click()
    page.wait_for_load_state()
    assert "/admin/campaigns/message/" in page.url
    assert "84901888484" in page.content() or "0901" in page.content()
