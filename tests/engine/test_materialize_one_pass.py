"""Issue 22: the first set-based build marks the recipients its channel cannot reach inside
the INSERT ... SELECT (materialize._marks) instead of a second UPDATE pass; the template's rules
keep their own pass after it (materialize._skip_invalid), which must still see the same rows.
These tests build the same audience twice, once the way it is built now and once the way it was
built before (the plain INSERT ... SELECT, then reach.messages_skip_unreachable and
_skip_invalid), and require exactly the same rows: the same recipients skipped, with the same
error code and reason, the same ones pending, the same opted-out people left out, the same
count of skipped.
"""

from __future__ import annotations

import pytest
from django.db import transaction
from django.utils import timezone

from campaigns.engine.audience import campaign_audience
from campaigns.engine.materialize import (
    _materialize_sql,
    _skip_invalid,
    campaign_materialize,
)
from campaigns.engine.reach import UNREACHABLE, messages_skip_unreachable
from campaigns.models import Message, OptOut
from tests.factories import (
    CampaignFactory,
    ChannelFactory,
    ContactFactory,
    ContactListFactory,
    ProviderAccountFactory,
    TemplateFactory,
)

pytestmark = pytest.mark.django_db

S = Message.Status
# Vietnamese, Cambodian, Thai (no served country: its reason is told in Python), US numbers.
PHONES = [
    *(f"8490123{i:04d}" for i in range(12)),
    *(f"85512345{i:03d}" for i in range(7)),
    "66812345678",
    "66812345679",
    "12025550147",
]


def _rows(campaign) -> dict[int, tuple]:
    return {
        m.contact_id: (m.status, m.error_code, m.error_message, m.phone, m.step, m.attempts)
        for m in Message.objects.filter(campaign=campaign)
    }


def _two_pass(campaign) -> int:
    """The build as it was before the one-pass change: insert everyone, then skip the
    unreachable with a second pass; returns the skipped."""
    with transaction.atomic():
        _materialize_sql(campaign, campaign_audience(campaign), first_build=True)
        return messages_skip_unreachable(campaign=campaign, now=timezone.now(), step=0)


@pytest.mark.parametrize(
    ("kind", "channel_kind"),
    [("sandbox", "zalo_zns"), ("metfone_mmp", "sms"), ("sandbox", "sms")],
    ids=["zns-vietnam-only", "metfone-cambodia-only", "sandbox-both"],
)
def test_one_pass_marks_exactly_the_rows_the_two_pass_build_marked(kind, channel_kind, monkeypatch):
    account = ProviderAccountFactory(kind=kind)
    channel = ChannelFactory(
        account=account, kind=channel_kind, official_account=None, external_id="pub-1"
    )
    template = TemplateFactory(account=account, channel_kind=channel_kind)
    contacts = [ContactFactory(phone=p, attributes={"order": f"DH-{p}"}) for p in PHONES]
    # one Vietnamese and one Cambodian recipient opted out of this channel: left out of both
    for c in (contacts[0], contacts[12]):
        OptOut.objects.create(contact=c, channel_kind=channel_kind)
    members = ContactListFactory(contacts=contacts)
    now_built, before = (
        CampaignFactory(channel=channel, template=template, lists=[members]) for _ in range(2)
    )

    def no_second_pass(**kwargs):
        raise AssertionError("the first set-based build must not run the second pass")

    with monkeypatch.context() as patch:
        patch.setattr("campaigns.engine.materialize.messages_skip_unreachable", no_second_pass)
        total = campaign_materialize(campaign_id=now_built.pk)
    skipped_before = _two_pass(before)

    new, old = _rows(now_built), _rows(before)
    assert new == old  # same recipients, same status, code and reason, field by field
    assert total == len(new) == len(PHONES) - 2
    now_built.refresh_from_db()
    assert now_built.skipped_count == skipped_before
    skipped = {c for c, row in new.items() if row[0] == S.SKIPPED}
    assert all(new[c][1] == UNREACHABLE and new[c][2] for c in skipped)  # never a blank reason
    if channel_kind == "zalo_zns":  # Vietnam only: Cambodian, Thai and US numbers skipped
        assert len(skipped) == 6 + 2 + 1
        assert {new[contacts[-1].pk][2], new[contacts[-2].pk][2]} == {
            old[contacts[-1].pk][2],
            old[contacts[-2].pk][2],
        }
        assert "(TH)" in new[contacts[-2].pk][2]
    elif kind == "metfone_mmp":  # Cambodia only
        assert len(skipped) == 11 + 2 + 1
    else:  # both served countries: only the Thai and US numbers, their reasons told in Python
        assert len(skipped) == 3
        assert "(TH)" in new[contacts[-2].pk][2]

    # Exactly once per (campaign, contact, step): a re-run (the two-pass path) adds nothing
    # and changes no mark.
    assert campaign_materialize(campaign_id=now_built.pk) == total
    assert _rows(now_built) == new


# Values at the edges of the rules: lengths counted after Python's strip and NFC, blanks that are
# not spaces, attributes that are no JSON string (left to Python), missing and null attributes.
DECOMPOSED = "Nguye\u0302\u0303n Thi\u0323 Thu\u0301y Nguye\u0302\u0303n Thi\u0323 Ha\u0300"
EDGE = [
    ("Nguyễn Văn An", {"order": "DH001", "note": "ok ok"}),
    ("N" * 30, {"order": "D" * 30}),  # at the limits: passes
    ("N" * 31, {"order": "D" * 31, "note": "x"}),  # three failing parameters
    (DECOMPOSED, {"order": "DH002"}),  # longer than 30 decomposed, not composed
    ("\t Trần Bình \u00a0\u3000", {"order": " DH003\n"}),  # blanks stripped as Python strips
    ("   ", {"order": "DH004"}),  # blank name: missing
    ("\u00a0\u2003", {"order": "DH005"}),  # blank, not of spaces
    ("Lê Văn Cường", {}),  # no order: missing
    ("Phạm Thu", {"order": None}),  # a JSON null: missing
    ("Võ Nam", {"order": 123456}),  # a number: Python's text of it (left to Python)
    ("Võ Bắc", {"order": 1e40}),  # a number PostgreSQL writes otherwise (41 digits: too long)
    ("Đỗ Mai", {"order": ["DH", 1]}),  # a list (Python's text of it passes)
    ("Hồ Lan", {"order": "DH006", "note": "a note far longer than ten"}),
    ("Ngô Thanh", {"order": "DH007", "note": "  ab  "}),  # too short once stripped
]


def edge_audience(account, channel_kind: str) -> tuple:
    """(template, mapping, contacts): four parameters (a field, two attributes, a constant) with
    bounds, and one contact per EDGE row."""
    template = TemplateFactory(
        account=account, channel_kind=channel_kind, params=["customer_name", "order_code"]
    )
    template.params.create(name="note", position=2, required=False, min_length=3, max_length=10)
    template.params.create(name="greeting", position=3, max_length=20)
    mapping = {
        "customer_name": {"source": "field", "value": "name"},
        "order_code": {"source": "attribute", "value": "order"},
        "note": {"source": "attribute", "value": "note"},
        "greeting": {"source": "constant", "value": " Xin chào "},
    }
    contacts = [
        ContactFactory(phone=f"8490555{i:04d}", name=name, attributes=attrs)
        for i, (name, attrs) in enumerate(EDGE)
    ]
    return template, mapping, contacts


@pytest.mark.parametrize("with_reach", [True, False], ids=["zns", "reaches-anyone"])
def test_one_pass_rules_mark_exactly_the_rows_the_two_pass_build_marked(with_reach, monkeypatch):
    kind, channel_kind = ("sandbox", "zalo_zns") if with_reach else ("sandbox", "viber")
    account = ProviderAccountFactory(kind=kind)
    channel = ChannelFactory(
        account=account, kind=channel_kind, official_account=None, external_id="pub-1"
    )
    template, mapping, contacts = edge_audience(account, channel_kind)
    contacts.append(ContactFactory(phone="85512399901", name="N" * 40, attributes={}))
    members = ContactListFactory(contacts=contacts)
    now_built, before = (
        CampaignFactory(channel=channel, template=template, lists=[members], param_mapping=mapping)
        for _ in range(2)
    )

    def no_second_pass(*args, **kwargs):
        raise AssertionError("the unreachable were to be marked in the build")

    with monkeypatch.context() as patch:
        if with_reach:  # else nothing is marked in the build: the two-pass path, unchanged
            patch.setattr("campaigns.engine.materialize.messages_skip_unreachable", no_second_pass)
        campaign_materialize(campaign_id=now_built.pk)
    with transaction.atomic():
        _materialize_sql(before, campaign_audience(before), first_build=True)
        skipped_before = messages_skip_unreachable(campaign=before, now=timezone.now(), step=0)
        skipped_before += _skip_invalid(before, 5000)

    new, old = _rows(now_built), _rows(before)
    assert new == old
    now_built.refresh_from_db()
    assert now_built.skipped_count == skipped_before
    invalid = {c for c, row in new.items() if row[1] == "invalid_params"}
    by_contact = {c.pk: i for i, c in enumerate(contacts)}
    assert {by_contact[c] for c in invalid} == {2, 5, 6, 7, 8, 10, 12, 13} | (
        set() if with_reach else {14}
    ), {by_contact[c]: new[c][2] for c in invalid}
    assert new[contacts[2].pk][2].count("; ") == 2  # the three parameters, in their order
