"""The review step's "finishes at about ...": campaigns.engine.policy.finish_estimate (pure) and
sending_window, and campaigns.selectors.wizard.campaign_finish_note over a real campaign."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from campaigns.engine.policy import finish_estimate, sending_window
from campaigns.selectors.wizard import campaign_finish_note, campaign_send_rate
from templates_app.models import Template
from tests.factories import CampaignFactory

HCM = ZoneInfo("Asia/Ho_Chi_Minh")
PROMO = (7 * 60, 22 * 60)  # the default quiet hours' window, 07:00-22:00


def at(day, hour, minute=0, second=0):
    return datetime(2026, 12, day, hour, minute, second, tzinfo=HCM)


def test_plain_send_is_count_over_rate():
    # 6,000 messages at 10/s: 600 s
    assert finish_estimate(start=at(3, 19), count=6000, rate=10) == at(3, 19, 10)


def test_nothing_to_send_finishes_at_start():
    assert finish_estimate(start=at(3, 19), count=0, rate=10) == at(3, 19)


def test_no_rate_gives_no_estimate():
    assert finish_estimate(start=at(3, 19), count=10, rate=0) is None


def test_promotion_crossing_22_waits_overnight():
    # 21:30 + 1 h of sending at 1/s: 30 min before 22:00, the other 30 min from 07:00 next day
    end = finish_estimate(start=at(3, 21, 30), count=3600, rate=1, window=PROMO)
    assert end == at(4, 7, 30)


def test_without_window_the_same_send_runs_through_the_night():
    assert finish_estimate(start=at(3, 21, 30), count=3600, rate=1) == at(3, 22, 30)


def test_promotion_started_at_night_begins_at_seven():
    assert finish_estimate(start=at(3, 23), count=600, rate=1, window=PROMO) == at(4, 7, 10)
    assert finish_estimate(start=at(4, 5), count=600, rate=1, window=PROMO) == at(4, 7, 10)


def test_a_long_promotion_spans_several_days():
    # 15 h a day at 1/s = 54,000 a day; 120,000 from 07:00 -> two full days and 12,000 s on day 3
    end = finish_estimate(start=at(3, 7), count=120_000, rate=1, window=PROMO)
    assert end == at(5, 7) + timedelta(seconds=12_000)


def test_ends_exactly_when_the_window_closes():
    assert finish_estimate(start=at(3, 21), count=3600, rate=1, window=PROMO) == at(3, 22)


def test_zalo_night_window_opens_at_six():
    window = sending_window(promotion=False, zalo_night=True)
    assert window == (6 * 60, 22 * 60)
    assert finish_estimate(start=at(3, 21, 50), count=1200, rate=1, window=window) == at(4, 6, 10)


def test_windows_combine_to_the_narrower(settings):
    assert sending_window(promotion=False, zalo_night=False) is None
    assert sending_window(promotion=True, zalo_night=False) == PROMO
    assert sending_window(promotion=True, zalo_night=True) == PROMO
    settings.LOA = {**settings.LOA, "QUIET_HOURS": "05:30-23:00"}
    assert sending_window(promotion=True, zalo_night=False) == (5 * 60 + 30, 23 * 60)
    assert sending_window(promotion=True, zalo_night=True) == (6 * 60, 22 * 60)


def test_daily_quota_waits_for_the_reset():
    # 100 left today, 1,000 a day: 100 now, the next 1,000 from 00:05, the last 400 at 00:05 day+2
    end = finish_estimate(start=at(3, 19), count=1500, rate=10, quota_left=100, quota_daily=1000)
    assert end == at(5, 0, 5, 40)


def test_quota_and_promotion_window_together():
    # 0 left today: tomorrow from 07:00 (00:05 is inside the quiet hours), 36,000 s at 1/s...
    end = finish_estimate(
        start=at(3, 19), count=100, rate=1, window=PROMO, quota_left=0, quota_daily=5000
    )
    assert end == at(4, 7, 1, 40)


def test_no_quota_ever_gives_no_estimate():
    assert finish_estimate(start=at(3, 19), count=10, rate=1, quota_left=0, quota_daily=0) is None


# ---- over a campaign --------------------------------------------------------------------------


@pytest.mark.django_db
def test_campaign_rate_is_the_slower_of_campaign_and_account():
    c = CampaignFactory(rate_limit=5)
    c.channel.account.rate_limit = 2
    assert campaign_send_rate(campaign=c) == (2.0, False)
    c.channel.account.rate_limit = None
    assert campaign_send_rate(campaign=c) == (5.0, False)
    c.rate_limit = None
    rate, assumed = campaign_send_rate(campaign=c)
    assert assumed and rate > 0


@pytest.mark.django_db
def test_zalo_promotion_campaign_note_crosses_22():
    c = CampaignFactory(rate_limit=1)
    c.template.tag = Template.Tag.PROMOTION
    c.template.save()
    oa = c.channel.official_account
    oa.remaining_quota = oa.daily_quota = None
    oa.save()
    note = campaign_finish_note(campaign=c, recipients=3600, start=at(3, 21, 30))
    assert note["finish"] == at(4, 7, 30)
    assert note["window"] == ("07:00", "22:00")
    assert note["assumed"] is False and note["quota"] is False


@pytest.mark.django_db
def test_zalo_transaction_campaign_sends_through_the_night():
    c = CampaignFactory(rate_limit=1)
    c.template.tag = Template.Tag.TRANSACTION
    c.template.save()
    note = campaign_finish_note(campaign=c, recipients=3600, start=at(3, 21, 30))
    assert note["finish"] == at(3, 22, 30)
    assert note["window"] is None
    assert note["quota"] is True  # the OA's 5,000 a day is counted (and is enough here)


@pytest.mark.django_db
def test_zalo_customer_care_waits_for_six():
    c = CampaignFactory(rate_limit=1)
    c.template.tag = Template.Tag.CUSTOMER_CARE
    c.template.save()
    note = campaign_finish_note(campaign=c, recipients=3600, start=at(3, 21, 30))
    assert note["finish"] == at(4, 6, 30)
    assert note["window"] == ("06:00", "22:00")
