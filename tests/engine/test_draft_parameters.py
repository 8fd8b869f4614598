"""Issue 17, item 6: a draft campaign's page shows its parameter mapping as a table and links to
the wizard's mapping step to change it; the JSON is only behind "Advanced"."""

import re

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from campaigns.models import Campaign
from tests.factories import CampaignFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def english_pages(client):
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"


def test_the_draft_page_links_to_the_wizard_mapping_step(client, marketer):
    campaign = CampaignFactory(
        status=Campaign.Status.DRAFT,
        param_mapping={"customer_name": {"source": "field", "value": "name"}},
    )
    page = client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk]))
    html = page.content.decode()
    wizard = reverse("admin:campaigns_campaign_wizard", args=[campaign.pk, 4])
    assert f'id="draft-mapping-wizard" href="{wizard}"' in html
    assert re.search(r"<code>customer_name</code>", html)  # the table people read
    # the JSON field is there, but only inside the collapsed "Advanced" fieldset
    advanced = html.index("Advanced: the parameters as JSON")
    assert html.index('name="param_mapping"') > advanced
    assert client.get(wizard).status_code in (200, 302)


def test_no_wizard_link_for_who_may_only_view(client):
    campaign = CampaignFactory(
        status=Campaign.Status.DRAFT,
        param_mapping={"customer_name": {"source": "field", "value": "name"}},
    )
    viewer = UserFactory(username="viewer")
    viewer.user_permissions.add(
        Permission.objects.get(content_type__app_label="campaigns", codename="view_campaign")
    )
    client.force_login(viewer)
    response = client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk]))
    assert response.status_code == 200
    assert b"<code>customer_name</code>" in response.content
    assert b'id="draft-mapping-wizard"' not in response.content
