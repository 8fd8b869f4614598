"""The automated accessibility check (issue 17, "Done when"): axe-core, injected into the pages a
marketer and a contact staff member use in Vietnamese, reports no "serious" or "critical"
violation on the dashboard, each wizard step, a campaign page, the contact list and the import
pages (upload, column mapping, result).

axe-core comes with axe-playwright-python (a dev dependency); the check is skipped, with the
reason, where it is not installed."""

from __future__ import annotations

import pytest

from campaigns.models import Campaign, ContactImport
from tests.browser.conftest import ensure_roles, login
from tests.browser.test_journey import contacts_csv, seed_history
from tests.conftest import wait_for
from tests.factories import ChannelFactory, ContactListFactory, TemplateFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

BLOCKING = {"serious", "critical"}


@pytest.fixture(scope="module")
def axe():
    try:
        from axe_playwright_python.sync_playwright import Axe
    except ImportError:
        pytest.skip("axe-playwright-python is not installed: pip install -e '.[dev]'")
    return Axe()


def violations(axe, page, name: str) -> list[str]:
    """The serious and critical violations on the page, one readable paragraph each."""
    results = axe.run(page)
    found = []
    for v in results.response["violations"]:
        if v.get("impact") not in BLOCKING:
            continue
        nodes = []
        for node in v["nodes"][:5]:
            target = " ".join(str(t) for t in node.get("target", []))
            summary = " ".join((node.get("failureSummary") or "").split())
            nodes.append(f"      at {target}: {summary[:300]}")
        more = len(v["nodes"]) - 5
        found.append(
            f"[{name}] {v['impact']}: {v['id']} - {v['help']} ({v['helpUrl']})\n"
            + "\n".join(nodes)
            + (f"\n      ... and {more} more" if more > 0 else "")
        )
    return found


def _world():
    """What the administrator prepared, and last week's campaign (the dashboard and a
    campaign page have something to show)."""
    channel = ChannelFactory(
        name="Zalo ZNS (sandbox)",
        account__name="Sandbox",
        official_account__name="Loa Demo OA",
        official_account__daily_quota=5000,
        official_account__remaining_quota=4620,
    )
    template = TemplateFactory(
        account=channel.account,
        official_account=channel.official_account,
        name="Xác nhận đơn hàng",
        provider_template_id="205644",
        body="Xin chào {{customer_name}}, đơn hàng {{order_code}} của bạn đã được xác nhận.",
    )
    seed_history(channel, template)
    return channel, template


def test_no_serious_or_critical_violation(page_vi, live_server, axe):
    """One walk through the pages, every page checked; the failure lists every violation of
    every page at once (fixing one page at a time would take as many runs)."""
    from campaigns.selectors.dashboard import dashboard_cache_clear

    page = page_vi
    page.set_viewport_size({"width": 1366, "height": 768})
    ensure_roles()
    channel, template = _world()
    UserFactory(username="thu", groups=["Contact staff"])
    UserFactory(username="lan", groups=["Marketer"])
    found: list[str] = []

    # ---- contact staff: the import pages and the contact list ----------------------------
    login(page, "thu")
    page.goto("/admin/campaigns/contactimport/add/")
    page.wait_for_selector("#id_file")
    found += violations(axe, page, "import: upload")
    page.set_input_files(
        "#id_file",
        files=[{"name": "khach.csv", "mimeType": "text/csv", "buffer": contacts_csv(12)}],
    )
    page.fill("#id_new_list_name", "Khách tháng 12")
    page.click("#upload-submit")
    page.wait_for_selector("#preview-table")
    found += violations(axe, page, "import: columns")
    page.click("#start-import")
    page.wait_for_selector("#import-panel")
    # The test settings run tasks inline: the import is done when the page answers.
    imp = wait_for(
        lambda: ContactImport.objects.filter(status__in=["completed", "failed"]).first(),
        timeout=60,
    )
    assert imp is not None and imp.status == "completed", imp and imp.error_message
    page.reload()
    page.wait_for_selector("#import-panel")
    found += violations(axe, page, "import: result")
    page.goto("/admin/campaigns/contact/")
    page.wait_for_selector("#result_list")
    found += violations(axe, page, "contact list")
    page.context.clear_cookies()  # the next user logs in on the same browser

    # ---- marketer: dashboard, the wizard's steps, a campaign page ----------------------------
    login(page, "lan")
    dashboard_cache_clear()
    page.goto("/admin/")
    page.wait_for_selector("#dashboard")
    found += violations(axe, page, "dashboard")

    page.goto("/admin/campaigns/campaign/add/")
    page.wait_for_selector("#wizard-step-1")
    found += violations(axe, page, "wizard 1: channel")
    page.fill("#id_name", "Tri ân khách hàng")
    page.locator(f"input[name=channel][value='{channel.pk}']").check()
    page.click("#wizard-next")
    page.wait_for_selector("#wizard-step-2")
    found += violations(axe, page, "wizard 2: template")
    page.locator(f"input[name=template][value='{template.pk}']").check()
    page.click("#wizard-next")
    page.wait_for_selector("#wizard-step-3")
    found += violations(axe, page, "wizard 3: audience")
    page.locator(f"input[name=lists][value='{imp.contact_list_id}']").check()
    page.click("#wizard-next")
    page.wait_for_selector("#wizard-step-4")
    found += violations(axe, page, "wizard 4: parameters")
    page.click("#wizard-next")
    page.wait_for_selector("#wizard-step-5")
    found += violations(axe, page, "wizard 5: review")

    past = Campaign.objects.get(name="Ưu đãi tháng trước")
    page.goto(f"/admin/campaigns/campaign/{past.pk}/change/")
    page.wait_for_selector("#funnel")
    found += violations(axe, page, "campaign page")

    assert not found, "axe-core found serious or critical violations:\n" + "\n".join(found)


def test_an_empty_list_and_its_contacts_page(page_vi, live_server, axe):
    """The contact list's other state: a marketer's view-only list, filtered by an empty list."""
    ensure_roles()
    UserFactory(username="lan", groups=["Marketer"])
    empty = ContactListFactory(name="Danh sách trống", size=0)
    login(page_vi, "lan")
    page_vi.goto(f"/admin/campaigns/contact/?list={empty.pk}")
    page_vi.wait_for_selector("#changelist")
    found = violations(axe, page_vi, "contact list (empty, marketer)")
    assert not found, "\n".join(found)
