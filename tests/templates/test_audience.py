"""Validation of a mapping against a whole audience (campaigns.engine.validation), the CSV report,
preview (templates_app.preview) and contact picks."""

import csv
import io

import pytest
from django.utils import translation

from campaigns.engine import validation
from campaigns.engine.validation import contact_data
from campaigns.models import Contact, ContactList, ContactListMembership, OptOut
from providers.models import ChannelKind
from templates_app.models import Template, TemplateParam
from templates_app.params import template_params_from_body
from templates_app.preview import template_preview
from templates_app.rendering import ContactData
from templates_app.validation import validate_recipient
from tests.factories import CampaignFactory, ContactFactory, ContactListFactory, TemplateFactory

pytestmark = pytest.mark.django_db
T = TemplateParam.Type


def _campaign_with(contacts: list[dict], *, mapping=None, params=None, **kwargs):
    template = TemplateFactory(params=[], body="Chào <customer_name>, đơn <order_code> <amount>")
    for i, (name, ptype, max_length) in enumerate(
        params
        or [
            ("customer_name", T.CUSTOMER_NAME, None),
            ("order_code", T.CODE, 10),
            ("amount", T.AMOUNT, None),
        ]
    ):
        TemplateParam.objects.create(
            template=template, name=name, param_type=ptype, max_length=max_length, position=i
        )
    campaign = CampaignFactory(
        template=template,
        channel__account=template.account,
        param_mapping=mapping
        or {
            "customer_name": {"source": "field", "value": "name", "format": "trim"},
            "order_code": {"source": "column", "value": "Mã đơn"},
            "amount": {"source": "attribute", "value": "total", "format": "amount"},
        },
        **kwargs,
    )
    clist = ContactList.objects.create(name=f"audience {campaign.pk}")
    objs = [
        Contact(phone=f"8490{i:07d}", name=c.get("name", ""), attributes=c.get("attributes", {}))
        for i, c in enumerate(contacts)
    ]
    Contact.objects.bulk_create(objs)
    ContactListMembership.objects.bulk_create(
        [
            ContactListMembership(contact_list=clist, contact=c)
            for c in Contact.objects.filter(phone__in=[o.phone for o in objs])
        ]
    )
    campaign.lists.add(clist)
    return campaign


GOOD = {"name": "Nguyễn An", "attributes": {"Mã đơn": "DH1", "total": "150000"}}


def test_summary_counts_and_groups_reasons():
    contacts = [GOOD] * 5 + [
        {"name": "N" * 31, "attributes": {"Mã đơn": "DH2", "total": "1"}},  # name too long
        {"name": "Bình", "attributes": {"total": "1"}},  # order code missing
        {"name": "", "attributes": {"Mã đơn": "X" * 11, "total": "abc"}},  # 3 problems
    ]
    campaign = _campaign_with(contacts)

    summary = validation.audience_validate(campaign=campaign, collect_failing_ids=True)

    assert (summary.total, summary.ok, summary.failing) == (8, 5, 3)
    reasons = {(r["param"], r["code"]): r["count"] for r in summary.reason_rows()}
    assert reasons == {
        ("customer_name", "too_long"): 1,
        ("customer_name", "missing"): 1,
        ("order_code", "missing"): 1,
        ("order_code", "too_long"): 1,
        ("amount", "format"): 1,
    }
    assert len(summary.samples) == 5
    sample = next(s for s in summary.samples if s["param"] == "order_code" and s["value"])
    assert sample["value"] == "X" * 11 and "10" in sample["reason"]
    failing_phones = set(
        Contact.objects.filter(pk__in=summary.failing_ids).values_list("name", flat=True)
    )
    assert failing_phones == {"N" * 31, "Bình", ""}
    assert summary.mapping_errors == []
    assert sorted(validation.audience_failing_contact_ids(campaign=campaign)) == sorted(
        summary.failing_ids
    )


def test_selector_summary_shape_and_sample_limit():
    campaign = _campaign_with([{"name": "N" * 40, "attributes": {}}] * 30)
    got = validation.campaign_validation_summary(campaign=campaign)
    assert set(got) == {
        "total",
        "ok",
        "failing",
        "reasons",
        "samples",
        "mapping_errors",
        "seconds",
        # recipients the channel cannot reach, per country (campaigns.engine.reach)
        "unreachable",
        "unreachable_by_country",
    }
    assert (got["unreachable"], got["unreachable_by_country"]) == (0, {})
    assert (got["total"], got["ok"], got["failing"]) == (30, 0, 30)
    assert len(got["samples"]) == 20
    assert set(got["samples"][0]) == {"contact_id", "phone", "name", "param", "value", "reason"}
    assert got["reasons"][0]["count"] == 30


def test_unmapped_param_is_a_mapping_error_and_fails_everyone():
    campaign = _campaign_with(
        [GOOD] * 3,
        mapping={
            "customer_name": {"source": "field", "value": "name"},
            "amount": {"source": "constant", "value": "1.000"},
        },
    )
    summary = validation.audience_validate(campaign=campaign)
    assert any("order_code" in e for e in summary.mapping_errors)
    assert summary.failing == 3


def test_opted_out_contacts_are_not_validated():
    campaign = _campaign_with(
        [GOOD, {"name": "N" * 31, "attributes": {"Mã đơn": "A", "total": "1"}}]
    )
    bad = Contact.objects.get(name="N" * 31)
    OptOut.objects.create(contact=bad, channel_kind=ChannelKind.ZALO_ZNS)
    summary = validation.audience_validate(campaign=campaign)
    assert (summary.total, summary.failing) == (1, 0)


def test_contact_in_two_lists_is_counted_once():
    campaign = _campaign_with([GOOD])
    second = ContactListFactory()
    ContactListMembership.objects.create(contact_list=second, contact=Contact.objects.get())
    campaign.lists.add(second)
    assert validation.audience_validate(campaign=campaign).total == 1


def test_report_csv_is_formula_safe_and_complete():
    contacts = [
        GOOD,
        {
            "name": '=HYPERLINK("http://evil")' + "x" * 30,
            "attributes": {"Mã đơn": "+cmd" + "x" * 10, "total": "-1"},
        },
        {"name": "", "attributes": {"Mã đơn": "@SUM(A1)", "total": "1"}},
    ]
    campaign = _campaign_with(contacts)
    with translation.override("en"):
        text = "".join(validation.campaign_validation_report_rows(campaign=campaign))
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows[0] == [
        "contact id",
        "phone",
        "phone (local)",
        "name",
        "parameter",
        "value",
        "reason",
    ]
    body = rows[1:]
    assert len(body) == 3  # name and order code too long; name missing
    for row in body:
        for cell in row:
            assert not cell or cell[0] not in "=+-@\t\r", row
    # the stored phone, then its local form
    assert {(r[1], r[2]) for r in body} == {
        ("84900000001", "0900 000 001"),
        ("84900000002", "0900 000 002"),
    }
    assert any(r[4] == "customer_name" and r[5].startswith("'=HYPERLINK") for r in body)
    assert any(r[4] == "order_code" and r[5].startswith("'+cmd") for r in body)


def test_report_streams_in_chunks():
    campaign = _campaign_with([{"name": "", "attributes": {}}] * 1200)
    chunks = list(validation.campaign_validation_report_rows(campaign=campaign))
    assert len(chunks) > 3  # header + several flushes: streamed, not one big string
    lines = "".join(chunks).strip().splitlines()
    assert len(lines) == 1 + 1200 * 3


def test_template_preview_for_campaign_and_contact():
    campaign = _campaign_with(
        [GOOD, {"name": "N" * 31, "attributes": {"Mã đơn": "DH2", "total": "2500000"}}]
    )
    good = Contact.objects.get(name="Nguyễn An")
    preview = template_preview(
        template=campaign.template, mapping=campaign.param_mapping, contact=contact_data(good)
    )
    assert preview["text"] == "Chào Nguyễn An, đơn DH1 150.000"
    assert preview["data"] == {
        "customer_name": "Nguyễn An",
        "order_code": "DH1",
        "amount": "150.000",
    }
    assert preview["errors"] == {}
    bad = Contact.objects.get(name="N" * 31)
    preview = template_preview(
        template=campaign.template, mapping=campaign.param_mapping, contact=contact_data(bad)
    )
    assert set(preview["errors"]) == {"customer_name"}
    assert preview["contact"]["phone"] == bad.phone


def test_template_preview_with_template_and_suggested_mapping():
    template = TemplateFactory(params=[], body="Chào {{customer_name}} {{order}}")
    TemplateParam.objects.create(
        template=template, name="customer_name", param_type=T.CUSTOMER_NAME, position=0
    )
    TemplateParam.objects.create(template=template, name="order", param_type=T.CODE, position=1)
    contact = ContactFactory(name="Lan", attributes={"order": "DH9"})
    preview = template_preview(
        template=template, contact={"name": contact.name, "attributes": contact.attributes}
    )
    assert preview["text"] == "Chào Lan DH9"
    assert preview["mapping"]["order"] == {"source": "column", "value": "order"}
    empty = template_preview(template=template, contact=None)
    assert set(empty["errors"]) == {"customer_name", "order"}


def test_preview_of_sms_and_email_content_templates():
    sms = TemplateFactory(
        params=[],
        channel_kind=ChannelKind.SMS,
        body="Chào {{name}}, đơn {{code}} đã giao.",
        strip_diacritics=True,
    )
    contact = ContactFactory(name="Ánh", attributes={"code": "D1"})
    mapping = {
        "name": {"source": "field", "value": "name"},
        "code": {"source": "attribute", "value": "code"},
    }
    preview = template_preview(template=sms, contact=contact_data(contact), mapping=mapping)
    assert preview["text"] == "Chao Anh, don D1 da giao."
    assert preview["sms"]["encoding"] == "GSM-7" and preview["sms"]["segments"] == 1
    email = TemplateFactory(
        params=[],
        channel_kind=ChannelKind.EMAIL,
        subject="Đơn {{code}}",
        body="<p onclick='x'>Chào {{name}}</p>",
    )
    preview = template_preview(template=email, contact=contact_data(contact), mapping=mapping)
    assert preview["subject"] == "Đơn D1"
    assert preview["html"] == "<p>Chào Ánh</p>"
    assert preview["text"] == "Chào Ánh"


def test_free_content_campaign_params_from_placeholders():
    campaign = _campaign_with([GOOD], mapping={"name": {"source": "field", "value": "name"}})
    campaign.template = None
    campaign.content = "Chào {{name}}, mã {{code}}"
    campaign.save()
    summary = validation.audience_validate(campaign=campaign)
    assert summary.failing == 1
    assert summary.reason_rows()[0]["param"] == "code"


def test_template_params_from_body():
    t = TemplateFactory(
        params=["name"],
        channel_kind=ChannelKind.EMAIL,
        subject="{{code}}",
        body="{{name}} {{city}}",
    )
    assert template_params_from_body(template=t) == 2
    assert t.ordered_param_names() == ("name", "code", "city")
    assert template_params_from_body(template=t) == 0
    zns = TemplateFactory(params=[], body="{{x}}")
    assert template_params_from_body(template=zns) == 0


def test_pick_contacts():
    campaign = _campaign_with(
        [
            GOOD,
            {"name": "Trần Thị Bích Ngọc", "attributes": {"Mã đơn": "DH222", "total": "2500000"}},
            {"name": "An", "attributes": {"total": "1"}},  # fails: order code missing
        ]
    )
    assert validation.audience_pick_contact(campaign=campaign, pick="first").name == "Nguyễn An"
    assert (
        validation.audience_pick_contact(campaign=campaign, pick="longest").name
        == "Trần Thị Bích Ngọc"
    )
    assert validation.audience_pick_contact(campaign=campaign, pick="failing").name == "An"
    assert validation.preview_contact_pick(phone="0900000001").name == "Trần Thị Bích Ngọc"
    assert validation.preview_contact_pick(phone="garbage") is None


def test_validate_recipient_matches_summary():
    campaign = _campaign_with([GOOD])
    params = list(campaign.template.params.all())
    errors = validate_recipient(
        campaign.param_mapping,
        params,
        ContactData(phone="84900000000", name="", attributes={"total": "x"}),
    )
    assert set(errors) == {"customer_name", "order_code", "amount"}
    assert Template.objects.count() == 1
