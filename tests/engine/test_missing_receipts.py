"""Missing receipts (issue 17, item 7): messages the provider took with no delivery status yet are
their own slice of the funnel, "sent, no receipt yet" within the reconciliation window and
"no receipt" after it."""

from datetime import timedelta

import pytest
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from campaigns.models import Campaign, Message
from campaigns.selectors.campaign import campaign_receipts, campaign_stats
from tests.factories import CampaignFactory, ContactFactory, message_for

pytestmark = pytest.mark.django_db

S = Message.Status


@pytest.fixture
def campaign():
    """10 messages: 2 delivered, 1 read, 1 failed, 3 sent 5 minutes ago, 2 sent 2 hours ago,
    1 still pending."""
    campaign = CampaignFactory()
    now = timezone.now()
    shapes = [
        (S.DELIVERED, now - timedelta(hours=2)),
        (S.DELIVERED, now - timedelta(minutes=5)),
        (S.READ, now - timedelta(hours=2)),
        (S.FAILED, now - timedelta(hours=2)),
        (S.SENT, now - timedelta(minutes=5)),
        (S.SENT, now - timedelta(minutes=5)),
        (S.SENT, now - timedelta(minutes=29)),
        (S.SENT, now - timedelta(minutes=31)),
        (S.SENT, now - timedelta(hours=2)),
        (S.PENDING, None),
    ]
    Message.objects.bulk_create(
        [
            message_for(campaign, ContactFactory(), status=status, sent_at=at)
            for status, at in shapes
        ]
    )
    Campaign.objects.filter(pk=campaign.pk).update(
        status=Campaign.Status.SETTLING,
        started_at=now - timedelta(hours=2),
        total_count=10,
        sent_count=9,  # reached counts: every message but the pending one was sent
        delivered_count=3,
        read_count=1,
        failed_count=1,
    )
    campaign.refresh_from_db()
    return campaign


def test_the_two_slices_by_age_within_the_default_window(campaign):
    # The window is RECONCILE_AFTER_MINUTES (30 by default): 29 minutes is within, 31 after.
    assert campaign_receipts(campaign=campaign) == {"awaiting_receipt": 3, "no_receipt": 2}
    stats = campaign_stats(campaign=campaign)
    assert (stats["awaiting_receipt"], stats["no_receipt"]) == (3, 2)
    assert stats["pct"]["awaiting_receipt"] == 30.0 and stats["pct"]["no_receipt"] == 20.0
    assert stats["receipt_window_minutes"] == 30


def test_the_window_comes_from_the_settings(campaign, settings):
    settings.LOA = {**settings.LOA, "RECONCILE_AFTER_MINUTES": 10}
    assert campaign_receipts(campaign=campaign) == {"awaiting_receipt": 2, "no_receipt": 3}
    settings.LOA = {**settings.LOA, "RECONCILE_AFTER_MINUTES": 180}
    assert campaign_receipts(campaign=campaign) == {"awaiting_receipt": 5, "no_receipt": 0}


def test_a_message_moves_from_the_first_slice_to_the_second_as_it_ages(campaign):
    later = timezone.now() + timedelta(minutes=30)
    assert campaign_receipts(campaign=campaign, now=later) == {
        "awaiting_receipt": 0,
        "no_receipt": 5,
    }


def test_a_receipt_takes_a_message_out_of_both(campaign):
    Message.objects.filter(campaign=campaign, status=S.SENT).update(status=S.DELIVERED)
    assert campaign_receipts(campaign=campaign) == {"awaiting_receipt": 0, "no_receipt": 0}


def test_nothing_sent_costs_no_query(django_assert_num_queries):
    campaign = CampaignFactory()
    with django_assert_num_queries(1):  # the counters only
        stats = campaign_stats(campaign=campaign)
    assert stats["awaiting_receipt"] == 0 and stats["no_receipt"] == 0


@override_settings(LANGUAGE_CODE="en")
def test_the_campaign_page_shows_both_slices_and_where_the_window_comes_from(
    admin_client, campaign, english
):
    page = admin_client.get(
        reverse("admin:campaigns_campaign_change", args=[campaign.pk]),
        headers={"Accept-Language": "en"},
    ).content.decode()
    assert "Sent, no receipt yet" in page and 'id="funnel-awaiting-receipt">3<' in page
    assert 'id="funnel-no-receipt">2<' in page
    assert "LOA_RECONCILE_AFTER_MINUTES" in page and "After 30 minutes" in page
    # the live panel's JSON carries them too
    data = admin_client.get(
        reverse("admin:campaigns_campaign_progress", args=[campaign.pk]) + "?full=1"
    ).json()
    assert data["awaiting_receipt"] == 3 and data["no_receipt"] == 2
    assert 'id="funnel-no-receipt"' in data["panel"]
