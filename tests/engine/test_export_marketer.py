"""The campaign export a marketer reads (issue 17, item 4): one table written as CSV and XLSX with
the same columns, headers and statuses in the reader's language, both phone forms, the contact's
attributes, what was sent, typed XLSX cells, and the formula guard in the CSV only."""

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import translation
from openpyxl import load_workbook

from campaigns.models import Message
from campaigns.selectors.export import campaign_export_rows
from campaigns.selectors.export_xlsx import TIME_FORMAT, VND_FORMAT, campaign_export_xlsx
from tests.factories import (
    CampaignFactory,
    ChannelFactory,
    ContactFactory,
    TemplateFactory,
    message_for,
)

pytestmark = pytest.mark.django_db

SENT = datetime(2026, 12, 3, 2, 5, 0, tzinfo=UTC)  # 09:05 in Vietnam
DELIVERED = datetime(2026, 12, 3, 2, 6, 30, tzinfo=UTC)


@pytest.fixture
def zns_campaign():
    campaign = CampaignFactory()
    an = ContactFactory(
        phone="84912345678", name="Nguyễn An", attributes={"order": "DH-1001", "city": "Hà Nội"}
    )
    evil = ContactFactory(
        phone="85512345678", name='=HYPERLINK("http://x","y")', attributes={"points": 120}
    )
    Message.objects.bulk_create(
        [
            message_for(
                campaign,
                an,
                status=Message.Status.DELIVERED,
                template_data={"customer_name": "Nguyễn An", "order_code": "DH-1001"},
                sent_at=SENT,
                delivered_at=DELIVERED,
                fee=Decimal("300.00"),
            ),
            message_for(
                campaign,
                evil,
                status=Message.Status.FAILED,
                template_data={"customer_name": "x"},
                sent_at=SENT,
                failed_at=DELIVERED,
                error_code="-108",
            ),
        ]
    )
    return campaign


def csv_table(campaign) -> list[list[str]]:
    text = "".join(campaign_export_rows(campaign=campaign))
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))


def xlsx_sheet(campaign):
    out = io.BytesIO()
    n = campaign_export_xlsx(campaign=campaign, fileobj=out)
    out.seek(0)
    return n, load_workbook(out).active


def by_header(header, row):
    return dict(zip(header, row, strict=True))


@pytest.mark.parametrize(
    "lang, phone, status, delivered, failed, meaning",
    [
        ("vi", "Số điện thoại", "Trạng thái", "Đã nhận", "Thất bại", "Ý nghĩa"),
        ("en", "Phone", "Status", "Delivered", "Failed", "What it means"),
    ],
)
def test_csv_and_xlsx_have_the_same_columns_in_the_readers_language(
    zns_campaign, lang, phone, status, delivered, failed, meaning
):
    with translation.override(lang):
        rows = csv_table(zns_campaign)
        n, sheet = xlsx_sheet(zns_campaign)
    assert n == 2
    xrows = [[c.value for c in r] for r in sheet.iter_rows()]
    # One table: the same header in both, every column in the same place.
    assert xrows[0] == rows[0]
    header = rows[0]
    assert header[:3] == [phone, header[1], header[2]] and meaning in header
    assert {"order", "city", "points"} <= set(header)  # one column per attribute key
    got = [by_header(header, r) for r in rows[1:]]
    xgot = [by_header(header, r) for r in xrows[1:]]
    # The phone as people write it, then as stored and sent (international).
    assert [(r[phone], r[header[1]]) for r in got] == [
        ("0912 345 678", "84912345678"),
        ("012 345 678", "85512345678"),
    ]
    assert [(r[phone], r[header[1]]) for r in xgot] == [
        ("0912 345 678", "84912345678"),
        ("012 345 678", "85512345678"),
    ]
    assert [r[status] for r in got] == [delivered, failed]
    assert [r[status] for r in xgot] == [delivered, failed]


def test_attributes_order_code_parameters_and_meaning(zns_campaign, english):
    header, *rows = csv_table(zns_campaign)
    an, evil = (by_header(header, r) for r in rows)
    assert an["order"] == "DH-1001" and an["city"] == "Hà Nội" and an["points"] == ""
    assert evil["points"] == "120"
    assert an["Parameters"] == "customer_name: Nguyễn An; order_code: DH-1001"
    assert "Content" not in header  # a ZNS template is sent as parameters, not as text
    assert an["Sent at"] == "2026-12-03 09:05:00" and an["Delivered at"] == "2026-12-03 09:06:30"
    assert an["Fee (VND)"] == "300" and evil["Fee (VND)"] == ""
    assert evil["What it means"] == "The phone number is invalid."


def test_the_formula_guard_is_in_the_csv_only(zns_campaign, english):
    header, *rows = csv_table(zns_campaign)
    evil = by_header(header, rows[1])
    assert evil["Name"] == '\'=HYPERLINK("http://x","y")'
    assert evil["Error code"] == "'-108"

    _n, sheet = xlsx_sheet(zns_campaign)
    xheader = [c.value for c in next(sheet.iter_rows())]
    cells = {h: c for h, c in zip(xheader, list(sheet.iter_rows())[2], strict=True)}
    # Stored as a string cell ("s"), not a formula: no apostrophe needed.
    assert cells["Name"].value == '=HYPERLINK("http://x","y")'
    assert cells["Name"].data_type == "s"
    assert cells["Error code"].value == "-108" and cells["Error code"].data_type == "s"
    assert all(c.data_type != "f" for row in sheet.iter_rows() for c in row)


def test_xlsx_cells_are_typed(zns_campaign, english):
    _n, sheet = xlsx_sheet(zns_campaign)
    xheader = [c.value for c in next(sheet.iter_rows())]
    an = {h: c for h, c in zip(xheader, list(sheet.iter_rows())[1], strict=True)}
    evil = {h: c for h, c in zip(xheader, list(sheet.iter_rows())[2], strict=True)}
    # Times: real datetimes, naive Vietnam time, one format.
    assert an["Sent at"].value == datetime(2026, 12, 3, 9, 5)
    assert an["Sent at"].is_date and an["Sent at"].number_format == TIME_FORMAT
    assert an["Read at"].value is None
    # The fee: a number in VND without decimals.
    assert an["Fee (VND)"].value == 300 and an["Fee (VND)"].data_type == "n"
    assert an["Fee (VND)"].number_format == VND_FORMAT and "." not in VND_FORMAT
    # An attribute that is a number stays one; text stays text.
    assert evil["points"].value == 120 and evil["points"].data_type == "n"
    assert an["Phone"].value == "0912 345 678" and an["Phone"].data_type == "s"


def test_text_channels_export_the_rendered_text(english):
    channel = ChannelFactory(kind="sms", official_account=None)
    template = TemplateFactory(
        account=channel.account,
        channel_kind="sms",
        body="Chao {{customer_name}}, don {{order_code}}",
    )
    campaign = CampaignFactory(channel=channel, template=template)
    contact = ContactFactory(phone="84912000111", name="Binh", attributes={"order": "DH-7"})
    Message.objects.bulk_create(
        [
            message_for(
                campaign,
                contact,
                status=Message.Status.SENT,
                template_data={"customer_name": "Binh", "order_code": "DH-7"},
                sent_at=SENT,
            )
        ]
    )
    header, row = csv_table(campaign)
    assert by_header(header, row)["Content"] == "Chao Binh, don DH-7"
    _n, sheet = xlsx_sheet(campaign)
    xrows = [[c.value for c in r] for r in sheet.iter_rows()]
    assert xrows[0] == header
    assert by_header(header, xrows[1])["Content"] == "Chao Binh, don DH-7"


def test_the_admin_serves_both_in_the_requests_language(client, marketer, zns_campaign):
    # Vietnamese by default: the request's language, not the server's.
    r = client.get(reverse("admin:campaigns_campaign_export", args=[zns_campaign.pk]))
    text = b"".join(r.streaming_content).decode("utf-8-sig")
    assert text.splitlines()[0].startswith("Số điện thoại,")
    assert "Đã nhận" in text
    client.cookies["django_language"] = "en"
    r = client.get(reverse("admin:campaigns_campaign_export_xlsx", args=[zns_campaign.pk]))
    body = b"".join(r.streaming_content) if r.streaming else r.content
    sheet = load_workbook(io.BytesIO(body)).active
    assert next(sheet.iter_rows(values_only=True))[0] == "Phone"
