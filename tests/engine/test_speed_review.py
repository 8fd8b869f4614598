"""Issue 17, item 8 through the admin client: the wizard's review step sets the speed (the
provider account's limit as the ceiling and the default) and says when the send finishes; a
campaign that has started has a read-only page, and a forged POST to it changes nothing."""

import pytest
from django.urls import reverse

from campaigns.models import Campaign
from tests.factories import (
    CampaignFactory,
    ChannelFactory,
    ContactFactory,
    ContactListFactory,
    ProviderAccountFactory,
    UserFactory,
)


@pytest.fixture
def marketer_client(client, db):
    user = UserFactory(username="mk", groups=["Marketer"])
    client.force_login(user)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def _draft(rate_limit=10.0, **fields):
    account = ProviderAccountFactory(rate_limit=rate_limit)
    channel = ChannelFactory(account=account)
    cl = ContactListFactory(contacts=ContactFactory.create_batch(3))
    return CampaignFactory(channel=channel, lists=[cl], **fields)


def _review(c):
    return reverse("admin:campaigns_campaign_wizard", args=[c.pk, 5])


def test_review_step_shows_the_speed_and_the_finish(marketer_client):
    c = _draft()
    page = marketer_client.get(_review(c)).content.decode()
    assert 'id="wizard-speed-form"' in page
    assert 'name="speed"' in page and 'value="10"' in page  # the account's limit by default
    assert "At most 10 messages per second (600 per minute)" in page
    assert "Sent now, it finishes at about" in page
    assert "At 10 messages per second (600 per minute)." in page


def test_speed_per_minute_is_saved_as_messages_per_second(marketer_client):
    c = _draft()
    r = marketer_client.post(
        _review(c), {"action": "save_speed", "speed": "120", "speed_unit": "minute"}
    )
    assert r.status_code == 302
    c.refresh_from_db()
    assert c.rate_limit == pytest.approx(2.0)
    page = marketer_client.get(_review(c)).content.decode()
    assert "At 2 messages per second (120 per minute)." in page


def test_speed_above_the_account_limit_is_refused(marketer_client):
    c = _draft(rate_limit=5.0)
    r = marketer_client.post(
        _review(c), {"action": "save_speed", "speed": "6", "speed_unit": "second"}
    )
    assert r.status_code == 200
    assert "allows at most 5 messages per second" in r.content.decode()
    c.refresh_from_db()
    assert c.rate_limit is None


def test_empty_speed_without_account_limit_means_as_fast_as_possible(marketer_client):
    c = _draft(rate_limit=None)
    c.rate_limit = 3
    c.save()
    r = marketer_client.post(_review(c), {"action": "save_speed", "speed": "", "speed_unit": ""})
    assert r.status_code == 302
    c.refresh_from_db()
    assert c.rate_limit is None
    page = marketer_client.get(_review(c)).content.decode()
    assert "No speed limit" in page


@pytest.mark.parametrize(
    "status",
    ["running", "paused", "settling", "completed", "cancelled", "failed"],
)
def test_started_campaign_page_is_read_only(marketer_client, status):
    c = _draft(status=status, rate_limit=None)
    url = reverse("admin:campaigns_campaign_change", args=[c.pk])
    page = marketer_client.get(url).content.decode()
    assert 'name="_save"' not in page and 'name="_continue"' not in page
    assert 'name="name"' not in page and 'name="rate_limit"' not in page
    # a forged POST is refused and changes nothing
    r = marketer_client.post(url, {"name": "Forged", "rate_limit": "1", "_save": "Save"})
    assert r.status_code == 403
    c.refresh_from_db()
    assert c.name != "Forged" and c.rate_limit is None


def test_running_campaign_keeps_its_actions(marketer_client):
    c = _draft(status=Campaign.Status.RUNNING)
    page = marketer_client.get(reverse("admin:campaigns_campaign_change", args=[c.pk])).content
    page = page.decode()
    assert 'id="action-pause"' in page and 'id="action-cancel"' in page
    assert 'id="export-csv"' in page
    assert "10 messages per second (600 per minute)" in page  # the speed, as text
    assert "deletelink" not in page  # a campaign still sending cannot be deleted


def test_scheduled_campaign_can_still_change_its_time_and_speed(marketer_client):
    c = _draft(status=Campaign.Status.SCHEDULED)
    page = marketer_client.get(reverse("admin:campaigns_campaign_change", args=[c.pk])).content
    page = page.decode()
    assert 'name="_save"' in page and 'name="rate_limit"' in page


def test_another_form_of_the_step_keeps_the_saved_speed_shown(marketer_client):
    c = _draft()
    c.rate_limit = 2
    c.save()
    r = marketer_client.post(_review(c), {"action": "schedule", "scheduled_at": ""})
    assert r.status_code == 200  # "choose the date and time" error, the page shown again
    page = r.content.decode()
    assert 'name="speed" value="2"' in page
