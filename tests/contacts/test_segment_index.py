"""The segment index (PostgreSQL, campaigns.contacts.segment_index): it counts exactly the
contacts the contacts' own query counts, for every operator on every kind of value, and stays so
through every way contacts and memberships are written (the import's set-based SQL, the ORM, the
tags' bulk UPDATE, deletes, a list deleted); it is read only once built, per slot."""

from __future__ import annotations

import io
import random
import threading
import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone

from campaigns.contacts.importing.run import contact_import_prepare, contact_import_run
from campaigns.contacts.segment_index import (
    segment_index_build,
    segment_index_claim,
    segment_index_status,
)
from campaigns.contacts.segments import (
    contacts_matching,
    count_estimate,
    indexed_matching,
    newest_within,
    segment_count,
    segment_preview,
)
from campaigns.contacts.tags import contacts_tag
from campaigns.models import (
    SEGMENT_INDEX_SLOTS,
    Contact,
    ContactList,
    ContactListMembership,
    Segment,
    SegmentIndex,
    SegmentIndexSlot,
    SegmentIndexState,
)
from campaigns.privacy.erasure import contacts_erase
from campaigns.segment_rules import attribute_reads
from tests.contacts.conftest import simulate_a_concurrent_writer

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the index is PostgreSQL's"),
]

CITIES = ["Hà Nội", "HÀ NỘI", "ha noi", "Hồ Chí Minh", "Đà Nẵng", "Huế", "", "  Hà   Nội ", None]
SPENDS = ["1.500.000", "1,500,000", "0,5", "12.5", "-3", "40000001", "abc", "", 7, 2.5, True, None]
TIERS = ["gold", "Gold", "GOLD ", "silver", "bạc", None, 1]


def _dates(today):
    out = []
    for days in (-400, -366, -40, -7, -1, 0, 1, 3, 7, 30, 365):
        d = today + timedelta(days=days)
        out += [d.isoformat(), d.strftime("%d/%m/%Y")]
    return out + ["2000-02-29", "29/02/1996", "2023-02-29", "not a date", "", None]


RULESETS = [
    ([{"attribute": "city", "op": "eq", "value": "Hà Nội"}], "all"),
    ([{"attribute": "city", "op": "neq", "value": "ha noi"}], "all"),
    ([{"attribute": "city", "op": "contains", "value": "noi"}], "all"),
    ([{"attribute": "city", "op": "not_contains", "value": "Hà"}], "all"),
    ([{"attribute": "city", "op": "starts_with", "value": "h"}], "all"),
    ([{"attribute": "city", "op": "in", "value": ["Huế", "Đà Nẵng"]}], "all"),
    ([{"attribute": "city", "op": "in", "value": "hue, da nang"}], "all"),
    ([{"attribute": "city", "op": "empty"}], "all"),
    ([{"attribute": "city", "op": "not_empty"}], "all"),
    ([{"attribute": "spend", "op": "gt", "value": "1.000.000"}], "all"),
    ([{"attribute": "spend", "op": "gte", "value": "12,5"}], "all"),
    ([{"attribute": "spend", "op": "lt", "value": 1}], "all"),
    ([{"attribute": "spend", "op": "lte", "value": "7"}], "all"),
    ([{"attribute": "birthday", "op": "before", "value": "01/01/2020"}], "all"),
    ([{"attribute": "birthday", "op": "after", "value": "2000-02-28"}], "all"),
    ([{"attribute": "birthday", "op": "last_days", "value": 30}], "all"),
    ([{"attribute": "birthday", "op": "next_days", "value": 7}], "all"),
    ([{"attribute": "birthday", "op": "birthday_days", "value": 7}], "all"),
    ([{"attribute": "birthday", "op": "anniversary_in", "value": 1}], "all"),
    ([{"op": "has_tag", "value": "VIP"}], "all"),
    ([{"op": "not_has_tag", "value": "vip"}], "all"),
    (
        [
            {"attribute": "tier", "op": "eq", "value": "gold"},
            {
                "match": "any",
                "rules": [
                    {"op": "has_tag", "value": "Online"},
                    {"attribute": "spend", "op": "gt", "value": 0},
                ],
            },
        ],
        "all",
    ),
    (
        [
            {"attribute": "tier", "op": "eq", "value": "silver"},
            {"attribute": "city", "op": "eq", "value": "huế"},
            {"op": "has_tag", "value": "vip"},
        ],
        "any",
    ),
    ([], "all"),
]


@pytest.fixture
def people(db):
    """300 contacts with every shape of value (diacritics, grouped numbers, JSON numbers and
    booleans, both date forms, blanks, missing keys), tags, and three lists."""
    rng = random.Random(22)
    today = timezone.localdate()
    dates = _dates(today)
    lists = [ContactList.objects.create(name=f"list {n}") for n in range(3)]
    contacts = []
    for n in range(300):
        attrs = {}
        for key, values in (("city", CITIES), ("spend", SPENDS), ("tier", TIERS)):
            if rng.random() < 0.85:
                attrs[key] = rng.choice(values)
        if rng.random() < 0.8:
            attrs["birthday"] = rng.choice(dates)
        tags = rng.sample(["vip", "online", "new"], rng.randint(0, 2))
        contacts.append(
            Contact(phone=f"84901{n:06d}", name=f"Người {n}", attributes=attrs, tags=tags)
        )
    Contact.objects.bulk_create(contacts)
    contacts = list(Contact.objects.order_by("pk"))
    ContactListMembership.objects.bulk_create(
        ContactListMembership(contact_list=lists[n % 3], contact=c)
        for n, c in enumerate(contacts)
        if n % 5
    )
    return lists


def _save_segments(rulesets=RULESETS):
    for n, (rules, match) in enumerate(rulesets):
        Segment.objects.create(name=f"segment {n}", rules=rules, match=match)


def _ids_both_ways(rules, match, list_ids=None):
    indexed = indexed_matching(rules=rules, match=match, list_ids=list_ids)
    assert indexed is not None, f"the index could not answer {rules}"
    by_index = set(indexed.index.values_list("contact_id", flat=True))
    newer = set(indexed.newer.values_list("pk", flat=True))
    assert not by_index & newer
    by_index |= newer
    assert indexed.count() == len(by_index)
    by_contacts = set(
        contacts_matching(rules=rules, match=match, list_ids=list_ids).values_list("pk", flat=True)
    )
    assert by_index == by_contacts, rules
    return by_index


def _assert_all_agree(lists):
    total = Contact.objects.count()
    matched_some = 0
    for rules, match in RULESETS:
        for list_ids in (None, [lists[0].pk], [lists[1].pk, lists[2].pk]):
            ids = _ids_both_ways(rules, match, list_ids)
            matched_some += 0 < len(ids) < total
    # Not a vacuous comparison: most rule sets match some contacts and not others.
    assert matched_some > len(RULESETS)


def test_every_operator_counts_the_same_on_the_index(people):
    _save_segments()
    report = segment_index_build()
    assert report.done and report.refills_finished == 1
    assert report.covered_upto == Contact.objects.order_by("-pk").first().pk
    # Every contact through the index's columns, none through the newer contacts' query.
    assert SegmentIndex.objects.count() == Contact.objects.count()
    _assert_all_agree(people)
    assert {s["key"] for s in segment_index_status().slots} == {"city", "spend", "birthday", "tier"}


@pytest.mark.parametrize("save_path", ["fast", "concurrent"])
def test_writes_of_every_kind_keep_it_exact(people, save_path, monkeypatch):
    _save_segments()
    segment_index_build()
    contacts = list(Contact.objects.order_by("pk"))
    # The ORM, one row and many.
    first = contacts[0]
    first.attributes = {"city": "Hà Nội", "spend": "2.000.000", "birthday": "01/01/1990"}
    first.save()
    Contact.objects.filter(pk__in=[c.pk for c in contacts[1:40]]).update(
        attributes={"tier": "gold", "city": "Huế"}
    )
    # The tags' bulk UPDATE (raw SQL), adding and removing.
    contacts_tag(
        queryset=Contact.objects.filter(pk__in=[c.pk for c in contacts[40:80]]), text="VIP"
    )
    contacts_tag(
        queryset=Contact.objects.filter(pk__in=[c.pk for c in contacts[80:120]]),
        text="vip",
        remove=True,
    )
    # Deletes: contacts (their memberships cascade first) and a whole list.
    Contact.objects.filter(pk__in=[c.pk for c in contacts[120:140]]).delete()
    people[2].delete()
    # Memberships added and removed.
    ContactListMembership.objects.bulk_create(
        [ContactListMembership(contact_list=people[1], contact=c) for c in contacts[140:200]],
        ignore_conflicts=True,
    )
    ContactListMembership.objects.filter(
        contact_list=people[0], contact_id__in=[c.pk for c in contacts[200:260]]
    ).delete()
    # The import's set-based SQL: new contacts, and existing ones merged, into a list; by its
    # plain INSERTs, or by INSERT ... ON CONFLICT when another writer raced it.
    if save_path == "concurrent":
        simulate_a_concurrent_writer(monkeypatch)
    csv = "phone,name,city,spend,birthday\r\n" + "".join(
        f"0901{n:06d},Imported {n},Đà Nẵng,{n}.000.000,0{1 + n % 9}/02/1990\r\n"
        for n in range(250, 330)
    )
    imp = contact_import_prepare(
        file=io.BytesIO(csv.encode()),
        filename="more.csv",
        contact_list=people[0],
        merge_policy="overwrite",
    )
    contact_import_run(import_id=imp.pk)
    assert Contact.objects.filter(name__startswith="Imported").count() == 80

    # No build since (the import's task would start one; this ran the import itself): the
    # triggers alone kept every covered row, and the 30 new contacts are above the mark.
    mark = SegmentIndexState.objects.get().covered_upto
    assert SegmentIndex.objects.count() == Contact.objects.filter(pk__lte=mark).count()
    assert Contact.objects.filter(pk__gt=mark).count() == 30  # 50 of the 80 phones existed
    lists = list(ContactList.objects.order_by("pk"))
    _assert_all_agree(lists + lists[:1])
    # The build covers them; the same again.
    assert segment_index_build().covered_upto == Contact.objects.order_by("-pk").first().pk
    assert SegmentIndex.objects.count() == Contact.objects.count()
    _assert_all_agree(lists + lists[:1])


def test_a_contact_in_two_lists_added_in_two_statements(people):
    _save_segments()
    segment_index_build()
    contact = Contact.objects.create(phone="84909999999", attributes={"city": "Huế"})
    assert not SegmentIndex.objects.filter(contact_id=contact.pk).exists()  # above the mark
    segment_index_build()
    for contact_list in people:
        ContactListMembership.objects.create(contact_list=contact_list, contact=contact)
    row = SegmentIndex.objects.get(contact_id=contact.pk)
    assert sorted(row.lists) == sorted(cl.pk for cl in people)
    ContactListMembership.objects.filter(contact=contact, contact_list=people[1]).delete()
    row.refresh_from_db()
    assert sorted(row.lists) == sorted([people[0].pk, people[2].pk])


def test_truncate_empties_it(people):
    _save_segments()
    segment_index_build()
    with connection.cursor() as cur:
        cur.execute("TRUNCATE campaigns_contact RESTART IDENTITY CASCADE")
    assert SegmentIndex.objects.count() == 0
    # Ids start again from 1: the index covers none of them until the build.
    assert SegmentIndexState.objects.get().covered_upto == 0
    Contact.objects.create(phone="84901234567", attributes={"city": "Huế"})
    _ids_both_ways([{"attribute": "city", "op": "eq", "value": "hue"}], "all")


def test_a_slot_is_read_only_once_filled(people):
    rules = [{"attribute": "city", "op": "eq", "value": "Huế"}]
    # No saved segment reads "city": no slot, so the contacts are counted.
    assert indexed_matching(rules=rules, match="all") is None
    assert (
        segment_count(Segment(rules=rules)) == contacts_matching(rules=rules, match="all").count()
    )
    # A slot claimed, not yet filled: still the contacts.
    assert segment_index_claim(attribute_reads(rules))
    assert indexed_matching(rules=rules, match="all") is None
    segment_index_build()
    assert indexed_matching(rules=rules, match="all") is not None
    _ids_both_ways(rules, "all")


def test_counts_are_exact_while_the_index_catches_up(people):
    """A database that held contacts before the index (or an import's million, just saved): the
    count is the index's below the mark plus the contacts' above it, at every step."""
    _save_segments()
    segment_index_build()
    SegmentIndex.objects.all().delete()
    SegmentIndexState.objects.update(covered_upto=0)
    for _ in range(4):
        segment_index_build(seconds=0.0001, size=40)
        assert (
            0
            < SegmentIndexState.objects.get().covered_upto
            < Contact.objects.order_by("-pk").first().pk
        )
        _assert_all_agree(people)
        # A build step between reading the mark and counting counts nobody twice.
        rules, match = RULESETS[0]
        before = indexed_matching(rules=rules, match=match)
        segment_index_build(seconds=0.0001, size=40)
        assert before.count() == contacts_matching(rules=rules, match=match).count()
    segment_index_build()
    assert SegmentIndex.objects.count() == Contact.objects.count()
    _assert_all_agree(people)


def test_a_refill_resumes_where_it_stopped(people):
    segment_index_build()  # every contact covered, no slot yet
    _save_segments()
    first = segment_index_build(seconds=0.0001, size=50)
    assert not first.done
    assert SegmentIndexState.objects.get().refill_cursor is not None
    assert indexed_matching(rules=RULESETS[0][0], match="all") is None  # not filled yet
    rest = segment_index_build(size=50)
    assert rest.done and rest.refills_finished == 1
    assert SegmentIndexState.objects.get().refill_cursor is None
    _assert_all_agree(people)


def test_a_slot_changes_attribute_and_is_filled_again(people):
    # Every text slot taken by attributes saved segments read...
    keys = [f"k{n}" for n in range(12)]
    for key in keys:
        Segment.objects.create(name=key, rules=[{"attribute": key, "op": "eq", "value": "x"}])
    segment_index_build()
    city = [{"attribute": "city", "op": "eq", "value": "Huế"}]
    # ...a new one counts on the contacts, correctly.
    assert not segment_index_claim(attribute_reads(city))
    assert indexed_matching(rules=city, match="all") is None
    # Once a segment reading one of them is gone, its slot is reused and refilled.
    Segment.objects.filter(name="k3").delete()
    Segment.objects.create(name="city", rules=city)
    segment_index_build()
    assert SegmentIndexSlot.objects.get(key="city").ready
    assert not SegmentIndexSlot.objects.filter(key="k3").exists()
    _ids_both_ways(city, "all")


def test_integer_like_attributes_are_counted_on_the_contacts(people):
    rules = [{"attribute": "2024", "op": "eq", "value": "x"}]
    Segment.objects.create(name="odd", rules=rules)
    segment_index_build()
    assert indexed_matching(rules=rules, match="all") is None


def test_sample_and_preview_read_the_index(people):
    _save_segments()
    segment_index_build()
    rules, match = RULESETS[0]
    matching = contacts_matching(rules=rules, match=match)
    expected = list(matching.order_by("-pk").values_list("phone", "name")[:10])
    assert len(expected) == 10
    assert newest_within(indexed_matching(rules=rules, match=match)) == expected
    # An estimate of matches read through the index samples their contacts' query.
    estimate = count_estimate(indexed_matching(rules=rules, match=match), percent=100.0)
    assert estimate == matching.count()
    preview = segment_preview(rules=rules, match=match)
    assert preview.count == matching.count()
    assert [row["name"] for row in preview.sample] == [name for _, name in expected]


def test_a_segment_saved_in_the_admin_is_counted_on_the_index(
    people, admin_client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:campaigns_segment_add"),
            {
                "name": "Huế, gold",
                "description": "",
                "match": "all",
                "rules": '[{"attribute": "city", "op": "eq", "value": "Huế"},'
                ' {"attribute": "tier", "op": "eq", "value": "gold"}]',
                "contact_lists": [people[0].pk],
            },
        )
    assert response.status_code == 302, response.content[:2000]
    segment = Segment.objects.get(name="Huế, gold")
    # The build ran after the save (tasks run inline in the tests): both slots are filled.
    assert SegmentIndexSlot.objects.filter(key__in=["city", "tier"], ready=True).count() == 2
    expected = contacts_matching(rules=segment.rules, match="all", list_ids=[people[0].pk]).count()
    assert expected > 0
    page = admin_client.get(reverse("admin:campaigns_segment_change", args=[segment.pk]))
    assert f'<strong id="segment-count">{expected:,}</strong>' in page.content.decode()


def test_an_erased_person_leaves_nothing_in_it(people):
    _save_segments()
    segment_index_build()
    person = Contact.objects.filter(attributes__has_key="city", tags__contains=["vip"]).first()
    row = SegmentIndex.objects.get(contact_id=person.pk)
    city = SegmentIndexSlot.objects.get(key="city").col
    assert row.tags and row.lists and getattr(row, city) is not None
    contacts_erase(contact_ids=[person.pk])
    row.refresh_from_db()
    assert row.tags == [] and row.lists == []
    assert all(getattr(row, col) is None for col, _ in SEGMENT_INDEX_SLOTS)
    Contact.objects.filter(pk=person.pk).delete()
    assert not SegmentIndex.objects.filter(contact_id=person.pk).exists()


@pytest.fixture
def clean_slots():
    """A transactional test commits its slots; the next tests start with none."""
    yield
    SegmentIndexSlot.objects.update(key=None, ready=False, covered_at_assign=0)


def _in_thread(work, barrier):
    errors = []

    def run():
        try:
            barrier.wait(timeout=10)
            work()
        except Exception as exc:  # reported by the test below
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, errors


def _assert_lists_match_memberships():
    expected: dict[int, set[int]] = {}
    for contact_id, list_id in ContactListMembership.objects.values_list(
        "contact_id", "contact_list_id"
    ):
        expected.setdefault(contact_id, set()).add(list_id)
    for row in SegmentIndex.objects.all():
        assert set(row.lists) == expected.get(row.contact_id, set()), row.contact_id


@pytest.mark.django_db(transaction=True)
def test_writers_and_a_build_at_the_same_time(clean_slots):
    """Two transactions add the same contacts to two lists, another changes their attributes,
    while a build refills a new slot: every row ends exact (real connections, real locks)."""
    lists = [ContactList.objects.create(name=f"concurrent {n}") for n in range(3)]
    Contact.objects.bulk_create(
        Contact(phone=f"84902{n:06d}", attributes={"city": "Huế" if n % 2 else "Vinh"})
        for n in range(400)
    )
    ids = list(Contact.objects.order_by("pk").values_list("pk", flat=True))
    ContactListMembership.objects.bulk_create(
        ContactListMembership(contact_list=lists[2], contact_id=i) for i in ids[::3]
    )
    segment_index_build()  # every contact covered, no slot yet
    Segment.objects.create(name="city", rules=[{"attribute": "city", "op": "eq", "value": "hue"}])
    barrier = threading.Barrier(4)

    def add(list_index, chosen):
        def work():
            with transaction.atomic():
                ContactListMembership.objects.bulk_create(
                    ContactListMembership(contact_list=lists[list_index], contact_id=i)
                    for i in chosen
                )
                time.sleep(0.3)  # held open while the others run

        return work

    def edit():
        with transaction.atomic():
            Contact.objects.filter(pk__in=ids[50:250]).update(attributes={"city": "Huế"})
            time.sleep(0.3)

    def build():
        segment_index_build(size=50)

    runs = [
        _in_thread(add(0, ids[:300]), barrier),
        _in_thread(add(1, ids[100:]), barrier),
        _in_thread(edit, barrier),
        _in_thread(build, barrier),
    ]
    for thread, errors in runs:
        thread.join(timeout=60)
        assert not errors, errors
    segment_index_build()
    assert SegmentIndexSlot.objects.get(key="city").ready
    assert SegmentIndex.objects.count() == Contact.objects.count()
    _assert_lists_match_memberships()
    rules = [{"attribute": "city", "op": "eq", "value": "hue"}]
    for list_ids in (None, [lists[0].pk], [lists[1].pk], [lists[0].pk, lists[2].pk]):
        _ids_both_ways(rules, "all", list_ids)


def test_the_command_resets_and_builds_it(people):
    """Contacts written with the triggers off (a load, a restore): `--reset --build` puts every
    row back; the status lines say how far it covers."""
    _save_segments()
    segment_index_build()
    with connection.cursor() as cur:
        cur.execute("SET session_replication_role = replica")
        cur.execute(
            'UPDATE campaigns_contact SET attributes = \'{"city": "Huế"}\' WHERE mod(id, 2) = 0'
        )
        cur.execute("SET session_replication_role = DEFAULT")
    out = io.StringIO()
    call_command("segment_index", "--reset", "--build", stdout=out)
    newest = Contact.objects.order_by("-pk").first().pk
    assert f"covers contacts up to id {newest:,}" in out.getvalue()
    assert SegmentIndex.objects.count() == Contact.objects.count()
    _assert_all_agree(people)
