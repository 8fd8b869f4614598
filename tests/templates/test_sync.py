"""Template sync from each provider's list_templates answer (fixtures in tests/fixtures/templates)."""

from decimal import Decimal

import pytest
from django_q.models import Schedule

from campaigns.models import Campaign, CampaignEvent
from providers.base import ErrorClass, ProviderError
from templates_app import sync, tasks
from templates_app.models import Template, TemplateParam
from tests.factories import (
    CampaignFactory,
    ContactListFactory,
    OfficialAccountFactory,
    ProviderAccountFactory,
    TemplateFactory,
)
from tests.templates.conftest import load_fixture

pytestmark = pytest.mark.django_db
T = TemplateParam.Type


def _account_with_oa(oa_id="4097311281936189049"):
    account = ProviderAccountFactory()
    oa = OfficialAccountFactory(account=account, oa_id=oa_id)
    return account, oa


def _synced_etelecom(fake_templates):
    """An account whose OA's templates came in once from eTelecom's list (the docs' fixture):
    the account, the OA, and the list's items (change them to change the next sync)."""
    account, oa = _account_with_oa()
    items = load_fixture("etelecom_list_templates.json")["templates"]
    fake_templates.answers[oa.oa_id] = items
    sync.templates_sync(account=account)
    return account, oa, items


def _params(template):
    return list(
        template.params.values_list(
            "name",
            "param_type",
            "provider_type",
            "required",
            "min_length",
            "max_length",
            "position",
        )
    )


def test_etelecom_list_templates(fake_templates):
    account, oa = _account_with_oa()
    fixture = load_fixture("etelecom_list_templates.json")
    fake_templates.answers[oa.oa_id] = fixture["templates"]

    report = sync.templates_sync(account=account)

    assert report.ok, report.errors
    assert (report.seen, report.created, report.updated) == (2, 2, 0)
    assert fake_templates.calls == [oa.oa_id]
    order = Template.objects.get(account=account, provider_template_id="231677")
    assert order.name == "Xác nhận đơn hàng"
    assert order.status == Template.Status.APPROVED
    assert order.tag == Template.Tag.TRANSACTION
    assert order.price == Decimal("300")
    assert order.official_account == oa
    assert order.synced_at is not None and order.status_changed_at is not None
    assert order.preview_url.startswith("https://account.zalo.cloud/znspreview/")
    assert _params(order) == [
        ("customer_name", T.CUSTOMER_NAME, "CUSTOMER_NAME", True, 0, 30, 0),
        ("order_code", T.CODE, "CODE", True, 0, 30, 1),
        ("amount", T.AMOUNT, "QUANTITY", True, 0, 20, 2),
        ("order_time", T.TIME, "TIME", True, 0, 20, 3),
    ]
    promo = Template.objects.get(account=account, provider_template_id="231700")
    assert promo.status == Template.Status.DISABLED
    assert promo.status_reason == "Template quality is low"
    assert promo.tag == Template.Tag.PROMOTION
    assert promo.buttons[0]["title"] == "Xem ngay"
    assert report.newly_unusable == ["Khuyến mãi tháng 8"]


def test_esms_get_template_keeps_param_level_order_and_limits(fake_templates):
    account, oa = _account_with_oa()
    fake_templates.answers[oa.oa_id] = load_fixture("esms_get_template.json")["templates"]

    report = sync.templates_sync(account=account)

    assert report.ok and report.created == 2
    payment = Template.objects.get(provider_template_id="200607")
    # ZNSTempDetail listed out of order; ParamLevel decides (eSMS V4 sends params by position).
    assert payment.ordered_param_names() == (
        "customer_name",
        "order_code",
        "payment_amount",
        "delivery_date",
        "link",
    )
    types = dict(payment.params.values_list("name", "param_type"))
    assert types == {
        "customer_name": T.TEXT,
        "order_code": T.TEXT,
        "payment_amount": T.DIGITS,  # type_number: digits only, <= 12
        "delivery_date": T.DATE,  # type_date: dd/MM/yyyy
        "link": T.URL,  # type_cta_url
    }
    assert payment.params.get(name="payment_amount").max_length == 12
    assert [p.position for p in payment.params.all()] == [0, 1, 2, 3, 4]
    otp = Template.objects.get(provider_template_id="205644")
    # TempContent is styled HTML: the preview keeps its text and placeholders.
    assert "<div" not in otp.body and "style=" not in otp.body
    assert "Mã OTP của bạn là" in otp.body and "{{otp}}" in otp.body
    assert otp.price == 0  # price None from the provider: unknown, the model default
    assert otp.params.get().max_length == 10


def test_esms_zns_template_info(fake_templates):
    account, oa = _account_with_oa()
    fake_templates.answers[oa.oa_id] = load_fixture("esms_zns_template_info.json")["templates"]

    sync.templates_sync(account=account)

    t = Template.objects.get(provider_template_id="267247")
    assert t.status == Template.Status.APPROVED
    assert t.status_reason == "Template đã được duyệt"
    assert t.buttons == [
        {"Content": "https://oa.zalo.me/4097311281936189049", "Title": "Quan tâm OA", "Type": 2}
    ]
    assert _params(t)[0] == ("customer_name", T.TEXT, "STRING", True, 0, 100, 0)
    assert t.ordered_param_names() == ("customer_name", "product_name", "order_code", "date")


def test_mmp_approved_list_without_oa(fake_templates):
    account = ProviderAccountFactory()  # MMP: no Zalo OA, one call with oa_id=""
    fake_templates.answers[""] = load_fixture("mmp_approved_templates.json")["templates"]

    report = sync.templates_sync(account=account)

    assert fake_templates.calls == [""]
    t = Template.objects.get(account=account)
    assert report.created == 1
    assert t.channel_kind == "viber"
    assert t.official_account is None
    assert t.tag == Template.Tag.CUSTOMER_CARE
    assert t.price == Decimal("250.5")
    assert _params(t) == [
        ("name", T.TEXT, "text", True, 0, None, 0),
        ("order", T.TEXT, "text", True, 0, 40, 1),
    ]


def test_resync_updates_reorders_and_removes_params(fake_templates):
    account, oa, items = _synced_etelecom(fake_templates)
    t = Template.objects.get(provider_template_id="231677")
    kept_pk = t.params.get(name="order_code").pk

    item = items[0]
    item["name"] = "Xác nhận đơn hàng v2"
    item["params"] = [
        {"name": "order_code", "type": "CODE", "required": True, "max_length": 20, "position": 0},
        {
            "name": "customer_name",
            "type": "CUSTOMER_NAME",
            "required": True,
            "max_length": 30,
            "position": 1,
        },
        {"name": "shop", "type": "STRING", "required": False, "max_length": 50, "position": 2},
    ]
    report = sync.templates_sync(account=account)

    t.refresh_from_db()
    assert report.created == 0 and report.updated >= 1
    assert t.name == "Xác nhận đơn hàng v2"
    assert t.ordered_param_names() == ("order_code", "customer_name", "shop")
    assert t.params.get(name="order_code").pk == kept_pk  # updated in place
    assert t.params.get(name="order_code").max_length == 20
    assert not t.params.filter(name__in=["amount", "order_time"]).exists()
    assert t.params.get(name="shop").required is False


def test_unchanged_resync_reports_no_updates(fake_templates):
    account, oa = _account_with_oa()
    fake_templates.answers[oa.oa_id] = load_fixture("esms_get_template.json")["templates"]
    sync.templates_sync(account=account)
    report = sync.templates_sync(account=account)
    assert (report.created, report.updated, report.seen) == (0, 0, 2)


def test_vanished_templates_are_marked_deleted_but_hand_entered_are_kept(fake_templates):
    account, oa, items = _synced_etelecom(fake_templates)
    manual = TemplateFactory(account=account, provider_template_id="manual-1")  # never synced

    fake_templates.answers[oa.oa_id] = items[1:]
    report = sync.templates_sync(account=account)

    gone = Template.objects.get(provider_template_id="231677")
    assert gone.status == Template.Status.DELETED
    assert "No longer listed" in gone.status_reason
    assert report.marked_deleted == ["Xác nhận đơn hàng"]
    manual.refresh_from_db()
    assert manual.status == Template.Status.APPROVED


def test_empty_or_failed_answers_delete_nothing(fake_templates):
    account, oa = _account_with_oa()
    other = OfficialAccountFactory(account=account, oa_id="999")
    fake_templates.answers[oa.oa_id] = load_fixture("etelecom_list_templates.json")["templates"]
    sync.templates_sync(account=account)

    fake_templates.answers[oa.oa_id] = []
    report = sync.templates_sync(account=account)
    assert report.marked_deleted == [] and report.warnings
    assert Template.objects.get(provider_template_id="231677").status == Template.Status.APPROVED

    fake_templates.answers[oa.oa_id] = ProviderError(ErrorClass.RETRYABLE, "http_503", "down")
    fake_templates.answers[other.oa_id] = load_fixture("esms_get_template.json")["templates"]
    report = sync.templates_sync(account=account)
    assert not report.ok and "999" not in report.errors[0] and oa.oa_id in report.errors[0]
    assert report.created == 2  # the other OA still synced
    assert report.marked_deleted == []
    assert Template.objects.get(provider_template_id="231677").status == Template.Status.APPROVED


def test_malformed_item_is_reported_and_others_saved(fake_templates):
    account, oa = _account_with_oa()
    good = load_fixture("esms_zns_template_info.json")["templates"][0]
    fake_templates.answers[oa.oa_id] = [{"name": "no id"}, "junk", good]
    report = sync.templates_sync(account=account)
    assert len(report.errors) == 2
    assert Template.objects.filter(provider_template_id="267247").exists()


def test_provider_without_template_list():
    account = ProviderAccountFactory()  # the sandbox lists nothing unless patched
    report = sync.templates_sync(account=account)
    assert not report.ok and "by hand" in report.errors[0]


def test_disabled_template_pauses_running_campaign(fake_templates):
    account, oa, items = _synced_etelecom(fake_templates)
    template = Template.objects.get(provider_template_id="231677")
    running = CampaignFactory(
        channel__account=account, template=template, status=Campaign.Status.RUNNING
    )
    running.lists.add(ContactListFactory(size=2))
    scheduled = CampaignFactory(
        channel__account=account, template=template, status=Campaign.Status.SCHEDULED
    )
    draft = CampaignFactory(channel__account=account, template=template)

    items[0]["status"] = "disabled"
    items[0]["status_reason"] = "Nội dung vi phạm chính sách"
    report = sync.templates_sync(account=account)

    running.refresh_from_db()
    assert running.status == Campaign.Status.PAUSED
    assert "Xác nhận đơn hàng" in running.status_reason
    assert "Nội dung vi phạm chính sách" in running.status_reason
    event = CampaignEvent.objects.filter(campaign=running).last()
    assert (event.from_status, event.to_status) == ("running", "paused")
    assert (running.pk, running.name) in report.acted_on("paused_campaigns")
    assert report.newly_unusable == ["Xác nhận đơn hàng"]
    scheduled.refresh_from_db()
    # Paused if the engine allows scheduled -> paused; otherwise reported (and its pre-flight
    # refuses a template that is not approved, so it cannot start).
    assert scheduled.status == Campaign.Status.PAUSED or (
        (scheduled.pk, scheduled.name) in report.acted_on("blocked_campaigns")
    )
    draft.refresh_from_db()
    assert draft.status == Campaign.Status.DRAFT
    assert "Paused campaigns" in report.message()


def test_deleted_template_pauses_campaign_on_next_sync(fake_templates):
    account, oa, items = _synced_etelecom(fake_templates)
    template = Template.objects.get(provider_template_id="231677")
    running = CampaignFactory(
        channel__account=account, template=template, status=Campaign.Status.RUNNING
    )
    fake_templates.answers[oa.oa_id] = items[1:]  # gone from the provider
    report = sync.templates_sync(account=account)
    running.refresh_from_db()
    assert running.status == Campaign.Status.PAUSED
    assert report.acted_on("paused_campaigns") == [(running.pk, running.name)]


def test_status_aliases_and_unknown_status_is_not_sendable(fake_templates):
    account = ProviderAccountFactory()
    fake_templates.answers[""] = [
        {"template_id": "1", "name": "a", "status": "ENABLE", "tag": "PROMOTION", "params": []},
        {"template_id": "2", "name": "b", "status": "PENDING_REVIEW", "params": []},
        {"template_id": "3", "name": "c", "status": "weird", "params": []},
    ]
    sync.templates_sync(account=account)
    got = dict(Template.objects.values_list("provider_template_id", "status"))
    assert got == {"1": "approved", "2": "pending", "3": "pending"}
    assert Template.objects.get(provider_template_id="1").tag == "promotion"


def test_daily_task_syncs_accounts_that_list_templates(fake_templates):
    account, oa = _account_with_oa()
    inactive = ProviderAccountFactory(is_active=False)
    fake_templates.answers[oa.oa_id] = load_fixture("esms_zns_template_info.json")["templates"]
    result = tasks.templates_sync_all_task()
    assert [r["account"] for r in result] == [account.name]
    assert result[0]["created"] == 1
    assert not Template.objects.filter(account=inactive).exists()


def test_daily_schedule_created_by_migration():
    schedule = Schedule.objects.get(func="templates_app.tasks.templates_sync_all_task")
    assert schedule.schedule_type == Schedule.DAILY
    assert schedule.repeats == -1


def test_html_body_keeps_angle_placeholders(fake_templates):
    account = ProviderAccountFactory()
    fake_templates.answers[""] = [
        {
            "template_id": "9",
            "name": "html",
            "status": "approved",
            "body": "<p>Chào <b><customer_name></b>,</p><p>đơn <order_code></p>",
            "params": [{"name": "customer_name"}, {"name": "order_code"}],
        }
    ]
    sync.templates_sync(account=account)
    assert Template.objects.get().body == "Chào {{customer_name}},\n\nđơn {{order_code}}"


def test_unknown_provider_kind_is_reported():
    account = ProviderAccountFactory()
    type(account).objects.filter(pk=account.pk).update(kind="gone")
    account.refresh_from_db()
    report = sync.templates_sync(account=account)
    assert not report.ok
