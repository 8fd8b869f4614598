"""Issue 19 in a real browser: a marketer adds a fallback step (SMS) to a ZNS draft in the
wizard (channel and triggers, message, parameters, the per-recipient check), sends it, and
reads the funnel per step on the campaign page. Sandbox provider: its ZNS fails some numbers
with Zalo's "cannot reach" codes (-118, -114, -139, -108), which fall back to its SMS.
Screenshots: docs/screenshots/fallback-wizard.png, docs/screenshots/fallback-funnel.png."""

import re

import pytest
from django.utils import timezone

from campaigns.engine.fallback import campaign_fall_back
from campaigns.engine.scheduler import campaigns_kick_running
from campaigns.models import Campaign, FallbackStep, Message
from providers.models import Channel
from providers.sandbox.outbox import SandboxCallback
from tests.browser.conftest import ensure_roles, login, shot
from tests.conftest import wait_for
from tests.factories import (
    CampaignFactory,
    ChannelFactory,
    ContactListFactory,
    ProviderAccountFactory,
    TemplateFactory,
    UserFactory,
)
from webhooks.models import WebhookEvent
from webhooks.services import sandbox_callbacks_deliver

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _callbacks() -> None:
    SandboxCallback.objects.update(due_at=timezone.now())
    sandbox_callbacks_deliver(limit=100_000)


def test_a_marketer_builds_a_chain_and_reads_the_step_funnel(page, qcluster):
    ensure_roles()
    UserFactory(username="lan", groups=["Marketer"])
    zns = ChannelFactory(name="Zalo OA Cửa hàng")  # the sandbox provider
    Channel.objects.create(name="SMS Brandname", account=zns.account, kind="sms")
    template = TemplateFactory(
        account=zns.account, official_account=zns.official_account, name="Xác nhận đơn hàng"
    )
    campaign = CampaignFactory(
        name="Đơn hàng tháng 12",
        channel=zns,
        template=template,
        lists=[ContactListFactory(size=120)],
    )
    login(page, "lan")
    page.goto(f"/admin/campaigns/campaign/{campaign.pk}/wizard/5/")
    page.click("#fallback-add")

    # 1. channel and when to fall back
    page.select_option("#id_channel", label="SMS Brandname")
    assert page.is_checked("#id_on_unreachable")
    page.fill("#id_receipt_minutes", "30")
    page.click("#fallback-channel-save")
    # 2. the message, 3. its parameters
    page.fill("#id_fb-content", "Chào {{ten}}, đơn {{ma}} đã giao.")
    page.click("#fallback-message-save")
    page.select_option("#id_fm-p0_source", "field")
    page.fill("#id_fm-p0_value", "name")
    page.select_option("#id_fm-p1_source", "attribute")
    page.fill("#id_fm-p1_value", "order")
    page.click("#fallback-mapping-save")
    check = page.text_content("#fallback-check")
    assert "This channel reaches every recipient" in check
    assert "Every parameter has a source" in check
    shot(page, "fallback-wizard")
    step = FallbackStep.objects.get(campaign=campaign)
    assert step.param_mapping["ten"] == {"source": "field", "value": "name"}

    # back to the review: the chain and the expected share (a default: no earlier campaign)
    page.click("#fallback-back")
    assert "SMS Brandname" in page.text_content("#fallback-chain-step-1")
    assert "a default" in page.text_content("#fallback-estimate")
    cluster = qcluster(Q_WORKERS="2", LOA_SANDBOX_CALLBACK_DELAY="0")
    page.click("#wizard-send-now")
    page.wait_for_selector("#loa-stats")
    first = Message.objects.filter(campaign=campaign, step=0)
    assert wait_for(lambda: not first.filter(status__in=["pending", "sending"]).exists(), 90), (
        cluster.output()
    )

    # the sandbox's receipts arrive; its "cannot reach" failures fall back to the SMS step
    # (the every-minute tick's sweep, run here rather than waited for)
    settled = WebhookEvent.objects.filter(outcome=WebhookEvent.Outcome.RECEIVED)

    def fell_back() -> int:
        _callbacks()  # the sandbox's callbacks are written after each batch: deliver them all
        wait_for(lambda: not settled.exists(), 30)
        return campaign_fall_back(campaign_id=campaign.pk)

    assert wait_for(fell_back, 60), cluster.output()
    campaigns_kick_running(idle_seconds=0)
    second = Message.objects.filter(campaign=campaign, step=1)
    assert wait_for(lambda: not second.filter(status__in=["pending", "sending"]).exists(), 90), (
        cluster.output()
    )
    _callbacks()
    assert wait_for(lambda: not settled.exists(), 60), cluster.output()

    page.reload()
    funnel = page.locator("#fallback-funnel")
    assert funnel.is_visible()
    rows = Message.objects.filter(campaign=campaign)
    n = rows.filter(step=0).count()
    fell = rows.filter(step=1).count()
    assert fell > 0  # the sandbox fails ~6% of numbers with "cannot reach" codes
    delivered0 = rows.filter(step=0, status__in=["delivered", "read"]).count()
    delivered1 = rows.filter(step=1, status__in=["delivered", "read"]).count()

    def cell(row: str, css: str) -> tuple[int, str]:
        text = page.text_content(f"#funnel-step-{row} {css}")
        m = re.match(r"\s*([\d,.]+)\s*\(([\d.,]+%)\)", text)
        return int(m[1].replace(",", "").replace(".", "")), m[2]

    assert cell("0", ".funnel-delivered")[0] == delivered0
    assert cell("0", ".funnel-fell-back")[0] == fell
    assert cell("1", ".funnel-delivered")[0] == delivered1
    assert "SMS Brandname" in page.text_content("#funnel-cost-by-channel")
    shot(page, "fallback-funnel")
    assert Campaign.objects.get(pk=campaign.pk).status in ("settling", "completed")
    assert n == 120


def test_a_marketer_chooses_the_providers_own_fallback(page):
    """Where the ZNS channel's provider has its own ZNS-to-SMS fallback (eTelecom), the wizard
    offers it for an SMS step, says it is built from the reference notes, not from the seeds,
    and the campaign page's funnel marks the step so."""
    ensure_roles()
    UserFactory(username="lan", groups=["Marketer"])
    account = ProviderAccountFactory(
        kind="etelecom",
        base_url="https://api.etelecom.vn/v1/shop",
        secrets={"api_key": "shop-key"},
        settings={"sms_brandname": "LOA"},
    )
    zns = ChannelFactory(name="Zalo OA eTelecom", account=account)
    Channel.objects.create(name="SMS Brandname", account=ChannelFactory().account, kind="sms")
    template = TemplateFactory(
        account=account, official_account=zns.official_account, name="Xác nhận đơn hàng"
    )
    campaign = CampaignFactory(
        name="Đơn hàng (eTelecom)",
        channel=zns,
        template=template,
        lists=[ContactListFactory(size=5)],
    )
    login(page, "lan")
    page.goto(f"/admin/campaigns/campaign/{campaign.pk}/wizard/fallback/1/")
    assert "not from the seeds" in page.text_content("#fallback-native")
    page.select_option("#id_channel", label="SMS Brandname")
    page.check("input[name=mode][value=provider]")
    page.click("#fallback-channel-save")
    assert "not from the seeds" in page.text_content("#fallback-native-chosen")
    page.fill("#id_fb-content", "Chào {{ten}}, đơn của bạn đã giao.")
    page.click("#fallback-message-save")
    page.select_option("#id_fm-p0_source", "field")
    page.fill("#id_fm-p0_value", "name")
    page.click("#fallback-mapping-save")
    step = FallbackStep.objects.get(campaign=campaign)
    assert step.mode == FallbackStep.Mode.PROVIDER
    assert step.content.startswith("Chào")
    assert not page.locator("#fallback-add-second").count()  # the provider's SMS is the last
    shot(page, "fallback-native-wizard")
    page.click("#fallback-back")  # the review says how the step goes, and offers no other
    assert "not from the seeds" in page.text_content("#fallback-chain-step-1")
    assert not page.locator("#fallback-add").count()
