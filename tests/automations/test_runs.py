"""Automations run through the real path: the tick (services.automations_tick, what the minutely
django-q2 schedule calls) with the time moved by the test, each run an ordinary campaign whose
messages the engine builds (campaign_send_now -> campaign_materialize)."""

from __future__ import annotations

from collections import Counter
from datetime import date, time, timedelta

import pytest

from campaigns.automations import services
from campaigns.automations.models import Automation, AutomationDelivery, AutomationRun, Holiday
from campaigns.automations.services import automations_tick
from campaigns.models import Campaign, ContactList, Message, Segment
from tests.automations.helpers import contact, local, make_automation
from tests.factories import ContactListFactory

pytestmark = pytest.mark.django_db

R = AutomationRun.Status


def _days(start: date, end: date):
    day = start
    while day <= end:
        yield day
        day += timedelta(days=1)


def _messages_by_phone(automation) -> Counter:
    campaigns = AutomationRun.objects.filter(automation=automation).values("campaign_id")
    return Counter(
        Message.objects.filter(campaign_id__in=campaigns).values_list("phone", flat=True)
    )


def test_birthday_automation_over_a_year_sends_each_contact_once_on_the_right_day():
    people = [
        contact("84901000001", birthday="1990-01-01"),
        contact("84901000002", birthday="1985-02-28"),
        contact("84901000003", birthday="1992-02-29"),  # 2027 is not a leap year: 28 February
        contact("84901000004", birthday="1970-03-01"),
        contact("84901000005", birthday="2000-12-31"),
        contact("84901000006", birthday="1999-07-15"),
        contact("84901000007"),  # no birthday: never
    ]
    outsider = contact("84901000099", birthday="1990-01-01")  # not in the list: never
    members = ContactListFactory(name="Khách hàng", contacts=people)
    automation = make_automation(now=local(date(2026, 12, 31), 9), lists=[members])
    assert automation.next_run_at == local(date(2027, 1, 1), 8, 0, 0)

    sent_on: dict[str, date] = {}
    for day in _days(date(2027, 1, 1), date(2027, 12, 31)):
        if day == date(2027, 7, 1):
            # Added mid-year: one whose birthday has passed (next year's), one still to come.
            late = [
                contact("84901000010", birthday="1995-03-03"),
                contact("84901000011", birthday="1995-09-09"),
            ]
            members.contacts.add(*late)
        for hour in (8, 14):  # a second tick the same day changes nothing
            report = automations_tick(now=local(day, hour))
            for campaign_id in report["created"]:
                for phone in Message.objects.filter(campaign_id=campaign_id).values_list(
                    "phone", flat=True
                ):
                    assert phone not in sent_on, f"{phone} twice"
                    sent_on[phone] = day

    assert sent_on == {
        "84901000001": date(2027, 1, 1),
        "84901000002": date(2027, 2, 28),
        "84901000003": date(2027, 2, 28),
        "84901000004": date(2027, 3, 1),
        "84901000005": date(2027, 12, 31),
        "84901000006": date(2027, 7, 15),
        "84901000011": date(2027, 9, 9),
    }
    assert outsider.phone not in sent_on
    # One run per day of the year; a campaign only on the days someone's birthday falls.
    runs = AutomationRun.objects.filter(automation=automation)
    assert runs.count() == 365
    assert runs.filter(status=R.CREATED).count() == 6
    assert set(runs.exclude(status=R.CREATED).values_list("status", flat=True)) == {R.SKIPPED}
    assert AutomationDelivery.objects.filter(automation=automation).count() == 7
    # Each run's campaign is ordinary: scheduled then started by the engine, its audience a list
    # holding exactly the run's recipients.
    feb28 = runs.get(occurrence=date(2027, 2, 28))
    assert feb28.recipient_count == 2
    assert feb28.campaign.status == Campaign.Status.RUNNING
    assert set(feb28.campaign.lists.get().contacts.values_list("phone", flat=True)) == {
        "84901000002",
        "84901000003",
    }


def test_feb29_birthday_on_march_1_when_configured_and_on_the_day_in_a_leap_year():
    leapling = contact("84902000001", birthday="1992-02-29")
    members = ContactListFactory(contacts=[leapling])
    automation = make_automation(
        now=local(date(2027, 2, 1)), lists=[members], feb29=Automation.Feb29.MAR_1
    )
    sent = []
    for day in [
        *_days(date(2027, 2, 26), date(2027, 3, 2)),
        *_days(date(2028, 2, 27), date(2028, 3, 2)),
    ]:
        Automation.objects.filter(pk=automation.pk).update(
            next_occurrence=day, next_run_at=local(day, 8, 0, 0)
        )
        for cid in automations_tick(now=local(day))["created"]:
            sent.append((day, Campaign.objects.get(pk=cid).total_count))
    assert sent == [(date(2027, 3, 1), 1), (date(2028, 2, 29), 1)]


def test_days_before_a_date_and_an_exact_date_without_ignoring_the_year():
    renews = contact("84903000001", warranty_end="2027-05-10")
    old = contact("84903000002", warranty_end="2026-05-10")  # last year's: the year counts
    members = ContactListFactory(contacts=[renews, old])
    automation = make_automation(
        name="Bảo hành",
        now=local(date(2027, 5, 1), 7),
        lists=[members],
        attribute_key="warranty_end",
        direction=Automation.Direction.BEFORE,
        offset_days=7,
        ignore_year=False,
    )
    created = []
    for day in _days(date(2027, 5, 1), date(2027, 5, 12)):
        created += automations_tick(now=local(day))["created"]
    assert len(created) == 1
    run = AutomationRun.objects.get(campaign_id=created[0])
    assert run.occurrence == date(2027, 5, 3)
    assert list(Message.objects.filter(campaign_id=created[0]).values_list("phone", flat=True)) == [
        renews.phone
    ]
    assert AutomationDelivery.objects.get(automation=automation).occurrence == "2027-05-10"


def test_rerunning_an_occurrence_creates_nothing():
    """The tick read a stale next run (a second worker, a restart after commit): the occurrence
    already has its run, so no second campaign and no second delivery."""
    members = ContactListFactory(contacts=[contact("84904000001", birthday="1990-06-01")])
    automation = make_automation(now=local(date(2027, 5, 31), 9), lists=[members])
    assert len(automations_tick(now=local(date(2027, 6, 1)))["created"]) == 1
    Automation.objects.filter(pk=automation.pk).update(
        next_occurrence=date(2027, 6, 1), next_run_at=local(date(2027, 6, 1), 8, 0, 0)
    )
    assert automations_tick(now=local(date(2027, 6, 1), 9))["created"] == []
    assert Campaign.objects.count() == 1
    assert AutomationDelivery.objects.count() == 1
    assert AutomationRun.objects.count() == 1
    # And a fresh run for the same birthday year (someone deleted the run row) finds the
    # delivery: nobody is chosen twice.
    AutomationRun.objects.all().delete()  # cascades the deliveries: make one by hand again
    run = AutomationRun.objects.create(
        automation=automation,
        occurrence=date(2027, 5, 1),
        scheduled_for=local(date(2027, 5, 1), 8, 0, 0),
        status=R.SKIPPED,
    )
    AutomationDelivery.objects.create(
        automation=automation,
        contact=members.contacts.get(),
        occurrence="2027",
        run=run,
        created_at=local(date(2027, 5, 1)),
    )
    Automation.objects.filter(pk=automation.pk).update(
        next_occurrence=date(2027, 6, 1), next_run_at=local(date(2027, 6, 1), 8, 0, 0)
    )
    automations_tick(now=local(date(2027, 6, 1), 8, 5))
    assert Campaign.objects.count() == 1
    assert AutomationRun.objects.get(occurrence=date(2027, 6, 1)).status == R.SKIPPED


def test_monthly_recurring_campaign_reevaluates_its_segment():
    hanoi = contact("84905000001", city="Hà Nội")
    saigon = contact("84905000002", city="Hồ Chí Minh")
    everyone = ContactListFactory(contacts=[hanoi, saigon])
    segment = Segment.objects.create(
        name="Hà Nội", rules=[{"attribute": "city", "op": "eq", "value": "Hà Nội"}]
    )
    segment.contact_lists.add(everyone)
    automation = make_automation(
        name="Sao kê tháng",
        kind=Automation.Kind.RECURRING,
        frequency=Automation.Frequency.MONTHLY,
        month_day=31,  # the last day in shorter months
        send_time=time(9, 30),
        attribute_key="",
        now=local(date(2027, 1, 15)),
        segments=[segment],
    )
    assert automation.next_run_at == local(date(2027, 1, 31), 9, 30, 0)
    first = automations_tick(now=local(date(2027, 1, 31), 9, 31))["created"]
    assert list(Message.objects.filter(campaign_id__in=first).values_list("phone", flat=True)) == [
        hanoi.phone
    ]
    # The segment's members change between runs: the next run sees who is in it then.
    saigon.attributes = {"city": "Hà Nội"}
    saigon.save()
    hanoi.attributes = {"city": "Đà Nẵng"}
    hanoi.save()
    automation.refresh_from_db()
    assert automation.next_run_at == local(date(2027, 2, 28), 9, 30, 0)
    second = automations_tick(now=local(date(2027, 2, 28), 9, 31))["created"]
    assert list(Message.objects.filter(campaign_id__in=second).values_list("phone", flat=True)) == [
        saigon.phone
    ]
    assert Campaign.objects.get(pk=second[0]).segments.get() == segment


def test_a_missed_run_is_skipped_with_its_reason_never_sent_late():
    members = ContactListFactory(contacts=[contact("84906000001", city="x")])
    automation = make_automation(
        name="Hằng tuần",
        kind=Automation.Kind.RECURRING,
        frequency=Automation.Frequency.WEEKLY,
        weekday=Automation.Weekday.MONDAY,
        attribute_key="",
        now=local(date(2027, 3, 3)),
        lists=[members],
    )
    assert automation.next_run_at == local(date(2027, 3, 8), 8, 0, 0)
    # The workers were down from Monday morning until late at night (grace: one hour).
    report = automations_tick(now=local(date(2027, 3, 8), 22, 40))
    assert report == {"created": [], "skipped": 1, "failed": 0}
    run = AutomationRun.objects.get()
    assert run.status == R.SKIPPED and run.campaign is None
    assert "past the 60-minute grace window" in run.reason_text()
    assert "880 minutes later" in run.reason_text()
    assert Campaign.objects.count() == 0
    automation.refresh_from_db()
    assert automation.next_run_at == local(date(2027, 3, 15), 8, 0, 0)
    # Within the window, the next one runs.
    assert len(automations_tick(now=local(date(2027, 3, 15), 8, 50))["created"]) == 1


def test_holiday_skip_and_shift():
    Holiday.objects.all().delete()
    Holiday.objects.create(date=date(2027, 4, 30), key="reunification", label="Reunification Day")
    Holiday.objects.create(date=date(2027, 5, 1), key="labour_day", label="Quốc tế Lao động")
    members = ContactListFactory(contacts=[contact("84907000001")])
    skip = make_automation(
        name="skip",
        kind=Automation.Kind.RECURRING,
        attribute_key="",
        holiday_policy=Automation.HolidayPolicy.SKIP,
        now=local(date(2027, 4, 29), 9),
        lists=[members],
    )
    shift = make_automation(
        name="shift",
        kind=Automation.Kind.RECURRING,
        frequency=Automation.Frequency.MONTHLY,
        month_day=1,
        attribute_key="",
        holiday_policy=Automation.HolidayPolicy.SHIFT,
        now=local(date(2027, 4, 29), 9),
        lists=[members],
    )
    assert shift.next_occurrence == date(2027, 5, 1)
    assert shift.next_run_at == local(date(2027, 5, 2), 8, 0, 0)  # past 30/4 and 1/5
    for day in _days(date(2027, 4, 30), date(2027, 5, 2)):
        automations_tick(now=local(day))
    skipped = {r.occurrence: r for r in AutomationRun.objects.filter(automation=skip)}
    assert skipped[date(2027, 4, 30)].status == R.SKIPPED
    assert "public holiday (Reunification Day)" in skipped[date(2027, 4, 30)].reason_text()
    assert skipped[date(2027, 5, 1)].status == R.SKIPPED
    assert skipped[date(2027, 5, 2)].status == R.CREATED
    moved = AutomationRun.objects.get(automation=shift)
    assert moved.occurrence == date(2027, 5, 1) and moved.status == R.CREATED
    assert moved.scheduled_for == local(date(2027, 5, 2), 8, 0, 0)


def test_lunar_every_month_on_the_15th():
    members = ContactListFactory(contacts=[contact("84908000001")])
    automation = make_automation(
        name="Rằm",
        kind=Automation.Kind.LUNAR,
        lunar_day=15,
        attribute_key="",
        now=local(date(2027, 1, 1)),
        lists=[members],
    )
    days = []
    for day in _days(date(2027, 1, 1), date(2027, 4, 30)):
        if automations_tick(now=local(day))["created"]:
            days.append(day)
    from campaigns.automations.calendar.lunar import solar_to_lunar

    assert [solar_to_lunar(d).day for d in days] == [15, 15, 15, 15]
    assert len(days) == 4
    assert automation.runs.count() == 4


def test_end_after_max_runs():
    members = ContactListFactory(contacts=[contact("84909000001")])
    automation = make_automation(
        name="ba lần",
        kind=Automation.Kind.RECURRING,
        attribute_key="",
        max_runs=3,
        now=local(date(2027, 1, 1), 7),
        lists=[members],
    )
    for day in _days(date(2027, 1, 1), date(2027, 1, 10)):
        automations_tick(now=local(day))
    automation.refresh_from_db()
    assert automation.runs.filter(status=R.CREATED).count() == 3
    assert automation.status == Automation.Status.ENDED and automation.next_run_at is None


class WorkerKilled(BaseException):
    """What a SIGKILL looks like from inside: nothing after it runs, no except clause catches it."""


def test_a_crash_before_commit_leaves_nothing_and_the_rerun_makes_exactly_one(monkeypatch):
    members = ContactListFactory(
        contacts=[
            contact("84910000001", birthday="1990-08-08"),
            contact("84910000002", birthday="1991-08-08"),
        ]
    )
    automation = make_automation(now=local(date(2027, 8, 7)), lists=[members])
    lists_before = ContactList.objects.count()

    def die(run):
        # The campaign, its list, the deliveries and the run are written: the worker dies
        # before the commit.
        assert Campaign.objects.filter(pk=run.campaign_id).exists()
        assert AutomationDelivery.objects.filter(run=run).count() == 2
        raise WorkerKilled

    monkeypatch.setattr(services, "_before_commit", die)
    with pytest.raises(WorkerKilled):
        automations_tick(now=local(date(2027, 8, 8)))
    assert Campaign.objects.count() == 0
    assert AutomationRun.objects.count() == 0
    assert AutomationDelivery.objects.count() == 0
    assert ContactList.objects.count() == lists_before
    automation.refresh_from_db()
    assert automation.next_occurrence == date(2027, 8, 8)

    monkeypatch.undo()
    created = automations_tick(now=local(date(2027, 8, 8), 8, 1))["created"]
    assert len(created) == 1
    assert automations_tick(now=local(date(2027, 8, 8), 8, 2))["created"] == []
    assert Message.objects.filter(campaign_id=created[0]).count() == 2
    assert AutomationDelivery.objects.count() == 2


def test_a_crash_after_commit_before_the_start_is_started_by_the_campaign_scheduler(monkeypatch):
    """Killed between the commit and campaign_send_now: the campaign is committed as scheduled
    for the run's time, and the campaigns' own tick starts it within its grace window."""
    from campaigns.engine.scheduler import campaigns_start_due

    members = ContactListFactory(contacts=[contact("84911000001", birthday="1990-08-08")])
    make_automation(now=local(date(2027, 8, 7)), lists=[members])

    def die(run):
        raise WorkerKilled

    monkeypatch.setattr(services, "_start", die)
    with pytest.raises(WorkerKilled):
        automations_tick(now=local(date(2027, 8, 8)))
    campaign = Campaign.objects.get()
    assert campaign.status == Campaign.Status.SCHEDULED
    monkeypatch.undo()
    assert automations_tick(now=local(date(2027, 8, 8), 8, 1))["created"] == []
    assert campaigns_start_due(now=local(date(2027, 8, 8), 8, 1)) == [campaign.pk]
    assert Message.objects.filter(campaign=campaign).count() == 1


def test_a_run_that_cannot_be_sent_fails_with_the_reason_and_chooses_nobody():
    members = ContactListFactory(contacts=[contact("84912000001", birthday="1990-08-08")])
    automation = make_automation(now=local(date(2027, 8, 7)), lists=[members])
    automation.channel.is_active = False
    automation.channel.save()
    assert automations_tick(now=local(date(2027, 8, 8))) == {
        "created": [],
        "skipped": 0,
        "failed": 1,
    }
    run = AutomationRun.objects.get()
    assert run.status == R.FAILED
    assert "inactive" in run.reason_text()
    assert AutomationDelivery.objects.count() == 0
    assert Campaign.objects.count() == 0


def test_lunar_birthday_attribute_comes_back_on_its_lunar_day():
    from campaigns.automations.calendar.lunar import lunar_to_solar

    moon = contact("84913000001", am_lich="1990-08-15")  # rằm tháng Tám
    leap = contact("84913000002", am_lich="2023-02-10L")  # born in a leap 2nd month
    members = ContactListFactory(contacts=[moon, leap])
    make_automation(
        name="Sinh nhật âm lịch",
        attribute_key="am_lich",
        lunar_date=True,
        now=local(date(2026, 12, 31), 9),
        lists=[members],
    )
    sent = {}
    for day in _days(date(2027, 1, 1), date(2027, 12, 31)):
        for cid in automations_tick(now=local(day))["created"]:
            for phone in Message.objects.filter(campaign_id=cid).values_list("phone", flat=True):
                assert phone not in sent
                sent[phone] = day
    assert sent == {
        moon.phone: lunar_to_solar(2027, 8, 15),
        leap.phone: lunar_to_solar(2027, 2, 10),
    }
    assert set(AutomationDelivery.objects.values_list("occurrence", flat=True)) == {"2027"}


def test_one_broken_automation_does_not_stop_the_others(monkeypatch):
    members = ContactListFactory(contacts=[contact("84914000001", birthday="1990-08-08")])
    broken = make_automation(name="hỏng", now=local(date(2027, 8, 7)), lists=[members])
    fine = make_automation(name="tốt", now=local(date(2027, 8, 7)), lists=[members])
    real = services._create_campaign_run

    def boom(automation, base, now):
        if automation.pk == broken.pk:
            raise RuntimeError("disk full")
        return real(automation, base, now)

    monkeypatch.setattr(services, "_create_campaign_run", boom)
    report = automations_tick(now=local(date(2027, 8, 8)))
    assert report["failed"] == 1 and len(report["created"]) == 1
    failed = AutomationRun.objects.get(automation=broken)
    assert failed.status == R.FAILED and "disk full" in failed.reason_text()
    assert AutomationRun.objects.get(automation=fine).status == R.CREATED
    broken.refresh_from_db()
    assert broken.next_occurrence == date(2027, 8, 9)
    assert AutomationDelivery.objects.filter(automation=broken).count() == 0


def test_an_error_while_starting_the_campaign_leaves_it_to_the_campaign_scheduler(monkeypatch):
    from campaigns.engine.scheduler import campaigns_start_due

    members = ContactListFactory(contacts=[contact("84915000001", birthday="1990-08-08")])
    automation = make_automation(now=local(date(2027, 8, 7)), lists=[members])

    def broken(**kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(services, "campaign_send_now", broken)
    report = automations_tick(now=local(date(2027, 8, 8)))
    assert len(report["created"]) == 1 and report["failed"] == 0
    assert not AutomationRun.objects.filter(status=R.FAILED).exists()
    automation.refresh_from_db()
    assert automation.next_occurrence == date(2027, 8, 9)
    monkeypatch.undo()
    assert campaigns_start_due(now=local(date(2027, 8, 8), 8, 5)) == report["created"]
    assert Message.objects.filter(campaign_id=report["created"][0]).count() == 1


def test_a_promotion_automation_reaches_only_contacts_with_advertising_consent():
    """The wizard's default holds for automations too: a promotion template's run campaign
    requires advertising consent for its channel (campaigns/privacy)."""
    from campaigns.privacy.services import consent_record
    from templates_app.models import Template

    agreed = contact("84904000011", birthday="1990-06-01")
    silent = contact("84904000012", birthday="1991-06-01")
    members = ContactListFactory(contacts=[agreed, silent])
    automation = make_automation(now=local(date(2027, 5, 31), 9), lists=[members])
    Template.objects.filter(pk=automation.template_id).update(tag=Template.Tag.PROMOTION)
    consent_record(
        contact=agreed, channel_kind=automation.channel.kind, granted=True, source="form"
    )
    assert len(automations_tick(now=local(date(2027, 6, 1)))["created"]) == 1
    campaign = AutomationRun.objects.get(automation=automation).campaign
    assert campaign.requires_advertising_consent
    assert _messages_by_phone(automation) == Counter({"84904000011": 1})
