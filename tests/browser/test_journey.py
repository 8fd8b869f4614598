"""The whole marketer journey in a real browser, on a live server with a real qcluster worker:
contact staff upload contacts; a marketer builds a campaign in the wizard, sends it to the sandbox
provider, watches the progress bar reach 100% and the funnel fill, exports the results; and a
marketer cannot reach provider credentials. Screenshots go to docs/screenshots/."""

import csv
import io
import random
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from campaigns.models import Campaign, ContactImport, ContactList, Message
from tests.browser.conftest import ensure_roles, login, logout, shot
from tests.conftest import wait_for
from tests.factories import (
    ChannelFactory,
    ContactFactory,
    ContactListFactory,
    TemplateFactory,
    UserFactory,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

FIRST = ["Nguyễn Văn An", "Trần Thị Bình", "Lê Minh Châu", "Phạm Ngọc Dũng", "Hoàng Thu Hà"]


def contacts_csv(n: int) -> bytes:
    rows = ["SĐT,Họ tên,order,city"]
    for i in range(n):
        rows.append(f"0912{i:06d},{FIRST[i % len(FIRST)]} {i},DH{1000 + i},Hà Nội")
    return ("\n".join(rows) + "\n").encode("utf-8")


def wait_number(page, selector: str, condition: str, timeout: float = 20_000) -> None:
    """Wait until the number shown in `selector` (grouping marks ignored) meets `condition`."""
    page.wait_for_function(
        f"""() => {{
            const el = document.querySelector({selector!r});
            if (!el) return false;
            const n = parseInt(el.textContent.replace(/\\D/g, ''), 10);
            return !isNaN(n) && n {condition};
        }}""",
        timeout=timeout,
    )


def seed_history(channel, template) -> None:
    """Last week's campaign, so the dashboard has days to draw (messages as the engine leaves them)."""
    rnd = random.Random(7)
    cl = ContactListFactory(name="Khách tháng trước", size=0)
    contacts = ContactFactory.create_batch(120)
    past = Campaign.objects.create(
        name="Ưu đãi tháng trước",
        channel=channel,
        template=template,
        status=Campaign.Status.COMPLETED,
        total_count=len(contacts),
    )
    past.lists.add(cl)
    now = timezone.now()
    rows, counts = [], {"sent": 0, "delivered": 0, "read": 0, "failed": 0}
    for c in contacts:
        sent_at = now - timedelta(days=rnd.randint(1, 6), minutes=rnd.randint(0, 600))
        fate = rnd.random()
        status = (
            "read"
            if fate < 0.5
            else "delivered"
            if fate < 0.85
            else "sent"
            if fate < 0.93
            else "failed"
        )
        rows.append(
            Message(
                campaign=past,
                contact=c,
                phone=c.phone,
                idempotency_key=f"hist{past.pk}c{c.pk}",
                status=status,
                sent_at=sent_at,
                delivered_at=sent_at if status in ("delivered", "read") else None,
                read_at=sent_at if status == "read" else None,
                failed_at=sent_at if status == "failed" else None,
                error_code="-118" if status == "failed" else "",
            )
        )
        counts["sent"] += 1
        counts["delivered"] += status in ("delivered", "read")
        counts["read"] += status == "read"
        counts["failed"] += status == "failed"
    Message.objects.bulk_create(rows)
    # created_at is set on insert: put it back in the past, as the real rows would be.
    for m in Message.objects.filter(campaign=past):
        Message.objects.filter(pk=m.pk).update(created_at=m.sent_at)
    Campaign.objects.filter(pk=past.pk).update(
        sent_count=counts["sent"],
        delivered_count=counts["delivered"],
        read_count=counts["read"],
        failed_count=counts["failed"],
        started_at=now - timedelta(days=6),
        finished_at=now - timedelta(days=1),
    )


def test_marketer_journey(page_vi, live_server, qcluster, monkeypatch):
    """Long because it is one user story read top to bottom: each step (upload, wizard, send,
    progress, funnel, export, the marketer locked out of credentials) starts from the state
    the step before left in the browser and the database, so split parts would not stand alone."""
    page = page_vi  # Vietnamese, as the screenshots in the README show
    from django_q.conf import Conf

    from campaigns.selectors.dashboard import dashboard_cache_clear

    # The live server enqueues into the ORM broker; the real worker process does the work.
    monkeypatch.setattr(Conf, "SYNC", False)
    ensure_roles()
    cluster = qcluster()

    # What an administrator prepared: a sandbox account, its Zalo OA, a channel, a template.
    channel = ChannelFactory(
        name="Zalo ZNS (sandbox)",
        account__name="Sandbox",
        official_account__name="Loa Demo OA",
        official_account__quality="HIGH",
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
    TemplateFactory(
        account=channel.account,
        name="Chờ Zalo duyệt",
        status="pending",
    )
    seed_history(channel, template)
    UserFactory(username="thu", groups=["Contact staff"])
    UserFactory(username="lan", groups=["Marketer"])
    n = 40

    # ---- 1. Contact staff upload a file of contacts ------------------------------------------
    login(page, "thu")
    response = page.goto("/admin/campaigns/contactimport/add/")
    assert response.status == 200
    page.set_input_files(
        "#id_file",
        files=[{"name": "khach.csv", "mimeType": "text/csv", "buffer": contacts_csv(n)}],
    )
    page.fill("#id_new_list_name", "Khách tháng 11")
    page.click("#upload-submit")
    page.click("#start-import")  # the preview recognized "SĐT" and "Họ tên" (test_import_browser)
    page.wait_for_selector("#import-panel")

    def imported():
        imp = ContactImport.objects.order_by("-pk").first()
        return imp if imp and imp.status in ("completed", "failed") else None

    imp = wait_for(imported, timeout=90)
    assert imp is not None and imp.status == "completed", cluster.output()
    assert imp.imported_count == n
    wait_number(page, "#count-imported", f"== {n}")
    shot(page, "import")
    contact_list = ContactList.objects.get(pk=imp.contact_list_id)
    logout(page)

    # ---- 2. A marketer builds the campaign in the wizard ---------------------------------------
    login(page, "lan")
    page.goto("/admin/campaigns/campaign/add/")  # "Add campaign" opens the wizard
    page.wait_for_selector("#wizard-step-1")
    page.fill("#id_name", "Xác nhận đơn tháng 11")
    page.locator("input[name=channel]").first.check()
    page.click("#wizard-next")

    page.wait_for_selector("#wizard-step-2")
    assert page.locator("text=Chờ Zalo duyệt").count() == 0  # approved templates only
    page.locator(f"input[name=template][value='{template.pk}']").check()
    shot(page, "wizard-template")
    page.click("#wizard-next")

    page.wait_for_selector("#wizard-step-3")
    page.locator(f"input[name=lists][value='{contact_list.pk}']").check()
    # the live count (JSON) answers before we move on
    page.wait_for_function(
        f"() => (document.querySelector('#audience-count') || {{}}).textContent.indexOf('{n}') >= 0"
    )
    page.click("#wizard-next")

    page.wait_for_selector("#wizard-step-4")
    page.click("#wizard-check")  # save the suggested mapping and check it on real recipients
    page.wait_for_selector("#validation-summary")
    shot(page, "wizard-mapping")
    page.click("#wizard-next")

    page.wait_for_selector("#wizard-step-5")
    recipients = page.text_content("#preflight-recipients").strip()
    assert recipients.replace(".", "").replace(",", "") == str(n)
    shot(page, "wizard-review")
    page.click("#wizard-send-now")

    # ---- 3. The campaign page follows the send by itself -------------------------------------
    page.wait_for_selector("#loa-stats")
    campaign = Campaign.objects.get(name="Xác nhận đơn tháng 11")
    # The page reloads itself when the status changes: read the elements null-safely.
    wait_number(page, "#progress-value", "== 100", timeout=120_000)
    wait_number(page, "#funnel-delivered", "> 0", timeout=120_000)
    assert page.get_attribute("#progress", "aria-valuenow") == "100"
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.COMPLETED, cluster.output()
    assert Message.objects.filter(campaign=campaign).count() == n
    # Let the receipts settle, then photograph the page with its charts.
    wait_for(
        lambda: Campaign.objects.filter(pk=campaign.pk, delivered_count__gte=n // 2).exists(),
        timeout=60,
    )
    page.reload()
    page.wait_for_selector("#funnel")
    shot(page, "campaign")

    # ---- 4. Export the results -------------------------------------------------------------
    with page.expect_download() as info:
        page.click("#export-csv")
    text = Path(info.value.path()).read_text(encoding="utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][0] == "Số điện thoại" and len(rows) == n + 1  # the reader's language
    with page.expect_download() as info:
        page.click("#export-xlsx")
    from openpyxl import load_workbook

    wb = load_workbook(io.BytesIO(Path(info.value.path()).read_bytes()), read_only=True)
    assert len(list(wb.active.iter_rows(values_only=True))) == n + 1

    # ---- 5. The dashboard --------------------------------------------------------------------
    dashboard_cache_clear()
    page.goto("/admin/")
    page.wait_for_selector("#dashboard")
    assert page.locator("#dash-sends svg").count() == 1
    shot(page, "dashboard")

    # ---- 6. Provider credentials are not a marketer's business ---------------------------------
    assert page.locator("a[href='/admin/providers/provideraccount/']").count() == 0
    response = page.goto(f"/admin/providers/provideraccount/{channel.account.pk}/change/")
    assert response.status == 403

    # ---- 7. English is one choice away --------------------------------------------------------
    page.goto("/admin/")
    assert page.get_attribute("html", "lang") == "vi"
    page.select_option("#loa-language", "en")
    with page.expect_navigation():
        page.click("#loa-language-go")
    assert page.get_attribute("html", "lang").startswith("en")
