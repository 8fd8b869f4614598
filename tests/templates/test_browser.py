"""The template pages in a real browser: preview a template with a campaign's failing recipient,
carry the values to the test-send form, send through the sandbox, and see the validation summary
partial with its failing rows. Screenshots go to docs/screenshots/."""

import pytest
from django.urls import reverse

from campaigns.engine.validation import campaign_validation_summary
from campaigns.models import ContactList, ContactListMembership
from templates_app.models import TemplateParam
from tests.browser.conftest import browser, login, page, shot  # noqa: F401  (fixtures)
from tests.factories import (
    CampaignFactory,
    ChannelFactory,
    ContactFactory,
    TemplateFactory,
    UserFactory,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
T = TemplateParam.Type


def test_preview_failing_recipient_then_test_send(page, live_server):  # noqa: F811
    UserFactory(username="boss", is_superuser=True)
    channel = ChannelFactory(name="Zalo sandbox")
    template = TemplateFactory(
        account=channel.account,
        name="Xác nhận đơn",
        params=[],
        body="Xin chào <customer_name>, đơn <order_code> trị giá <amount> đ đã xác nhận.",
    )
    for i, (name, ptype, max_length) in enumerate(
        [
            ("customer_name", T.CUSTOMER_NAME, 30),
            ("order_code", T.CODE, 10),
            ("amount", T.AMOUNT, None),
        ]
    ):
        TemplateParam.objects.create(
            template=template, name=name, param_type=ptype, max_length=max_length, position=i
        )
    campaign = CampaignFactory(
        name="Tháng 8",
        channel=channel,
        template=template,
        param_mapping={
            "customer_name": {"source": "field", "value": "name", "format": "trim"},
            "order_code": {"source": "column", "value": "Mã đơn"},
            "amount": {"source": "attribute", "value": "total", "format": "amount"},
        },
    )
    clist = ContactList.objects.create(name="Khách tháng 8")
    people = [
        ContactFactory(name="Lan", attributes={"Mã đơn": "DH1", "total": "1500000"}),
        ContactFactory(
            name="Trần Thị Bích Ngọc Hoàng Anh Thư", attributes={"Mã đơn": "DH2", "total": "99"}
        ),
        ContactFactory(name="Minh", attributes={"total": "5"}),
    ]
    for c in people:
        ContactListMembership.objects.create(contact_list=clist, contact=c)
    campaign.lists.add(clist)

    login(page, "boss")
    page.goto(reverse("admin:templates_app_template_change", args=[template.pk]))
    preview = page.locator("#template-preview")
    assert "Xin chào Lan, đơn DH1 trị giá 1.500.000 đ đã xác nhận." in preview.inner_text()

    page.select_option("#preview-pick", "failing")
    page.click("#template-preview-form input[type=submit]")
    page.wait_for_selector("#preview-params .loa-param-bad")
    bad_rows = page.locator("#preview-params .loa-param-bad")
    assert bad_rows.count() == 1
    assert "customer_name" in bad_rows.first.inner_text()
    shot(page, "template-preview-failing")

    page.click("#preview-test-send")
    page.wait_for_selector("#test-send-form")
    assert page.input_value("#id_p_1") == "DH2"
    page.fill("#id_p_0", "Trần Thị Bích Ngọc")  # fix the value that was too long
    page.fill("#id_phone", "0901888484")
    page.click("#test-send-submit")
    result = page.locator("#test-send-result")
    result.wait_for()
    assert "loa-result-ok" in result.get_attribute("class")
    assert "test mode" in result.inner_text()
    shot(page, "template-test-send")

    summary = campaign_validation_summary(campaign=campaign)
    assert (summary["ok"], summary["failing"]) == (1, 2)
