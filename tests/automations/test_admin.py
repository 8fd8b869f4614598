"""The automations pages through the admin client: create (the form's checks), the list (what
runs when, next run with the lunar date), the preview of a day, pause and resume, holidays."""

from __future__ import annotations

from datetime import date, time

import pytest
from django.urls import reverse
from django.utils import timezone

from campaigns.automations.calendar.lunar import solar_to_lunar
from campaigns.automations.models import Automation, AutomationRun, Holiday
from campaigns.automations.services import automations_tick
from tests.automations.helpers import MAPPING, contact, local, make_automation, sendable
from tests.factories import ContactListFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def english_client(admin_client):
    admin_client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return admin_client


def _form(channel, template, members, **extra):
    import json

    data = {
        "name": "Chúc mừng sinh nhật",
        "kind": "date_trigger",
        "channel": channel.pk,
        "template": template.pk,
        "content": "",
        "subject": "",
        "param_mapping": json.dumps(MAPPING),
        "lists": [members.pk],
        "send_time": "08:00",
        "frequency": "daily",
        "attribute_key": "birthday",
        "direction": "on",
        "offset_days": "0",
        "ignore_year": "on",
        "feb29": "feb28",
        "holiday_policy": "none",
    }
    data.update(extra)
    return data


def test_create_a_birthday_automation_then_its_preview(english_client):
    channel, template = sendable()
    today = timezone.localdate()
    bday = f"1990-{today:%m-%d}" if (today.month, today.day) != (2, 29) else "1992-02-29"
    members = ContactListFactory(
        contacts=[
            contact("84920000001", birthday=bday),
            contact("84920000002", birthday="1990-01-01"),
            contact("84920000003", birthday="05/02/1990"),  # imported before the declaration
        ]
    )
    url = reverse("admin:automations_automation_add")
    r = english_client.post(url, _form(channel, template, members))
    automation = Automation.objects.get()
    preview_url = reverse("admin:automations_automation_preview", args=[automation.pk])
    assert r.status_code == 302 and r["Location"] == preview_url
    assert automation.next_run_at is not None and automation.status == "active"
    assert automation.created_by.username == "root"

    page = english_client.get(preview_url, {"day": today.isoformat()}).content.decode()
    assert "1 contact would get it." in page
    assert "84920000001"[-3:] in page and "84920000002"[-3:] not in page
    assert "1 contact of the audience has a value in “birthday” that is not a stored date" in page
    lun = solar_to_lunar(today)
    assert f"{lun.day}/{lun.month}" in page and "lunar" in page
    page = english_client.get(preview_url, {"day": "2027-01-01"}).content.decode()
    assert "1 contact would get it." in page and bday not in page
    bad = english_client.get(preview_url, {"day": "31/02/2027"})
    assert bad.status_code == 200 and "Enter a valid date." in bad.content.decode()


def test_the_form_says_what_is_missing(english_client):
    channel, template = sendable()
    members = ContactListFactory()
    url = reverse("admin:automations_automation_add")
    r = english_client.post(
        url,
        _form(
            channel,
            template,
            members,
            attribute_key="",
            lists=[],
            param_mapping="{}",
            direction="before",
            offset_days="0",
        ),
    )
    assert r.status_code == 200
    text = r.content.decode()
    assert "Choose at least one contact list or segment." in text
    assert "Type the attribute that holds the date." in text
    assert "Type how many days before or after the date." in text
    assert "customer_name" in text  # the mapping misses the template's parameter
    r = english_client.post(
        url,
        _form(channel, template, members, kind="recurring", frequency="weekly", attribute_key=""),
    )
    assert "Choose the weekday it runs on." in r.content.decode()
    r = english_client.post(url, _form(channel, template, members, kind="lunar", lunar_day="31"))
    assert "Choose a number from 1 to 30." in r.content.decode()
    assert not Automation.objects.exists()


def test_list_shows_what_runs_when_next_run_in_both_calendars_and_last_results(english_client):
    members = ContactListFactory(contacts=[contact("84921000001", birthday="1990-06-01")])
    automation = make_automation(now=local(date(2027, 5, 31), 9), lists=[members])
    created = automations_tick(now=local(date(2027, 6, 1)))["created"]
    page = english_client.get(reverse("admin:automations_automation_changelist")).content.decode()
    assert "On the date in “birthday” (every year) at 08:00" in page
    lun = solar_to_lunar(date(2027, 6, 2))
    assert "2 Jun 2027, 08:00" in page and f"{lun.day}/{lun.month} lunar" in page
    assert reverse("admin:campaigns_campaign_change", args=[created[0]]) in page
    assert "recipients 1, sent 0" in page
    change = english_client.get(
        reverse("admin:automations_automation_change", args=[automation.pk])
    ).content.decode()
    assert 'id="automation-runs"' in change and 'id="preview-link"' in change


def test_pause_and_resume(english_client):
    members = ContactListFactory(contacts=[contact("84922000001")])
    automation = make_automation(
        kind="recurring", attribute_key="", now=timezone.now(), lists=[members]
    )
    url = reverse("admin:automations_automation_changelist")
    english_client.post(url, {"action": "pause", "_selected_action": [automation.pk]})
    automation.refresh_from_db()
    assert automation.status == "paused" and automation.next_run_at is None
    assert automations_tick(now=timezone.now() + timezone.timedelta(days=3))["created"] == []
    english_client.post(url, {"action": "resume", "_selected_action": [automation.pk]})
    automation.refresh_from_db()
    assert automation.status == "active" and automation.next_run_at > timezone.now()
    assert not AutomationRun.objects.exists()  # the paused days are not owed


def test_holidays_seeded_edited_and_automations_rescheduled(english_client):
    Holiday.objects.all().delete()
    year = timezone.localdate().year
    r = english_client.post(reverse("admin:automations_holiday_seed"))
    assert r.status_code == 302
    assert Holiday.objects.filter(date=date(year + 1, 9, 2), key="national_day").exists()
    assert Holiday.objects.filter(date__year=year + 5).exists()
    page = english_client.get(reverse("admin:automations_holiday_changelist")).content.decode()
    assert "lunar" in page
    # A new holiday on the next run's day moves a "shift" automation past it.
    members = ContactListFactory(contacts=[contact("84923000001")])
    automation = make_automation(
        kind="recurring",
        attribute_key="",
        holiday_policy="shift",
        send_time=time(23, 59),
        now=timezone.now(),
        lists=[members],
    )
    day = automation.next_run_at.astimezone(local(date.today()).tzinfo).date()
    Holiday.objects.filter(date=day).delete()
    english_client.post(
        reverse("admin:automations_holiday_add"),
        {"date": day.isoformat(), "label": "Nghỉ bù", "key": "", "is_active": "on"},
    )
    assert Holiday.objects.filter(date=day, label="Nghỉ bù").exists()
    automation.refresh_from_db()
    assert automation.next_run_at.astimezone(local(day).tzinfo).date() > day


def test_pages_in_vietnamese_and_a_lunar_birthday_preview(admin_client):
    members = ContactListFactory(contacts=[contact("84924000001", am_lich="1990-08-15")])
    automation = make_automation(
        attribute_key="am_lich", lunar_date=True, now=timezone.now(), lists=[members]
    )
    from campaigns.automations.calendar.lunar import lunar_to_solar

    mid_autumn = lunar_to_solar(2027, 8, 15)
    admin_client.defaults["HTTP_ACCEPT_LANGUAGE"] = "vi"
    for url in [
        reverse("admin:automations_automation_changelist"),
        reverse("admin:automations_automation_change", args=[automation.pk]),
        reverse("admin:automations_automation_add"),
        reverse("admin:automations_holiday_changelist"),
    ]:
        assert admin_client.get(url).status_code == 200, url
    page = admin_client.get(
        reverse("admin:automations_automation_preview", args=[automation.pk]),
        {"day": mid_autumn.isoformat()},
    ).content.decode()
    assert "15/8" in page and "84924000001"[-3:] in page
    admin_client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    page = admin_client.get(
        reverse("admin:automations_automation_preview", args=[automation.pk]),
        {"day": mid_autumn.isoformat()},
    ).content.decode()
    assert "Contacts whose lunar date is 15/8 lunar (any year)." in page
    assert "1 contact would get it." in page


def test_create_from_a_campaign_built_in_the_wizard(english_client):
    from tests.factories import CampaignFactory

    members = ContactListFactory(contacts=[contact("84925000001", birthday="1990-03-03")])
    channel, template = sendable()
    campaign = CampaignFactory(
        channel=channel, template=template, param_mapping=MAPPING, lists=[members]
    )
    data = _form(channel, template, members, from_campaign=campaign.pk, param_mapping="")
    for name in ("channel", "template", "lists"):
        data.pop(name)
    r = english_client.post(reverse("admin:automations_automation_add"), data)
    assert r.status_code == 302, r.content.decode()[-3000:]
    automation = Automation.objects.get()
    assert automation.channel == channel and automation.template == template
    assert automation.param_mapping == MAPPING
    assert list(automation.lists.all()) == [members]
    r = english_client.post(
        reverse("admin:automations_automation_add"),
        {**data, "name": "other", "from_campaign": ""},
    )
    assert "Choose the channel (or a campaign to copy)." in r.content.decode()


def test_change_page_lists_the_next_runs_in_both_calendars(english_client):
    from campaigns.automations.calendar.lunar import solar_to_lunar as s2l

    members = ContactListFactory(contacts=[contact("84926000001")])
    automation = make_automation(
        name="Rằm",
        kind="lunar",
        lunar_day=15,
        attribute_key="",
        now=timezone.now(),
        lists=[members],
    )
    page = english_client.get(
        reverse("admin:automations_automation_change", args=[automation.pk])
    ).content.decode()
    block = page[page.index('id="automation-upcoming"') :]
    block = block[: block.index("</ul>")]
    assert block.count("<li>") == 5
    assert block.count("15/") == 5 and " lunar" in block
    assert s2l(automation.next_occurrence).day == 15


def test_every_run_is_listed_read_only_with_its_campaign(english_client):
    members = ContactListFactory(contacts=[contact("84927000001", birthday="1990-06-01")])
    automation = make_automation(now=local(date(2027, 5, 31), 9), lists=[members])
    automations_tick(now=local(date(2027, 6, 1)))
    automations_tick(now=local(date(2027, 6, 2)))
    url = reverse("admin:automations_automationrun_changelist")
    page = english_client.get(url, {"automation__id__exact": automation.pk}).content.decode()
    run = AutomationRun.objects.get(status="created")
    assert reverse("admin:campaigns_campaign_change", args=[run.campaign_id]) in page
    assert "Nobody&#x27;s date matches" in page or "Nobody's date matches" in page
    change = reverse("admin:automations_automationrun_change", args=[run.pk])
    assert english_client.post(change, {}).status_code == 403
    assert (
        'id="all-runs"'
        in english_client.get(
            reverse("admin:automations_automation_change", args=[automation.pk])
        ).content.decode()
    )


def test_the_form_follows_the_declared_attribute_type(english_client):
    from campaigns.models import AttributeDefinition

    AttributeDefinition.objects.create(key="am_lich", label="Âm lịch", type="lunar_date")
    AttributeDefinition.objects.create(key="ngay_sinh", label="Ngày sinh", type="date")
    AttributeDefinition.objects.create(key="diem", label="Điểm", type="number")
    channel, template = sendable()
    members = ContactListFactory(contacts=[contact("84928000001")])
    url = reverse("admin:automations_automation_add")
    r = english_client.post(url, _form(channel, template, members, attribute_key="am_lich"))
    assert r.status_code == 302
    assert Automation.objects.get().lunar_date is True
    r = english_client.post(
        url,
        _form(channel, template, members, name="b", attribute_key="ngay_sinh", lunar_date="on"),
    )
    assert "“ngay_sinh” is declared a solar date in Attribute types." in r.content.decode()
    r = english_client.post(url, _form(channel, template, members, name="c", attribute_key="diem"))
    assert "“diem” is declared a number in Attribute types, not a date." in r.content.decode()
