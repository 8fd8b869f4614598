"""A segment count estimated from a sample of the contacts table (count_estimate, issue 22): on
PostgreSQL, reading every page (100%) it is the exact count; the segment list shows "≈ n" when
the exact count does not fit its time budget. SQLite has no TABLESAMPLE: no estimate, "—"."""

import pytest
from django.db import connection
from django.urls import reverse

from campaigns.contacts.segments import contacts_matching, count_estimate
from campaigns.models import Segment
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db

RULES = [{"attribute": "city", "op": "eq", "value": "ha noi"}]


@pytest.fixture
def people():
    for i in range(30):
        ContactFactory(attributes={"city": "Hà Nội" if i % 3 == 0 else "Huế"})


def test_the_estimate_of_every_page_is_the_count(people):
    qs = contacts_matching(rules=RULES, match="all")
    estimate = count_estimate(qs, percent=100)
    if connection.vendor == "postgresql":
        assert estimate == qs.count() == 10
    else:
        assert estimate is None


def test_the_list_shows_an_estimate_when_counting_takes_too_long(people, admin_client, monkeypatch):
    Segment.objects.create(name="Hà Nội", rules=RULES)
    monkeypatch.setattr("campaigns.admin.segments.count_within", lambda qs, **kw: None)
    monkeypatch.setattr(
        "campaigns.admin.segments.count_estimate",
        lambda qs: count_estimate(qs, percent=100.0),
    )
    page = admin_client.get(reverse("admin:campaigns_segment_changelist")).content.decode()
    if connection.vendor == "postgresql":
        assert "≈ 10" in page
    else:
        assert "—" in page
