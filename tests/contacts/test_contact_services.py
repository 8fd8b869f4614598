"""Opt-outs, segments and exports (campaigns/contacts/: optout, segments, export)."""

import csv
import io

import pytest
from django.utils import translation

from campaigns.contacts.export import contacts_attribute_keys, contacts_export_csv
from campaigns.contacts.importing.files import ImportFileError
from campaigns.contacts.optout import (
    InvalidPhone,
    contact_opt_out,
    contacts_opt_out,
    opt_out_file_process,
)
from campaigns.contacts.segments import segment_count, segment_queryset
from campaigns.models import Contact, ContactList, ContactListMembership, OptOut, Segment
from campaigns.segment_rules import segment_rules_errors
from tests.contacts import hostile

pytestmark = pytest.mark.django_db


def make(phone, name="", **attrs):
    return Contact.objects.create(phone=phone, name=name, attributes=attrs)


# ---- opt-out ---------------------------------------------------------------------------------


def test_contact_opt_out_for_an_existing_contact():
    c = make("84987654321", "An")
    opt = contact_opt_out(
        phone="0987 654 321", channel_kind="zalo_zns", reason="TU CHOI", source="reply"
    )
    assert (opt.contact_id, opt.channel_kind, opt.reason, opt.source) == (
        c.pk,
        "zalo_zns",
        "TU CHOI",
        "reply",
    )
    assert opt.created_at is not None


def test_contact_opt_out_for_an_unknown_phone_creates_the_contact():
    opt = contact_opt_out(phone="+84 912 345 678", reason="STOP", source=OptOut.Source.REPLY)
    assert opt.contact.phone == "84912345678"
    assert opt.channel_kind == OptOut.ALL
    assert opt.contact.source == "opt-out:reply"


def test_contact_opt_out_is_idempotent_and_keeps_the_first_evidence():
    first = contact_opt_out(phone="0987654321", reason="first")
    again = contact_opt_out(phone="84987654321", reason="second")
    assert first.pk == again.pk
    assert again.reason == "first"
    assert OptOut.objects.count() == 1


def test_contact_opt_out_refuses_bad_input():
    with pytest.raises(InvalidPhone):
        contact_opt_out(phone="12345")
    with pytest.raises(ValueError):
        contact_opt_out(phone="0987654321", channel_kind="pigeon")


def test_bulk_opt_out():
    a, b = make("84987654321"), make("84912345678")
    OptOut.objects.create(contact=a, channel_kind=OptOut.ALL)
    assert contacts_opt_out(contact_ids=[a.pk, b.pk], reason="admin") == 1
    assert OptOut.objects.filter(channel_kind=OptOut.ALL).count() == 2


def test_opt_out_file():
    make("84987654321", "An")
    content = (
        "SĐT,Ghi chú\r\n0987654321,a\r\n+84 912 345 678,b\r\n0912345678,dup\r\nxyz,bad\r\n,\r\n"
    ).encode()
    result = opt_out_file_process(
        file=io.BytesIO(content), channel_kind="sms", reason="list from shop"
    )
    assert result.adds_up()
    assert (result.total, result.opted_out, result.duplicates, result.invalid) == (4, 2, 1, 1)
    assert [e[0] for e in result.errors] == [4, 5]
    assert set(OptOut.objects.values_list("contact__phone", "channel_kind")) == {
        ("84987654321", "sms"),
        ("84912345678", "sms"),
    }
    again = opt_out_file_process(file=io.BytesIO(content), channel_kind="sms")
    assert (again.opted_out, again.already) == (0, 2)


def test_opt_out_file_without_header_and_utf16():
    content = hostile.utf16_unicode_text()
    result = opt_out_file_process(file=io.BytesIO(content))
    assert (result.total, result.opted_out) == (3, 3)
    bare = opt_out_file_process(file=io.BytesIO(b"0987654321\n0903123456\n"))
    assert (bare.total, bare.already) == (2, 2)


def test_opt_out_file_refusals():
    with pytest.raises(ImportFileError):
        opt_out_file_process(file=io.BytesIO(hostile.no_phone_column()))
    with pytest.raises(ImportFileError):
        opt_out_file_process(file=io.BytesIO(b""))


def test_an_opted_out_phone_stays_opted_out_after_an_import(run_import):
    contact_opt_out(phone="0987654321", reason="STOP", source=OptOut.Source.REPLY)
    run_import(hostile.duplicates(), merge="overwrite")
    c = Contact.objects.get(phone="84987654321")
    assert c.opt_outs.filter(channel_kind=OptOut.ALL).exists()
    assert c.name == "First"  # the import still fills the contact in


# ---- segments ----------------------------------------------------------------------------------


@pytest.fixture
def people():
    hn = ContactList.objects.create(name="HN")
    rows = [
        ("84900000001", "A", {"city": "Hà Nội", "tier": "gold"}),
        ("84900000002", "B", {"city": "hà nội", "tier": ""}),
        ("84900000003", "C", {"city": "Huế", "tier": "silver"}),
        ("84900000004", "D", {"city": "Đà Nẵng"}),
        ("84900000005", "E", {}),
    ]
    out = {}
    for phone, name, attrs in rows:
        out[name] = make(phone, name, **attrs)
    for name in "ABC":
        ContactListMembership.objects.create(contact_list=hn, contact=out[name])
    return out, hn


def names(qs):
    return sorted(qs.values_list("name", flat=True))


def seg(rules, match="all", lists=()):
    s = Segment.objects.create(name=f"s{Segment.objects.count()}", rules=rules, match=match)
    s.contact_lists.set(lists)
    return s


def test_segment_ops(people):
    _p, _hn = people
    eq = seg([{"attribute": "city", "op": "eq", "value": "Huế"}])
    assert names(segment_queryset(eq)) == ["C"]
    ieq = seg([{"attribute": "city", "op": "eq", "value": "ha noi"}])
    # accents and case do not matter (issue 17: "ha noi" finds "Hà Nội")
    assert names(segment_queryset(ieq)) == ["A", "B"]
    neq = seg([{"attribute": "city", "op": "neq", "value": "Huế"}])
    assert names(segment_queryset(neq)) == ["A", "B", "D", "E"]  # missing counts as different
    contains = seg([{"attribute": "city", "op": "contains", "value": "Nẵng"}])
    assert names(segment_queryset(contains)) == ["D"]
    within = seg([{"attribute": "city", "op": "in", "value": ["Huế", "Đà Nẵng"]}])
    assert names(segment_queryset(within)) == ["C", "D"]
    within_text = seg([{"attribute": "city", "op": "in", "value": "Huế, Đà Nẵng"}])
    assert names(segment_queryset(within_text)) == ["C", "D"]
    empty = seg([{"attribute": "tier", "op": "empty"}])
    assert names(segment_queryset(empty)) == ["B", "D", "E"]
    not_empty = seg([{"attribute": "tier", "op": "not_empty"}])
    assert names(segment_queryset(not_empty)) == ["A", "C"]


def test_segment_case_insensitive_ascii():
    make("84900000009", "Z", city="HUE")
    s = seg([{"attribute": "city", "op": "eq", "value": "hue"}])
    assert names(segment_queryset(s)) == ["Z"]


def test_segment_lists_match_any_and_opt_outs(people):
    p, hn = people
    both = seg(
        [
            {"attribute": "tier", "op": "not_empty"},
            {"attribute": "city", "op": "contains", "value": "Hà"},
        ],
        lists=[hn],
    )
    assert names(segment_queryset(both)) == ["A"]
    either = seg(
        [
            {"attribute": "tier", "op": "eq", "value": "silver"},
            {"attribute": "city", "op": "eq", "value": "Đà Nẵng"},
        ],
        match="any",
    )
    assert names(segment_queryset(either)) == ["C", "D"]
    everyone_in_hn = seg([], lists=[hn])
    assert names(segment_queryset(everyone_in_hn)) == ["A", "B", "C"]
    assert segment_count(everyone_in_hn) == 3
    OptOut.objects.create(contact=p["A"], channel_kind="zalo_zns")
    OptOut.objects.create(contact=p["B"], channel_kind=OptOut.ALL)
    OptOut.objects.create(contact=p["C"], channel_kind="sms")
    assert names(segment_queryset(everyone_in_hn, exclude_opted_out="zalo_zns")) == ["C"]


def test_segment_attribute_names_are_keys_not_lookups(people):
    make("84900000010", "Weird", **{"a__b": "x"})
    s = seg([{"attribute": "a__b", "op": "eq", "value": "x"}])
    assert names(segment_queryset(s)) == ["Weird"]
    tricky = seg([{"attribute": "city__contains", "op": "eq", "value": "H"}])
    assert names(segment_queryset(tricky)) == []


def test_segment_rule_validation():
    assert segment_rules_errors([{"attribute": "city", "op": "eq", "value": "Huế"}]) == []
    assert segment_rules_errors([]) == []
    assert segment_rules_errors({"a": 1})
    assert segment_rules_errors([{"attribute": "", "op": "eq", "value": "x"}])
    assert segment_rules_errors([{"attribute": "a", "op": "like", "value": "x"}])
    assert segment_rules_errors([{"attribute": "a", "op": "in", "value": []}])
    assert segment_rules_errors([{"attribute": "a", "op": "eq"}])
    assert segment_rules_errors([{"attribute": "a", "op": "empty"}]) == []
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        Segment(name="x", rules=[{"op": "eq"}]).full_clean()


# ---- export --------------------------------------------------------------------------------------


def test_export_is_injection_safe_and_has_attribute_columns():
    c = make("84987654321", '=HYPERLINK("http://x")', city="Huế", note="@SUM(1)")
    make("84912345678", "-Minus", tier="gold")
    OptOut.objects.create(contact=c, channel_kind="sms")
    OptOut.objects.create(contact=c, channel_kind=OptOut.ALL)
    with translation.override("en"):
        text = "".join(contacts_export_csv(queryset=Contact.objects.all()))
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows[0] == [
        "phone",
        "phone (local)",
        "name",
        "city",
        "note",
        "tier",
        "opted out of",
        "source",
        "created",
    ]
    first = rows[1]
    assert first[:6] == [
        "84987654321",
        "0987 654 321",
        '\'=HYPERLINK("http://x")',
        "Huế",
        "'@SUM(1)",
        "",
    ]
    assert first[6] == "all sms"
    assert rows[2][2] == "'-Minus"
    assert len(rows) == 3


def test_attribute_keys_follow_the_queryset():
    make("84987654321", "A", city="Huế")
    make("84912345678", "B", tier="gold")
    assert contacts_attribute_keys(queryset=Contact.objects.filter(name="B")) == ["tier"]
