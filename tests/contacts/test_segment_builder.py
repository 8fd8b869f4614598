"""Segments (issue 17, item 2): every operator, accents and case ignored on SQLite and
PostgreSQL alike, AND/OR groups, birthdays across the year end, tags from an import and from the
bulk action, old segments still evaluated, the builder's count endpoint and its permission."""

from __future__ import annotations

import json
from datetime import date

import pytest
from django.db import connection
from django.urls import reverse

from campaigns.contacts.importing.sinks import PostgresSink
from campaigns.contacts.segments import attribute_keys, contacts_matching, segment_queryset
from campaigns.contacts.tags import contacts_tag, tag_display
from campaigns.models import Contact, ContactList, Segment, Tag
from campaigns.segment_rules import (
    birthday_month_days,
    date_value,
    number_value,
    segment_rules_errors,
    tag_names,
)

pytestmark = pytest.mark.django_db


def phones(rules, match="all", **kw) -> set[str]:
    return set(contacts_matching(rules=rules, match=match, **kw).values_list("phone", flat=True))


@pytest.fixture(autouse=True)
def _english_pages(client):
    """The pages and the count endpoint answer in the request's language: English here."""
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"


@pytest.fixture
def people():
    rows = [
        (
            "84900000001",
            "An",
            {"city": "Hà Nội", "spent": "1.500.000", "born": "30/12/1990"},
            ["vip"],
        ),
        ("84900000002", "Bình", {"city": "HÀ NỘI", "spent": "250000", "born": "2024-01-02"}, []),
        (
            "84900000003",
            "Chi",
            {"city": "Ha Noi Moi", "spent": "0,5", "born": "15/06/1985"},
            ["vip", "online"],
        ),
        (
            "84900000004",
            "Dũng",
            {"city": "Đà Nẵng", "spent": "abc", "born": "31/02/1990"},
            ["online"],
        ),
        ("84900000005", "Em", {"city": ""}, []),
        ("84900000006", "Phúc", {}, []),
    ]
    for phone, name, attrs, tags in rows:
        Contact.objects.create(phone=phone, name=name, attributes=attrs, tags=tags)
    Tag.objects.create(key="vip", name="VIP")
    Tag.objects.create(key="online", name="Online")


def test_value_readers_match_what_postgresql_reads():
    assert number_value("1.500.000") == 1_500_000
    assert number_value("1,500,000") == 1_500_000
    assert number_value("0,5") == 0.5
    assert number_value("0.500") == 0.5  # a leading 0 is no thousands group
    assert number_value("12a") is None
    assert date_value("30/12/1990") == "1990-12-30"
    assert date_value("2024-01-02T08:00") == "2024-01-02"
    assert date_value("31/02/1990") is None
    assert tag_names("VIP|Online; vip ,  Khách cũ") == ["VIP", "Online", "Khách cũ"]
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            # Plain digits take loa_number's fast path (migration 0024), the rest its parser.
            numbers = ["1.500.000", "1,500,000", "0,5", "0.500", "12a", "-3", " 7 ", "40000000"]
            numbers += ["007", "0", "12345678901234567890", "1 500 000", "", "+5", "5."]
            for text in numbers:
                cur.execute("SELECT loa_number(%s)", [text])
                assert cur.fetchone()[0] == number_value(text), text
            cur.execute("SELECT loa_number(NULL)")
            assert cur.fetchone()[0] is None
            for text in ["30/12/1990", "2024-01-02T08:00", "31/02/1990", "29/02/2024", "1/2/2020"]:
                cur.execute("SELECT loa_date(%s)", [text])
                assert cur.fetchone()[0] == date_value(text), text
            cur.execute("SELECT loa_fold(%s)", ["HÀ NỘI Đà Nẵng Huế"])
            assert cur.fetchone()[0] == "ha noi da nang hue"


@pytest.mark.parametrize(
    "rule, expected",
    [
        ({"attribute": "city", "op": "contains", "value": "ha noi"}, {"1", "2", "3"}),
        ({"attribute": "city", "op": "contains", "value": "HÀ NỘI"}, {"1", "2", "3"}),
        ({"attribute": "city", "op": "eq", "value": "ha noi"}, {"1", "2"}),
        ({"attribute": "city", "op": "neq", "value": "Hà Nội"}, {"3", "4", "5", "6"}),
        ({"attribute": "city", "op": "not_contains", "value": "noi"}, {"4", "5", "6"}),
        ({"attribute": "city", "op": "starts_with", "value": "da"}, {"4"}),
        ({"attribute": "city", "op": "in", "value": ["da nang", "HA NOI"]}, {"1", "2", "4"}),
        ({"attribute": "city", "op": "in", "value": "Đà Nẵng, x"}, {"4"}),
        ({"attribute": "city", "op": "empty"}, {"5", "6"}),
        ({"attribute": "city", "op": "not_empty"}, {"1", "2", "3", "4"}),
        ({"attribute": "spent", "op": "gte", "value": "250.000"}, {"1", "2"}),
        ({"attribute": "spent", "op": "gt", "value": 250000}, {"1"}),
        ({"attribute": "spent", "op": "lt", "value": "1"}, {"3"}),
        ({"attribute": "spent", "op": "lte", "value": "250000"}, {"2", "3"}),
        ({"attribute": "born", "op": "before", "value": "01/01/1990"}, {"3"}),
        ({"attribute": "born", "op": "after", "value": "1990-12-30"}, {"2"}),
        ({"attribute": "born", "op": "on", "value": "30/12/1990"}, {"1"}),
        ({"op": "has_tag", "value": "VIP"}, {"1", "3"}),
        ({"op": "has_tag", "value": "víp"}, {"1", "3"}),
        ({"op": "not_has_tag", "value": "online"}, {"1", "2", "5", "6"}),
    ],
)
def test_each_operator(people, rule, expected):
    assert not segment_rules_errors([rule])
    assert phones([rule]) == {f"8490000000{n}" for n in expected}


def test_last_days_and_birthday_across_the_year_end(people, monkeypatch):
    from django.utils import timezone

    monkeypatch.setattr(timezone, "localdate", lambda *a, **k: date(2024, 12, 28))
    born = {"attribute": "born", "op": "birthday_days", "value": 7}
    # 30/12 (An) and 02/01 (Bình) fall within 28/12 + 7 days; 15/06 does not.
    assert phones([born]) == {"84900000001", "84900000002"}
    assert phones([{**born, "value": 1}]) == set()
    recent = {"attribute": "born", "op": "last_days", "value": 30}
    monkeypatch.setattr(timezone, "localdate", lambda *a, **k: date(2024, 1, 20))
    assert phones([recent]) == {"84900000002"}
    assert "02-29" in birthday_month_days(date(2025, 2, 27), 2)


def test_groups_and_match(people):
    city = {"attribute": "city", "op": "contains", "value": "ha noi"}
    vip = {"op": "has_tag", "value": "VIP"}
    assert phones([city, vip]) == {"84900000001", "84900000003"}
    assert phones([city, vip], match="any") == {"84900000001", "84900000002", "84900000003"}
    group = {"match": "any", "rules": [vip, {"op": "has_tag", "value": "online"}]}
    assert phones([city, group]) == {"84900000001", "84900000003"}
    assert phones([{"attribute": "city", "op": "empty"}, group], match="any") == {
        "84900000001",
        "84900000003",
        "84900000004",
        "84900000005",
        "84900000006",
    }
    nested = [{"match": "any", "rules": [group]}]
    assert "Groups cannot hold other groups." in segment_rules_errors(nested)


def test_old_segments_still_evaluate(people):
    """A segment saved before the builder (eq, match any, lists) keeps its meaning, now
    without caring for accents."""
    lst = ContactList.objects.create(name="old")
    for c in Contact.objects.filter(phone__in=["84900000001", "84900000004"]):
        lst.contacts.add(c)
    seg = Segment.objects.create(
        name="old",
        match="any",
        rules=[
            {"attribute": "city", "op": "eq", "value": "Hà Nội"},
            {"attribute": "city", "op": "eq", "value": "Đà Nẵng"},
        ],
    )
    assert not segment_rules_errors(seg.rules)
    assert set(segment_queryset(seg).values_list("phone", flat=True)) == {
        "84900000001",
        "84900000002",
        "84900000004",
    }
    seg.contact_lists.add(lst)
    assert segment_queryset(seg).count() == 2
    # used inside another query (the audience): the tag function follows the table's alias
    seg.rules = [{"op": "has_tag", "value": "vip"}]
    seg.save()
    assert Contact.objects.filter(pk__in=segment_queryset(seg).values("pk")).count() == 1


def test_rule_errors_are_sentences():
    assert segment_rules_errors([{"attribute": "x", "op": "gt", "value": "abc"}]) == [
        "Rule 1 needs a number."
    ]
    assert segment_rules_errors([{"attribute": "x", "op": "before", "value": "31/02/2024"}])
    assert segment_rules_errors([{"attribute": "x", "op": "birthday_days", "value": 400}])
    assert segment_rules_errors([{"op": "has_tag", "value": " "}]) == ["Rule 1 needs a tag."]
    assert segment_rules_errors([{"attribute": "x", "op": "contains", "value": ""}])


def test_attribute_keys_guess_types(people):
    keys = {k["key"]: k["type"] for k in attribute_keys()}
    assert keys["born"] == "text"  # "31/02/1990" is no date: one bad value makes it text
    Contact.objects.filter(phone="84900000004").update(attributes={"born": "01/02/1990"})
    keys = {k["key"]: k["type"] for k in attribute_keys()}
    # "abc" went with the update: every "spent" left is a number
    assert keys == {"born": "date", "city": "text", "spent": "number"}


# ---- tags ---------------------------------------------------------------------------------------


@pytest.fixture(params=["fast", "concurrent"])
def save_path(request, monkeypatch):
    if request.param == "concurrent":
        if connection.vendor != "postgresql":
            pytest.skip("PostgreSQL only")
        monkeypatch.setattr(
            PostgresSink,
            "_fast_sql",
            classmethod(
                lambda cls, policy: (
                    "DO $$BEGIN RAISE unique_violation USING MESSAGE = 'simulated'; END$$"
                )
            ),
        )
    return request.param


def test_tags_from_an_import(run_import, save_path):
    Contact.objects.create(phone="84987654321", name="Old", tags=["khach cu"])
    content = (
        "SĐT,Tên khách hàng,Nhóm khách hàng,Thành phố\r\n"
        "0987654321,Old,VIP|Online,Huế\r\n"
        "0912345678,Mới,vip; Khách Mới,Hà Nội\r\n"
        "0912345679,Không nhóm,,Vinh\r\n"
    ).encode()
    imp = run_import(content)
    assert imp.status == "completed", imp.error_message
    tags = dict(Contact.objects.values_list("phone", "tags"))
    assert sorted(tags["84987654321"]) == ["khach cu", "online", "vip"]  # added to what it had
    assert tags["84912345678"] == ["vip", "khach moi"]
    assert tags["84912345679"] == []
    # tags are not an attribute
    assert Contact.objects.get(phone="84912345678").attributes == {"thanh_pho": "Hà Nội"}
    assert tag_display(["vip", "khach moi"]) == ["VIP", "Khách Mới"]
    assert phones([{"op": "has_tag", "value": "VIP"}]) == {"84987654321", "84912345678"}


@pytest.mark.parametrize("policy, kept", [("keep", ["a"]), ("overwrite", ["a", "vip"])])
def test_tags_by_merge_policy(run_import, save_path, policy, kept):
    """keep leaves an existing contact as it was; overwrite (like fill) adds the file's tags."""
    Contact.objects.create(phone="84987654321", name="Old", tags=["a"])
    run_import(b"phone,tags\r\n0987654321,VIP\r\n0912345678,VIP\r\n", merge=policy)
    assert sorted(Contact.objects.get(phone="84987654321").tags) == kept
    assert Contact.objects.get(phone="84912345678").tags == ["vip"]


def test_bulk_add_and_remove_tags(people, admin_client):
    url = reverse("admin:campaigns_contact_changelist")
    ids = list(Contact.objects.filter(name__in=["Bình", "Em"]).values_list("pk", flat=True))
    r = admin_client.post(
        url,
        {"action": "add_tags", "_selected_action": ids, "tags": "VIP, Hà Nội", "index": 0},
        follow=True,
    )
    assert "Tags added to 2 contacts." in r.content.decode()
    assert set(Contact.objects.get(name="Bình").tags) == {"vip", "ha noi"}
    assert Tag.objects.get(key="ha noi").name == "Hà Nội"
    assert phones([{"op": "has_tag", "value": "ha noi"}]) == {"84900000002", "84900000005"}
    r = admin_client.post(
        url,
        {"action": "remove_tags", "_selected_action": ids, "tags": "vip", "index": 0},
        follow=True,
    )
    assert "Tags removed from 2 contacts." in r.content.decode()
    assert Contact.objects.get(name="Bình").tags == ["ha noi"]
    assert Contact.objects.get(name="An").tags == ["vip"]  # not selected: kept
    page = admin_client.get(
        reverse("admin:campaigns_contact_change", args=[Contact.objects.get(name="Chi").pk])
    )
    assert "VIP, Online" in page.content.decode()  # the contact page shows tags as written
    assert contacts_tag(queryset=Contact.objects.all(), text=" ; ") == 0


# ---- the admin -----------------------------------------------------------------------------------


def test_count_endpoint_and_builder_page(people, admin_client):
    url = reverse("admin:campaigns_segment_preview")
    body = {
        "rules": [
            {"attribute": "city", "op": "contains", "value": "ha noi"},
            {"op": "has_tag", "value": "VIP"},
        ],
        "match": "all",
        "lists": [],
    }
    data = admin_client.post(url, json.dumps(body), content_type="application/json").json()
    assert data["count"] == 2
    assert {s["phone"] for s in data["sample"]} == {"0900 000 001", "0900 000 003"}
    bad = {**body, "rules": [{"attribute": "spent", "op": "gt", "value": "x"}]}
    data = admin_client.post(url, json.dumps(bad), content_type="application/json").json()
    assert data["errors"] == ["Rule 1 needs a number."]
    page = admin_client.get(reverse("admin:campaigns_segment_add")).content.decode()
    assert "segment_builder.js" in page and 'id="segment-builder-config"' in page


def test_count_endpoint_needs_permission(people, client):
    from tests.factories import UserFactory

    url = reverse("admin:campaigns_segment_preview")
    payload = json.dumps({"rules": []})
    assert client.post(url, payload, content_type="application/json").status_code == 302  # login
    client.force_login(UserFactory(username="nobody", is_staff=True))
    r = client.post(url, payload, content_type="application/json")
    assert r.status_code == 403
    client.force_login(UserFactory(username="mk2", groups=["Marketer"]))
    r = client.post(url, payload, content_type="application/json")
    assert r.status_code == 200 and r.json()["count"] == 6


def test_saving_from_the_form_and_the_list_count(people, admin_client):
    rules = [{"attribute": "city", "op": "contains", "value": "ha noi"}]
    r = admin_client.post(
        reverse("admin:campaigns_segment_add"),
        {"name": "Hà Nội", "description": "", "match": "all", "rules": json.dumps(rules)},
    )
    assert r.status_code == 302, r.content.decode()[:2000]
    seg = Segment.objects.get(name="Hà Nội")
    assert seg.rules == rules
    page = admin_client.get(reverse("admin:campaigns_segment_changelist")).content.decode()
    assert "contains ha noi" in page and ">3<" in page
    page = admin_client.get(reverse("admin:campaigns_segment_change", args=[seg.pk])).content
    assert 'id="segment-count">3<' in page.decode()
    r = admin_client.post(
        reverse("admin:campaigns_segment_add"),
        {"name": "bad", "match": "all", "rules": "city = ha noi"},
    )
    text = r.content.decode()
    assert "Enter a valid JSON" not in text and "not valid JSON" in text
