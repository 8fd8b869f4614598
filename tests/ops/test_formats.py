"""One date-time format per language and VND without decimals (issue 17, item 10): the named
formats of config/formats/{vi,en}, and templates_app.formatting.format_vnd on the pages that show
an amount (the message list, the template list, the campaign page, the dashboard, the wizard)."""

import re
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.template import Context, Template
from django.urls import reverse
from django.utils import formats, translation

from campaigns.admin.charts import timeline_chart
from campaigns.models import Campaign, Message
from campaigns.notes import Note
from campaigns.selectors.dashboard import dashboard_cache_clear
from templates_app.formatting import format_vnd
from tests.factories import CampaignFactory, ContactFactory, ContactListFactory, message_for

HCM = ZoneInfo("Asia/Ho_Chi_Minh")
WHEN = datetime(2026, 12, 3, 19, 0, tzinfo=HCM)
VI = {"HTTP_ACCEPT_LANGUAGE": "vi-VN,vi;q=0.9"}
EN = {"HTTP_ACCEPT_LANGUAGE": "en"}
# What the issue saw: Django's long Vietnamese date, English "Dec. 3" and "12/03", VND decimals.
LONG_VI = re.compile(r"Ngày \d+ tháng")
MIXED_EN = re.compile(r"\b[A-Z][a-z]{2}\. \d|\b12/03/2026")
DECIMALS = re.compile(r"\d[,.]\d\d?\s?(?:₫|đ|VND)|300,00|300\.00")


@pytest.mark.parametrize(
    ("lang", "dt", "d"),
    [("vi", "19:00 03/12/2026", "03/12/2026"), ("en", "3 Dec 2026, 19:00", "3 Dec 2026")],
)
def test_one_named_format_per_language(lang, dt, d):
    with translation.override(lang):
        for name in ("DATETIME_FORMAT", "SHORT_DATETIME_FORMAT"):
            assert formats.date_format(WHEN, name) == dt
        for name in ("DATE_FORMAT", "SHORT_DATE_FORMAT"):
            assert formats.date_format(WHEN.date(), name) == d
        assert formats.time_format(WHEN, "TIME_FORMAT") == "19:00"
        text = Template('{{ w|date:"DATETIME_FORMAT" }} {{ w|date }}').render(Context({"w": WHEN}))
        assert text == f"{dt} {d}"


@pytest.mark.parametrize(
    ("lang", "expected"),
    [
        ("vi", ["300\u00a0₫", "99.001\u00a0₫", "1.234.567\u00a0₫", "0\u00a0₫", "—"]),
        ("en", ["300\u00a0₫", "99,001\u00a0₫", "1,234,567\u00a0₫", "0\u00a0₫", "—"]),
    ],
)
def test_vnd_never_has_decimals(lang, expected):
    with translation.override(lang):
        got = [format_vnd(v) for v in (Decimal("300.00"), Decimal("99000.5"), 1234567.4, 0, None)]
        assert got == expected
        assert (
            Template("{% load loa_money %}{{ v|vnd }}").render(Context({"v": Decimal("300.00")}))
            == "300\u00a0₫"
        )


def test_notes_show_their_time_in_the_readers_format():
    note = Note("Scheduled for {when}", when=WHEN)
    with translation.override("vi"):
        assert "19:00 03/12/2026" in str(note)
    with translation.override("en"):
        assert str(note) == "Scheduled for 3 Dec 2026, 19:00"


def test_chart_labels_follow_the_language():
    buckets = [{"start": WHEN, "count": 3}]
    with translation.override("vi"):
        assert (
            timeline_chart({"step": 86400, "buckets": buckets})["bars"][0]["label"] == "03/12/2026"
        )
        assert timeline_chart({"step": 60, "buckets": buckets})["bars"][0]["label"] == "19:00"
    with translation.override("en"):
        assert (
            timeline_chart({"step": 86400, "buckets": buckets})["bars"][0]["label"] == "3 Dec 2026"
        )


@pytest.fixture
def sent_campaign(db):
    contacts = ContactFactory.create_batch(2)
    cl = ContactListFactory(contacts=contacts)
    c = CampaignFactory(
        lists=[cl],
        status=Campaign.Status.RUNNING,
        started_at=WHEN,
        cost=Decimal("99000.50"),
        total_count=2,
    )
    for contact in contacts:
        message_for(
            c, contact, status=Message.Status.DELIVERED, fee=Decimal("300.00"), sent_at=WHEN
        ).save()
    return c


def _page(client, url, lang):
    r = client.get(url, **lang)
    assert r.status_code == 200
    return r.content.decode()


@pytest.mark.django_db
def test_pages_in_vietnamese_use_one_format_and_whole_dong(admin_client, sent_campaign):
    dashboard_cache_clear()
    messages = _page(
        admin_client,
        reverse("admin:campaigns_message_changelist") + f"?campaign__id__exact={sent_campaign.pk}",
        VI,
    )
    assert "19:00 03/12/2026" in messages and "300\u00a0₫" in messages
    templates = _page(admin_client, reverse("admin:templates_app_template_changelist"), VI)
    assert "300\u00a0₫" in templates
    page = _page(
        admin_client, reverse("admin:campaigns_campaign_change", args=[sent_campaign.pk]), VI
    )
    assert "99.001\u00a0₫" in page
    assert "19:00 03/12/2026" in page  # started at, read-only
    dashboard = _page(admin_client, reverse("admin:index"), VI)
    assert "99.001\u00a0₫" in dashboard
    for html in (messages, templates, page, dashboard):
        assert not LONG_VI.search(html)
        assert not DECIMALS.search(html), DECIMALS.search(html)


@pytest.mark.django_db
def test_pages_in_english_use_one_format_and_whole_dong(admin_client, sent_campaign):
    dashboard_cache_clear()
    messages = _page(
        admin_client,
        reverse("admin:campaigns_message_changelist") + f"?campaign__id__exact={sent_campaign.pk}",
        EN,
    )
    assert "3 Dec 2026, 19:00" in messages and "300\u00a0₫" in messages
    page = _page(
        admin_client, reverse("admin:campaigns_campaign_change", args=[sent_campaign.pk]), EN
    )
    assert "99,001\u00a0₫" in page and "3 Dec 2026, 19:00" in page
    dashboard = _page(admin_client, reverse("admin:index"), EN)
    assert "99,001\u00a0₫" in dashboard
    for html in (messages, page, dashboard):
        assert not MIXED_EN.search(html), MIXED_EN.search(html)
        assert not DECIMALS.search(html)


@pytest.mark.django_db
def test_scheduled_campaign_page_in_both_languages(admin_client):
    c = CampaignFactory(status=Campaign.Status.SCHEDULED, scheduled_at=WHEN)
    url = reverse("admin:campaigns_campaign_change", args=[c.pk])
    assert "19:00 03/12/2026" in _page(admin_client, url, VI)
    assert "3 Dec 2026, 19:00" in _page(admin_client, url, EN)
