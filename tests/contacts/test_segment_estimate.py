"""A segment count estimated from a sample of the contacts table (count_estimate, issue 22): on
PostgreSQL, reading every page (100%) it is the exact count; the segment list shows "≈ n" when
the exact count does not fit its time budget. SQLite has no TABLESAMPLE: no estimate, "—"."""

import pytest
from django.db import connection
from django.urls import reverse

from campaigns.contacts.segments import contacts_matching, count_estimate, newest_within
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
    monkeypatch.setattr("campaigns.contacts.segments.count_within", lambda qs, **kw: None)
    monkeypatch.setattr(
        "campaigns.contacts.segments.count_estimate",
        lambda qs: count_estimate(qs, percent=100.0),
    )
    page = admin_client.get(reverse("admin:campaigns_segment_changelist")).content.decode()
    if connection.vendor == "postgresql":
        assert "≈ 10" in page
    else:
        assert "—" in page


def test_a_big_contacts_table_gets_estimates_on_the_list_kept_for_minutes(
    people, admin_client, monkeypatch
):
    """Above LIST_EXACT_MAX contacts (PostgreSQL's own size estimate) the list does not try an
    exact count per segment; each estimate is kept ESTIMATE_CACHE_SECONDS, and a saved change
    to the segment makes a new one."""
    segment = Segment.objects.create(name="Hà Nội", rules=RULES)
    monkeypatch.setattr("campaigns.admin.segments.contacts_table_rows", lambda: 10_000_000)

    def no_exact(qs, **kw):
        raise AssertionError("an exact count on a big table")

    monkeypatch.setattr("campaigns.contacts.segments.count_within", no_exact)
    made = []

    def estimate(qs):
        made.append(qs)
        return count_estimate(qs, percent=100.0)

    monkeypatch.setattr("campaigns.contacts.segments.count_estimate", estimate)
    url = reverse("admin:campaigns_segment_changelist")
    for _ in range(2):
        page = admin_client.get(url).content.decode()
    if connection.vendor != "postgresql":  # no estimate without TABLESAMPLE, nothing kept
        assert "—" in page and len(made) == 2
        return
    assert "≈ 10" in page and len(made) == 1  # the second page used the kept one
    segment.rules = [{"attribute": "city", "op": "eq", "value": "hue"}]
    segment.save()
    page = admin_client.get(url).content.decode()
    assert "≈ 20" in page and len(made) == 2


def test_the_size_of_the_contacts_table_is_postgresql_s_own_estimate(people):
    from campaigns.contacts.segments import contacts_table_rows

    if connection.vendor != "postgresql":
        assert contacts_table_rows() is None
        return
    with connection.cursor() as cur:
        cur.execute("ANALYZE campaigns_contact")
    assert contacts_table_rows() == 30


def test_the_change_page_and_the_builder_show_an_estimate_when_counting_takes_too_long(
    people, admin_client, monkeypatch
):
    """At 10M contacts the exact count of an attribute rule takes 2-3 s (docs/BENCHMARKS.md):
    the change page and the rule builder then show the estimate, labelled as one."""
    import json

    segment = Segment.objects.create(name="Hà Nội", rules=RULES)
    for where in ("campaigns.admin.segments", "campaigns.contacts.segments"):
        monkeypatch.setattr(f"{where}.count_within", lambda qs, **kw: None)
    for where in ("campaigns.admin.segments", "campaigns.contacts.segments"):
        monkeypatch.setattr(f"{where}.count_estimate", lambda qs: count_estimate(qs, percent=100.0))
    page = admin_client.get(reverse("admin:campaigns_segment_change", args=[segment.pk]))
    page = page.content.decode()
    data = admin_client.post(
        reverse("admin:campaigns_segment_preview"),
        json.dumps({"rules": RULES, "match": "all", "lists": []}),
        content_type="application/json",
        HTTP_ACCEPT_LANGUAGE="en",
    ).json()
    assert data["count"] is None
    if connection.vendor == "postgresql":
        assert '<strong id="segment-count">≈ 10</strong>' in page
        assert data["estimate"] == 10
        assert data["count_text"] == "≈ 10 (estimated from a sample of the contacts)"
    else:  # no TABLESAMPLE: no estimate, and the page says the count timed out
        assert "≈" not in page
        assert data["estimate"] is None
        assert data["count_text"] == "more than can be counted quickly"


def test_the_change_page_says_when_the_newest_matches_take_too_long(
    people, admin_client, monkeypatch
):
    segment = Segment.objects.create(name="Hà Nội", rules=RULES)
    newest = newest_within(contacts_matching(rules=RULES, match="all"))
    assert [phone for phone, _ in newest] == list(
        contacts_matching(rules=RULES, match="all").order_by("-pk").values_list("phone", flat=True)
    )  # all ten matches, newest first
    monkeypatch.setattr("campaigns.admin.segments.newest_within", lambda qs: None)
    page = admin_client.get(
        reverse("admin:campaigns_segment_change", args=[segment.pk]), HTTP_ACCEPT_LANGUAGE="en"
    )
    assert "The newest matches take too long to find" in page.content.decode()
