"""A fallback step's rows that break its template's rules are skipped with the parameter and why
(campaigns.engine.fallback._skip_invalid). On PostgreSQL only the rows holding a failing value
are read back (campaigns.engine.invalid_by_value.messages_holding_failing_values: each
parameter's distinct values judged once); every row is still checked by validate_data, so the
outcome must be exactly the row path's: the same rows skipped with the same message, the others
left pending. The values mix what the rules see differently: JSON nulls, numbers, booleans,
lists, missing keys, blanks Python strips, decomposed Vietnamese and random text."""

from __future__ import annotations

import pytest
from django.db import connection
from django.utils import timezone

from campaigns.engine.fallback import _skip_invalid
from campaigns.engine.invalid_by_value import messages_holding_failing_values
from campaigns.engine.validation import campaign_params
from campaigns.models import Message
from templates_app.models import TemplateParam
from templates_app.validation import validate_data
from tests.engine.test_invalid_by_value import _random_values
from tests.factories import CampaignFactory, ContactFactory, TemplateFactory

pytestmark = pytest.mark.django_db
S = Message.Status
T = TemplateParam.Type

ODD = [
    None,
    12,
    1.5,
    -0.0,
    True,
    [1, "a"],
    {"k": "v"},
    "",
    "   ",
    "\u00a0",
    "\u3000x",
    "Nguye\u0302\u0303n Va\u0306n An",
    "Nguyễn Văn An",
    "0912345678",
    "01/02/2024",
    "31/02/2024",
    "1.000.000",
    "DH2026",
    "x" * 40,
]


def _data(i: int, text: list[str]) -> dict:
    data = {
        "name": ODD[i % len(ODD)] if i % 3 == 0 else text[i],
        "note": text[-i - 1],
        "amount": ODD[(i * 7) % len(ODD)] if i % 2 else str(i * 1000),
        "day": ODD[(i * 5) % len(ODD)] if i % 4 == 0 else f"{1 + i % 28:02d}/0{1 + i % 9}/2025",
    }
    if i % 11 == 0:
        del data["name"]  # a missing key: "" to the rules
    if i % 13 == 0:
        del data["amount"]
    return data


def test_a_fallback_step_skips_exactly_the_rows_the_row_path_would():
    template = TemplateFactory(params=[])
    for i, (name, ptype, low, high, required) in enumerate(
        [
            ("name", T.TEXT, 0, 10, True),
            ("note", T.TEXT, 3, 12, False),
            ("amount", T.NUMBER, 0, None, True),
            ("day", T.DATE, 0, None, True),
        ]
    ):
        TemplateParam.objects.create(
            template=template,
            name=name,
            position=i,
            param_type=ptype,
            min_length=low,
            max_length=high,
            required=required,
        )
    campaign = CampaignFactory(template=template)
    text = _random_values(400, seed=19)
    people = [ContactFactory() for _ in range(len(text))]
    Message.objects.bulk_create(
        Message(
            campaign=campaign,
            contact=person,
            phone=person.phone,
            step=1,
            idempotency_key=f"fb{campaign.pk}-{i}",
            template_data=_data(i, text),
        )
        for i, person in enumerate(people)
    )
    params = campaign_params(campaign)
    expected = {}
    for m in Message.objects.filter(campaign=campaign):
        errors = validate_data(params, {k: str(v) for k, v in m.template_data.items()})
        expected[m.pk] = "; ".join(f"“{n}”: {why}" for n, why in errors.items())[:500]
    failing = {pk for pk, why in expected.items() if why}
    assert 50 < len(failing) < len(expected) - 50  # both kinds, plenty of each

    pending = Message.objects.filter(campaign=campaign, step=1, status=S.PENDING, attempts=0)
    read = set(messages_holding_failing_values(pending, params).values_list("pk", flat=True))
    assert failing <= read  # nothing that fails is left out of the read
    if connection.vendor == "postgresql":
        assert len(read) < len(expected)  # and it reads fewer rows than all

    assert _skip_invalid(campaign, 1, timezone.now()) == len(failing)
    for m in Message.objects.filter(campaign=campaign):
        if expected[m.pk]:
            assert (m.status, m.error_code, m.error_message) == (
                S.SKIPPED,
                "invalid_params",
                expected[m.pk],
            ), m.template_data
        else:
            assert (m.status, m.error_code) == (S.PENDING, ""), m.template_data
