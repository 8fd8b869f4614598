"""The OA's ZNS quota as the marketer reads it (issue 17, item 9): lowered as the engine sends,
given back at the daily reset, read again from the provider on a schedule."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from django_q.models import Schedule

from campaigns.engine.lifecycle import campaign_send_now
from campaigns.models import Message
from providers.models import OfficialAccount
from providers.quota import last_reset, oa_quota_reset_due, oa_quota_spend
from providers.tasks import oa_sync_all_task
from tests.factories import (
    CampaignFactory,
    ContactListFactory,
    OfficialAccountFactory,
    ProviderAccountFactory,
)

VN = ZoneInfo("Asia/Ho_Chi_Minh")


@pytest.mark.django_db(transaction=True)
def test_a_campaign_lowers_its_oa_quota_by_what_the_provider_accepted():
    account = ProviderAccountFactory(kind="sandbox")
    campaign = CampaignFactory(lists=[ContactListFactory(size=7)], channel__account=account)
    oa = campaign.channel.official_account
    OfficialAccount.objects.filter(pk=oa.pk).update(
        daily_quota=5000, remaining_quota=5000, quota_updated_at=timezone.now()
    )
    campaign_send_now(campaign_id=campaign.pk)
    accepted = Message.objects.filter(campaign=campaign, provider_message_id__gt="").count()
    assert accepted == 7
    oa.refresh_from_db()
    assert oa.remaining_quota == 5000 - accepted


@pytest.mark.django_db
def test_spending_never_goes_below_zero_and_an_unknown_quota_stays_unknown():
    seen = timezone.now()
    low = OfficialAccountFactory(daily_quota=10, remaining_quota=3, quota_updated_at=seen)
    unknown = OfficialAccountFactory(daily_quota=None, remaining_quota=None)
    oa_quota_spend(oa_id=low.pk, count=5)
    oa_quota_spend(oa_id=unknown.pk, count=5)
    low.refresh_from_db()
    unknown.refresh_from_db()
    assert low.remaining_quota == 0
    assert unknown.remaining_quota is None


@pytest.mark.django_db
def test_the_quota_comes_back_at_local_midnight_not_before():
    evening = datetime(2026, 12, 3, 23, 50, tzinfo=VN)
    oa = OfficialAccountFactory(daily_quota=5000, remaining_quota=3000, quota_updated_at=evening)
    assert oa_quota_reset_due(now=evening + timedelta(minutes=5)) == 0
    oa.refresh_from_db()
    assert oa.remaining_quota == 3000
    after_midnight = datetime(2026, 12, 4, 0, 1, tzinfo=VN)
    assert last_reset(after_midnight) == datetime(2026, 12, 4, 0, 0, tzinfo=VN)
    assert oa_quota_reset_due(now=after_midnight) == 1
    oa.refresh_from_db()
    assert oa.remaining_quota == 5000
    # A spend on the new day starts from the full quota even before the scheduled task ran.
    OfficialAccount.objects.filter(pk=oa.pk).update(remaining_quota=100, quota_updated_at=evening)
    oa_quota_spend(oa_id=oa.pk, count=2, now=after_midnight)
    oa.refresh_from_db()
    assert oa.remaining_quota == 4998


@pytest.mark.django_db
def test_the_scheduled_sync_reads_each_account_and_one_failure_stops_no_other(monkeypatch):
    good = ProviderAccountFactory(kind="sandbox", name="good")
    broken = ProviderAccountFactory(kind="sandbox", name="broken")
    from providers.sandbox.adapter import SandboxProvider

    real = SandboxProvider.list_official_accounts

    def flaky(self):
        if self.config.account_id == broken.pk:
            raise RuntimeError("provider down")
        return real(self)

    monkeypatch.setattr(SandboxProvider, "list_official_accounts", flaky)
    lines = oa_sync_all_task()
    assert any(line.startswith("good:") and "synced" in line for line in lines)
    assert any(line.startswith("broken:") for line in lines)
    assert OfficialAccount.objects.filter(account=good, remaining_quota__isnull=False).exists()
    assert not OfficialAccount.objects.filter(account=broken).exists()


@pytest.mark.django_db
def test_the_oa_sync_runs_on_a_schedule():
    schedule = Schedule.objects.get(func="providers.tasks.oa_sync_all_task")
    assert schedule.schedule_type == Schedule.HOURLY and schedule.repeats == -1


def test_the_sandbox_charges_the_templates_price_not_a_fixed_300():
    """Issue 17, item 9: the sandbox's delivery callback carries the template's price."""
    from decimal import Decimal

    from providers.base import AccountConfig, OutboundMessage
    from providers.sandbox.adapter import SandboxProvider, _fate

    sandbox = SandboxProvider(AccountConfig(0, "sandbox", "", {}, {}))
    delivered_keys = (f"k{i}" for i in range(1000) if _fate(f"k{i}")[0] in ("delivered", "read"))

    def fee_of(price):
        key = next(delivered_keys)
        sandbox.send(
            OutboundMessage(
                idempotency_key=key,
                phone="84912345678",
                template_id="1",
                template_data={},
                price=price,
            )
        )
        return next(
            o["payload"]["fee"]
            for o in sandbox._outbox
            if o["payload"]["tracking_id"] == key and o["payload"]["status"] == "delivered"
        )

    assert fee_of(Decimal("1250.00")) == "1250.00"
    assert fee_of(None) is None
