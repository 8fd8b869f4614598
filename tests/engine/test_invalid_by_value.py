"""Issue 22: on PostgreSQL, materialization judges each parameter's distinct values once and marks
the failing recipients with one UPDATE (campaigns.engine.invalid_by_value) instead of reading
every recipient into Python (materialize._skip_invalid's row path). These tests build the same
audience both ways and require exactly the same rows: the same recipients skipped, with the same
error code and the same message, text for text; the same ones left pending.

The values are chosen to break the shortcut if it were wrong: every ASCII character (the "plainly
fine" test is a regular expression over printable ASCII), blanks that are not spaces and that
Python strips (NBSP, U+3000, U+0085, U+001C–U+001F), decomposed Vietnamese that NFC shortens,
a composition exclusion that NFC lengthens (U+0958), "ß" which upper() lengthens, numbers that
PostgreSQL and Python write differently, JSON nulls, lists and missing keys.
"""

from __future__ import annotations

import random

import pytest
from django.db import connection

from campaigns.engine import invalid_by_value
from campaigns.engine.materialize import campaign_materialize
from campaigns.models import Message
from templates_app.models import TemplateParam
from tests.engine.test_materialize_one_pass import edge_audience
from tests.factories import (
    CampaignFactory,
    ChannelFactory,
    ContactFactory,
    ContactListFactory,
    ProviderAccountFactory,
    TemplateFactory,
)

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="the by-value path is PostgreSQL's"
    ),
]

S = Message.Status
T = TemplateParam.Type

POOL = (
    [chr(c) for c in range(128)]
    + list("\u00a0\u3000\u0085\u2003\u200b\u0302\u0303\u0323\u0301ßĐđễ\u0958\u1780\u17b6😀")
    + ["e\u0301", "A\u030a"]
)


def _random_values(n: int, seed: int) -> list[str]:
    rnd = random.Random(seed)
    out = []
    for _ in range(n):
        length = rnd.choice([0, 1, 2, 3, 11, 12] + [5, 8, 9, 10] * 6)
        if rnd.random() < 0.7:  # mostly printable ASCII, as real data is
            out.append("".join(rnd.choice(POOL[32:127]) for _ in range(length)))
        else:
            out.append("".join(rnd.choice(POOL) for _ in range(length)).replace("\x00", ""))
    return out


def _rows(campaign) -> dict[int, tuple]:
    return {
        m.contact_id: (m.status, m.error_code, m.error_message)
        for m in Message.objects.filter(campaign=campaign)
    }


def _both_ways(template, mapping, contacts, monkeypatch, *, kind="viber", in_insert=True):
    """(rows, skipped) of three builds of the same audience: the failing recipients marked in
    the INSERT (a first build), marked by one UPDATE by value (as a re-run does), and by the row
    path. Asserts the three agree and returns the first's. Without `in_insert` (a mapping that
    renders in Python), the first build marks by the UPDATE too."""
    account = template.account
    channel = ChannelFactory(account=account, kind=kind, official_account=None, external_id="p1")
    members = ContactListFactory(contacts=contacts)
    in_build, by_update, by_row = (
        CampaignFactory(channel=channel, template=template, lists=[members], param_mapping=mapping)
        for _ in range(3)
    )
    calls = []
    real = invalid_by_value.skip_invalid_by_value

    def spy(campaign):
        result = real(campaign)
        calls.append(result)
        return result

    def must_not_run(campaign):
        raise AssertionError("a first build on PostgreSQL marks in the INSERT, no UPDATE after")

    with monkeypatch.context() as patch:
        if in_insert:
            patch.setattr("campaigns.engine.materialize.skip_invalid_by_value", must_not_run)
        campaign_materialize(campaign_id=in_build.pk)
    with monkeypatch.context() as patch:
        patch.setattr("campaigns.engine.materialize.invalid_plan", lambda c: None)
        patch.setattr("campaigns.engine.materialize.skip_invalid_by_value", spy)
        campaign_materialize(campaign_id=by_update.pk)
    assert calls and calls[0] is not None, "the UPDATE by value was expected to run"
    with monkeypatch.context() as patch:
        patch.setattr("campaigns.engine.materialize.invalid_plan", lambda c: None)
        patch.setattr("campaigns.engine.materialize.skip_invalid_by_value", lambda c: None)
        campaign_materialize(campaign_id=by_row.pk)
    for campaign in (in_build, by_update, by_row):
        campaign.refresh_from_db()
    rows = _rows(in_build)
    assert rows == _rows(by_update), _diff(rows, _rows(by_update))
    assert rows == _rows(by_row), _diff(rows, _rows(by_row))
    assert in_build.skipped_count == by_update.skipped_count == by_row.skipped_count
    assert in_build.total_count == by_row.total_count
    return rows, in_build.skipped_count


def _diff(a: dict, b: dict) -> dict:
    return {c: (a.get(c), b.get(c)) for c in set(a) | set(b) if a.get(c) != b.get(c)}


@pytest.mark.parametrize("kind", ["viber", "zalo_zns"], ids=["reaches-anyone", "zns-vietnam-only"])
def test_edge_values_are_judged_as_the_row_path_judges_them(kind, monkeypatch):
    """With ZNS, the Cambodian recipients are marked unreachable in the same INSERT, whatever
    their data says (the unreachable first, as the row path does)."""
    template, mapping, contacts = edge_audience(ProviderAccountFactory(kind="sandbox"), kind)
    contacts.append(ContactFactory(phone="84905559999", name="N" * 40, attributes={"order": 1.0}))
    contacts.append(ContactFactory(phone="84905559998", name="Lý", attributes={}))
    contacts.append(ContactFactory(phone="85512399901", name="N" * 40, attributes={}))
    contacts.append(ContactFactory(phone="85512399902", name="Sok", attributes={"order": "D1"}))
    new, _skipped = _both_ways(template, mapping, contacts, monkeypatch, kind=kind)
    cambodian = [new[c.pk] for c in contacts[-2:]]
    if kind == "zalo_zns":
        assert [row[1] for row in cambodian] == ["unreachable", "unreachable"]
    else:
        assert [row[1] for row in cambodian] == ["invalid_params", ""]
    invalid = [c for c, row in new.items() if row[1] == "invalid_params"]
    assert len(invalid) >= 8  # the edges fail, each as the row path says
    assert any("; " in new[c][2] for c in invalid)  # several parameters of one recipient


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_values_at_the_length_bounds(seed, monkeypatch):
    """Names and attributes drawn at and around the bounds (min 2, max 10) from every ASCII
    character and the Unicode ones that make strip, NFC and upper() differ from PostgreSQL."""
    account = ProviderAccountFactory(kind="sandbox")
    template = TemplateFactory(
        account=account,
        channel_kind="viber",
        params=["customer_name"],
        body="{{customer_name}} {{code}} {{loud}} {{amount}}",
    )
    template.params.filter(name="customer_name").update(min_length=2, max_length=10)
    template.params.create(name="code", position=1, min_length=2, max_length=10)
    template.params.create(name="loud", position=2, required=False, max_length=10)
    template.params.create(name="amount", position=3, param_type=T.AMOUNT, required=False)
    mapping = {
        "customer_name": {"source": "field", "value": "name"},
        "code": {"source": "attribute", "value": "code"},
        "loud": {"source": "attribute", "value": "code", "format": "upper"},
        "amount": {"source": "attribute", "value": "amount"},
    }
    names = _random_values(150, seed)
    codes = _random_values(150, seed + 100)
    rnd = random.Random(seed)
    amounts = ["1.000.000", "0,3", "abc", 1500000, 1500000.0, 2.5, None, "", " 12 "]
    contacts = []
    for i, (name, code) in enumerate(zip(names, codes, strict=True)):
        attrs = {"code": code, "amount": rnd.choice(amounts) if i % 3 == 0 else "1.000"}
        if i % 17 == 0:
            attrs.pop("code")
        contacts.append(ContactFactory(phone=f"849066{i:05d}", name=name[:200], attributes=attrs))
    new, _skipped = _both_ways(template, mapping, contacts, monkeypatch)
    statuses = {row[0] for row in new.values()}
    assert statuses == {S.PENDING, S.SKIPPED}, list(new.values())[:8]  # both, or it proved nothing


@pytest.mark.parametrize("broken", [True, False], ids=["broken-format", "plain"])
def test_a_failing_constant_fails_everyone_as_the_row_path_says(broken, monkeypatch):
    """A constant longer than its parameter allows fails every recipient; beside an unknown
    format (the checker renders that parameter empty, the build renders in Python) or not."""
    account = ProviderAccountFactory(kind="sandbox")
    template = TemplateFactory(
        account=account, channel_kind="viber", params=["customer_name", "order_code"]
    )
    template.params.create(name="greeting", position=2, max_length=3)
    order = {"source": "attribute", "value": "order"}
    mapping = {
        "customer_name": {"source": "field", "value": "name"},
        "order_code": {**order, "format": "no-such-format"} if broken else order,
        "greeting": {"source": "constant", "value": "Xin chào"},
    }
    contacts = [ContactFactory(phone=f"849077{i:05d}") for i in range(5)]
    new, skipped = _both_ways(template, mapping, contacts, monkeypatch, in_insert=not broken)
    assert {row[1] for row in new.values()} == {"invalid_params"}
    assert skipped == 5
    assert all(("order_code" in row[2]) == broken for row in new.values())


def test_an_expression_source_keeps_the_row_path(monkeypatch):
    account = ProviderAccountFactory(kind="sandbox")
    template = TemplateFactory(
        account=account, channel_kind="viber", params=["customer_name"], body="{{customer_name}}"
    )
    channel = ChannelFactory(account=account, kind="viber", official_account=None, external_id="x")
    contacts = [ContactFactory(phone="84908880001", name="")]
    campaign = CampaignFactory(
        channel=channel,
        template=template,
        lists=[ContactListFactory(contacts=contacts)],
        param_mapping={"customer_name": {"source": "expression", "value": "{name}"}},
    )
    assert invalid_by_value.skip_invalid_by_value(campaign) is None
    campaign_materialize(campaign_id=campaign.pk)
    assert _rows(campaign)[contacts[0].pk][1] == "invalid_params"
