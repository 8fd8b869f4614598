"""API messages are one-recipient campaigns: they stay off the people's campaign list and the
dashboard's active campaigns unless asked for (the origin filter)."""

import pytest

from campaigns.models import Campaign
from campaigns.selectors.dashboard import dashboard_campaigns
from tests.factories import CampaignFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def two(db):
    mine = CampaignFactory(name="Tết promotion", status=Campaign.Status.RUNNING)
    api = CampaignFactory(
        name="API · Shop A · order-1", origin=Campaign.Origin.API, status=Campaign.Status.RUNNING
    )
    return mine, api


def test_the_campaign_list_shows_peoples_campaigns_unless_the_origin_filter_says_otherwise(
    admin_client, two
):
    admin_client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    url = "/admin/campaigns/campaign/"
    page = admin_client.get(url).content.decode()
    assert "Tết promotion" in page and "order-1" not in page
    assert "API messages" in page  # the filter is offered
    page = admin_client.get(url, {"origin": "api"}).content.decode()
    assert "order-1" in page and "Tết promotion" not in page
    page = admin_client.get(url, {"origin": "all"}).content.decode()
    assert "order-1" in page and "Tết promotion" in page


def test_the_dashboard_lists_no_api_message_as_an_active_campaign(two):
    mine, _api = two
    assert [c["pk"] for c in dashboard_campaigns()] == [mine.pk]
