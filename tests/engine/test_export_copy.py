"""The campaign CSV written by PostgreSQL (campaigns.selectors.export_copy) is byte for byte the
CSV the Python path writes, on rows chosen to hit every cell rule: the formula guard, quotes,
commas and newlines, both served countries' phones, a foreign and an erased one, attributes of
every JSON type, parameters that are not text, error codes as catalogued, unknown and spelled
unusually, whole and fractional fees, every status, in both languages. On SQLite the database
cannot write it: the Python path serves, and the test checks that."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import translation

from campaigns.models import Message
from campaigns.selectors.export import (
    campaign_export_rows,
    campaign_export_rows_python,
    campaign_export_table,
)
from tests.factories import CampaignFactory, ContactFactory, message_for

pytestmark = pytest.mark.django_db

AT = datetime(2026, 12, 3, 2, 5, 7, 123456, tzinfo=UTC)

CONTACTS = [
    ("84912345678", "Nguyễn An", {"order": "DH-1001", "city": "Hà Nội", "points": 120}),
    ("85512345678", '=HYPERLINK("http://x","y")', {"points": -5, "vip": True}),
    ("855123456789", "Trần, Bình\nsecond line", {"ratio": 1.5, "big": 100.0, "none": None}),
    ("66812345678", "+ Thai friend", {"nested": {"b": [1, 2.0], "a": "x"}, "list": ["a"]}),
    ("x0123456789abcde", "", {}),  # erased: the token stays as stored
    ("84212345678", '"quoted" name', {"city": "@home", "tab": "\tlead"}),
]
# (status, template_data, error_code, fee)
MESSAGES = [
    ("delivered", {"customer_name": "Nguyễn An", "order_code": "DH-1001"}, "", "300.00"),
    ("failed", {"customer_name": "x", "extra": 5}, "-108", None),
    ("read", {"order_code": "=1+1", "customer_name": 7, "zeta": 1.25}, "", "300.50"),
    ("failed", {"customer_name": None, "b": True, "a": {"k": "v"}}, "0118", None),
    ("skipped", [], "opted_out", None),
    ("sent", {}, "weird-code", "0.00"),
]


@pytest.fixture
def campaign():
    campaign = CampaignFactory()
    rows = []
    for (phone, name, attrs), (status, data, code, fee) in zip(CONTACTS, MESSAGES, strict=True):
        contact = ContactFactory(phone=phone, name=name, attributes=attrs)
        rows.append(
            message_for(
                campaign,
                contact,
                status=status,
                template_data=data,
                error_code=code,
                fee=Decimal(fee) if fee else None,
                sent_at=AT if status != "skipped" else None,
                delivered_at=AT if status in ("delivered", "read") else None,
                read_at=AT if status == "read" else None,
                failed_at=AT if status == "failed" else None,
                provider_message_id="-pmid" if status == "read" else "",
            )
        )
    Message.objects.bulk_create(rows)
    return campaign


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_database_csv_is_the_python_csv(campaign, lang):
    with translation.override(lang):
        table = campaign_export_table(campaign=campaign)
        fast = "".join(campaign_export_rows(campaign=campaign))
        slow = "".join(campaign_export_rows_python(campaign=campaign))
    # PostgreSQL writes it; SQLite cannot, and the Python path serves.
    assert (table.copy is not None) == (connection.vendor == "postgresql")
    assert fast == slow
    assert fast.count("\r\n") >= len(MESSAGES) + 1
    assert "'=HYPERLINK" in fast and "'-108" in fast


def test_database_csv_reports_rows_to_the_audit(campaign):
    done = []
    text = "".join(
        campaign_export_rows(campaign=campaign, on_done=lambda n, ok: done.append((n, ok)))
    )
    assert done == [(len(MESSAGES), True)]
    assert text.startswith("\ufeff")


def test_a_cut_download_still_reports_what_it_sent(campaign, monkeypatch):
    """Cut in the middle of the rows (chunks of 2): the read ends before the audit is told."""
    monkeypatch.setattr("campaigns.selectors.export_copy.CHUNK_ROWS", 2)
    done = []
    chunks = campaign_export_rows(campaign=campaign, on_done=lambda n, ok: done.append((n, ok)))
    next(chunks)  # the header
    next(chunks)  # two rows, then the reader goes away
    chunks.close()
    # PostgreSQL: chunks of 2; the Python path writes its 500-row chunks: all six in one
    expected = 2 if connection.vendor == "postgresql" else len(MESSAGES)
    assert done == [(expected, False)]
