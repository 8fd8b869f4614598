"""Issue 17, item 8, as a marketer sees it in Vietnamese in a real browser with a real qcluster
worker: the review step sets the speed and says when the send finishes; once sending, the
campaign's page is read-only (no field, no Save button), keeps its actions, and a forged POST to
it changes nothing. Screenshots: docs/screenshots/speed-review.png, speed-readonly.png."""

import re
from pathlib import Path

import pytest
from django.utils import translation
from django.utils.translation import gettext

from campaigns.engine.lifecycle import campaign_cancel
from campaigns.models import Campaign
from tests.browser.conftest import ensure_roles, login, shot
from tests.conftest import wait_for
from tests.factories import (
    CampaignFactory,
    ChannelFactory,
    ContactListFactory,
    ProviderAccountFactory,
    UserFactory,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# One date-time format in Vietnamese (config/formats/vi): 19:00 03/12/2026.
VI_DATETIME = re.compile(r"\b\d{2}:\d{2} \d{2}/\d{2}/\d{4}\b")


def _vi(msgid: str) -> str:
    """The Vietnamese text of a msgid (the msgid itself until the catalogue has it)."""
    with translation.override("vi"):
        return gettext(msgid)


def axe_serious(page, selector: str) -> list[str]:
    """axe-core's serious and critical violations inside `selector` (skipped without axe)."""
    try:
        import axe_playwright_python
    except ImportError:
        return []
    source = Path(axe_playwright_python.__file__).with_name("axe.min.js").read_text()
    page.evaluate(source)
    result = page.evaluate(
        "async (sel) => await axe.run({include: [[sel]]}, {resultTypes: ['violations']})",
        selector,
    )
    return [
        f"{v['id']}: {v['help']} {[n['target'] for n in v['nodes']]}"
        for v in result["violations"]
        if v.get("impact") in ("serious", "critical")
    ]


def test_marketer_sets_the_speed_and_the_sent_campaign_is_read_only(
    page_vi, live_server, qcluster, monkeypatch
):
    from django_q.conf import Conf

    page = page_vi
    monkeypatch.setattr(Conf, "SYNC", False)  # the live server enqueues; the worker sends
    ensure_roles()
    qcluster()
    account = ProviderAccountFactory(kind="sandbox", name="Sandbox", rate_limit=5)
    channel = ChannelFactory(
        account=account, name="Zalo ZNS (sandbox)", official_account__name="Loa Demo OA"
    )
    campaign = CampaignFactory(
        name="Khuyến mãi cuối tuần",
        channel=channel,
        template__official_account=channel.official_account,
        lists=[ContactListFactory(name="Khách hàng thân thiết", size=30)],
    )
    UserFactory(username="lan", groups=["Marketer"])

    page.set_viewport_size({"width": 1366, "height": 768})
    login(page, "lan")
    page.goto(f"/admin/campaigns/campaign/{campaign.pk}/wizard/5/")
    page.wait_for_selector("#wizard-step-5")
    # The account's limit is the default and the ceiling.
    assert page.input_value("#id_speed") == "5"
    assert "5" in page.inner_text("#speed-help")

    # Faster than the account allows: refused, in Vietnamese, nothing saved.
    page.fill("#id_speed", "6")
    page.select_option("#id_speed_unit", "second")
    page.click("#wizard-speed-save")
    page.wait_for_selector("#wizard-speed-form .errorlist")
    campaign.refresh_from_db()
    assert campaign.rate_limit is None

    # 30 a minute: saved as 0.5 a second, and the finish moves accordingly.
    page.fill("#id_speed", "30")
    page.select_option("#id_speed_unit", "minute")
    page.click("#wizard-speed-save")
    page.wait_for_selector("#wizard-step-5")
    campaign.refresh_from_db()
    assert campaign.rate_limit == pytest.approx(0.5)
    finish = page.inner_text("#finish-estimate")
    prefix = _vi("Sent now, it finishes at about %(when)s.").split("%(when)s")[0].strip()
    assert prefix in finish
    assert VI_DATETIME.search(finish), finish
    assert "0,5" in finish and "30" in finish  # 0,5 a second (30 a minute), Vietnamese decimals
    # The estimated cost is whole dong, "9.000 ₫", never "9.000,00".
    assert re.fullmatch(r"[\d.]+\u00a0₫", page.inner_text("#preflight-cost").strip())
    assert axe_serious(page, "#speed") == []
    page.locator("#speed").scroll_into_view_if_needed()
    shot(page, "speed-review")

    # Send now: the worker sends at 0.5 a second, so the campaign is still running below.
    page.click("#wizard-send-now")
    page.wait_for_selector("#loa-stats")
    assert wait_for(
        lambda: Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.RUNNING, 30
    )
    page.reload()
    page.wait_for_selector("#action-pause")
    # Read-only: no editable field and no Save button; the allowed actions stay.
    assert page.locator("input[name=_save]").count() == 0
    assert page.locator("input[name=_continue]").count() == 0
    assert page.locator("#id_name").count() == 0
    assert page.locator("#id_rate_limit").count() == 0
    assert page.locator("#action-cancel").count() == 1
    assert page.locator("#export-csv").count() == 1
    content = page.inner_text("#content")
    assert "Khuyến mãi cuối tuần" in content
    assert VI_DATETIME.search(content)  # started at, in the one Vietnamese format
    assert axe_serious(page, "#campaign_form fieldset") == []  # the read-only fields
    shot(page, "speed-readonly")

    # A forged POST (a stale tab, a hand-made request) is refused and changes nothing.
    token = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    url = f"{live_server.url}/admin/campaigns/campaign/{campaign.pk}/change/"
    response = page.request.post(
        url,
        form={
            "csrfmiddlewaretoken": token,
            "name": "Đã sửa",
            "rate_limit": "100",
            "scheduled_at_0": "",
            "_save": "Lưu",
        },
        headers={"Referer": url},
    )
    assert response.status == 403
    campaign.refresh_from_db()
    assert campaign.name == "Khuyến mãi cuối tuần"
    assert campaign.rate_limit == pytest.approx(0.5)
    campaign_cancel(campaign_id=campaign.pk)
