"""Issue 17, items 3 and 9, as a marketer sees them in Vietnamese in a real browser: phones in the
local form of their country, and the OA's quota lowered by what a campaign sent."""

import re

import pytest
from django.utils import timezone

from campaigns.models import Message
from providers.models import OfficialAccount
from tests.browser.conftest import ensure_roles, login, shot
from tests.factories import (
    CampaignFactory,
    ContactFactory,
    ContactListFactory,
    ProviderAccountFactory,
    UserFactory,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def marketer_user():
    from django.contrib.auth.models import Group

    ensure_roles()
    user = UserFactory(username="thu", is_staff=True)
    user.groups.add(Group.objects.get(name="Marketer"))
    return user


def test_phones_read_in_the_local_form_of_their_country(page_vi, marketer_user):
    """84783160664 is read 0783 160 664; a Cambodian 85512345678 is 012 345 678 (issue 17, 3)."""
    ContactFactory(phone="84783160664", name="Nguyễn Thị Hoa")
    ContactFactory(phone="85512345678", name="Sok Dara")
    page_vi.set_viewport_size({"width": 1366, "height": 768})
    login(page_vi, "thu")
    page_vi.goto("/admin/campaigns/contact/")
    table = page_vi.inner_text("#result_list")
    assert "0783 160 664" in table and "012 345 678" in table
    # The international form is beside it, never the raw stored digits alone.
    assert "+84 783 160 664" in table or "+84783160664" in table
    assert not re.search(r"(?<![+\d])84783160664", table)
    shot(page_vi, "lead-phones-local")


def test_the_oa_quota_on_the_dashboard_drops_by_what_a_campaign_sent(page_vi, marketer_user):
    """The dashboard read 5,000 / 5,000 after 2,000 sends (issue 17, 9): it now reads today's."""
    from campaigns.engine.lifecycle import campaign_send_now
    from campaigns.selectors.dashboard import dashboard_cache_clear

    account = ProviderAccountFactory(kind="sandbox")
    campaign = CampaignFactory(lists=[ContactListFactory(size=12)], channel__account=account)
    oa = campaign.channel.official_account
    OfficialAccount.objects.filter(pk=oa.pk).update(
        daily_quota=5000, remaining_quota=5000, quota_updated_at=timezone.now()
    )
    campaign_send_now(campaign_id=campaign.pk)
    accepted = Message.objects.filter(campaign=campaign).exclude(provider_message_id="").count()
    assert accepted == 12
    dashboard_cache_clear()

    page_vi.set_viewport_size({"width": 1366, "height": 768})
    login(page_vi, "thu")
    page_vi.goto("/admin/")
    # The quota table's row for this OA (the campaigns table names the OA too).
    row = page_vi.locator("tr", has_text=oa.name).filter(has_text="5.000").first.inner_text()
    assert "4.988 / 5.000" in row, row
    shot(page_vi, "lead-oa-quota")
