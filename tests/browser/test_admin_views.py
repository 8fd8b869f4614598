"""The marketer's admin through Django's test client: wizard, campaign page, exports, dashboard,
roles. (The real-browser journey is in test_journey.py.)"""

import io
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from campaigns.admin.wizard.forms import ReviewStepForm
from campaigns.models import Campaign, Contact, ContactListMembership, Message, OptOut
from campaigns.selectors import campaign as campaign_selectors
from campaigns.selectors import dashboard
from campaigns.selectors.wizard import campaign_quiet_hours_note
from templates_app.models import Template
from tests.factories import (
    CampaignFactory,
    ChannelFactory,
    ContactFactory,
    ContactListFactory,
    TemplateFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup():
    channel = ChannelFactory(name="Zalo sandbox")
    template = TemplateFactory(account=channel.account, name="Order OK")
    TemplateFactory(account=channel.account, name="Not yet", status=Template.Status.PENDING)
    cl = ContactListFactory(name="VIP", size=12)
    return channel, template, cl


@pytest.fixture
def send(django_capture_on_commit_callbacks):
    """Send a campaign through the real engine (the drivers start on commit)."""
    from campaigns.engine.lifecycle import campaign_send_now

    def run(campaign):
        with django_capture_on_commit_callbacks(execute=True):
            campaign_send_now(campaign_id=campaign.pk)
        campaign.refresh_from_db()
        return campaign

    return run


def wizard_url(campaign, step):
    return reverse("admin:campaigns_campaign_wizard", args=[campaign.pk, step])


def test_wizard_walks_from_channel_to_send_and_saves_a_draft_at_every_step(client, marketer, setup):
    channel, template, cl = setup
    # "Add campaign" leads to the wizard.
    r = client.get(reverse("admin:campaigns_campaign_add"))
    assert r.status_code == 302 and r["Location"] == reverse(
        "admin:campaigns_campaign_wizard_start"
    )
    r = client.get(r["Location"])
    assert r.status_code == 200 and b'id="wizard-step-1"' in r.content
    r = client.post(r.request["PATH_INFO"], {"name": "Tet sale", "channel": channel.pk})
    campaign = Campaign.objects.get(name="Tet sale")
    assert campaign.status == Campaign.Status.DRAFT and campaign.created_by == marketer
    assert r["Location"] == wizard_url(campaign, 2)

    r = client.get(wizard_url(campaign, 2))
    assert b"Order OK" in r.content and b"Not yet" not in r.content  # approved only
    assert "Xin chào <mark>{{customer_name}}</mark>".encode() in r.content  # the body preview
    client.post(wizard_url(campaign, 2), {"template": template.pk})
    campaign.refresh_from_db()
    assert campaign.template == template

    r = client.get(wizard_url(campaign, 3))
    assert b'id="wizard-step-3"' in r.content and b"VIP" in r.content
    client.post(wizard_url(campaign, 3), {"lists": [cl.pk]})
    assert list(campaign.lists.all()) == [cl]

    r = client.get(wizard_url(campaign, 4))
    assert r.status_code == 200
    form = r.context["form"]
    # Suggestions: customer_name from the contact's name, order_code from the "order" attribute.
    data = {}
    for i in range(len(form.params)):
        data[f"p{i}_source"] = form[f"p{i}_source"].value()
        data[f"p{i}_value"] = form[f"p{i}_value"].value()
        data[f"p{i}_format"] = form[f"p{i}_format"].value() or ""
    assert data["p0_source"] == "field" and data["p0_value"] == "name"
    assert data["p1_source"] == "attribute" and data["p1_value"] == "order"
    r = client.post(wizard_url(campaign, 4), {**data, "_check": "1"})
    r = client.get(wizard_url(campaign, 4))
    assert b'id="validation-summary"' in r.content
    assert "Xin chào Nguyễn Văn".encode() in r.content  # a real recipient's preview
    client.post(wizard_url(campaign, 4), data)
    campaign.refresh_from_db()
    assert campaign.param_mapping["order_code"]["value"] == "order"

    r = client.get(wizard_url(campaign, 5))
    assert r.status_code == 200
    assert r.context["preflight"]["recipients"] == 12
    assert b'id="wizard-send-now"' in r.content and b'id="wizard-schedule"' in r.content
    r = client.post(wizard_url(campaign, 5), {"action": "send_now"})
    assert r["Location"] == reverse("admin:campaigns_campaign_change", args=[campaign.pk])
    campaign.refresh_from_db()
    assert campaign.status in (Campaign.Status.RUNNING, Campaign.Status.COMPLETED)
    assert Message.objects.filter(campaign=campaign).count() == 12
    # A sent campaign is no longer editable in the wizard.
    r = client.get(wizard_url(campaign, 2))
    assert r.status_code == 302 and r["Location"].endswith(f"/{campaign.pk}/change/")


def test_steps_cannot_be_skipped(client, marketer, setup):
    channel, template, cl = setup
    campaign = Campaign.objects.create(name="x", channel=channel)
    r = client.get(wizard_url(campaign, 5))
    assert r.status_code == 302 and r["Location"] == wizard_url(campaign, 2)


def test_audience_count_excludes_opted_out_contacts(client, marketer, setup):
    channel, template, cl = setup
    campaign = Campaign.objects.create(name="x", channel=channel, template=template)
    contact = Contact.objects.filter(memberships__contact_list=cl).first()
    OptOut.objects.create(contact=contact, channel_kind="zalo_zns")
    other = ContactListFactory(size=3)
    # the same contact in two lists counts once
    ContactListMembership.objects.create(contact_list=other, contact=contact)
    url = reverse("admin:campaigns_campaign_wizard_count", args=[campaign.pk])
    data = client.get(url, {"lists": [cl.pk, other.pk]}).json()
    assert data == {
        "contacts": 15,
        "opted_out": 1,
        "recipients": 14,
        "approximate": False,
        "text": data["text"],
    }
    assert "14" in data["text"]


def test_mapping_errors_are_shown_in_place(client, marketer, setup):
    channel, template, cl = setup
    campaign = Campaign.objects.create(name="x", channel=channel, template=template)
    campaign.lists.add(cl)
    r = client.post(
        wizard_url(campaign, 4),
        {
            "p0_source": "field",
            "p0_value": "email",  # not a contact field
            "p0_format": "",
            "p1_source": "constant",
            "p1_value": "",  # required
            "p1_format": "",
        },
    )
    assert r.status_code == 200
    assert r.context["form"].errors.keys() == {"p0_value", "p1_value"}
    campaign.refresh_from_db()
    assert campaign.param_mapping == {}


def test_schedule_is_local_time_and_in_the_future(client, marketer, setup):
    channel, template, cl = setup
    campaign = CampaignFactory(channel=channel, template=template, lists=[cl])
    past = timezone.localtime() - timedelta(hours=1)
    r = client.post(
        wizard_url(campaign, 5),
        {"action": "schedule", "scheduled_at": past.strftime("%Y-%m-%dT%H:%M")},
    )
    assert r.status_code == 200 and "scheduled_at" in r.context["form"].errors
    when = (timezone.localtime() + timedelta(days=1)).replace(
        hour=9, minute=30, second=0, microsecond=0
    )
    r = client.post(
        wizard_url(campaign, 5),
        {"action": "schedule", "scheduled_at": when.strftime("%Y-%m-%dT%H:%M")},
    )
    assert r.status_code == 302
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SCHEDULED
    assert timezone.localtime(campaign.scheduled_at).strftime("%H:%M") == "09:30"
    assert str(timezone.localtime(campaign.scheduled_at).tzinfo) == "Asia/Ho_Chi_Minh"


def test_promotions_only_in_daytime(setup):
    channel, template, cl = setup
    template.tag = Template.Tag.PROMOTION
    template.save()
    campaign = CampaignFactory(channel=channel, template=template, lists=[cl])
    night = timezone.localtime().replace(hour=23, minute=0)
    day = timezone.localtime().replace(hour=10, minute=0)
    assert campaign_quiet_hours_note(campaign=campaign, when=night)["blocked"] is True
    assert campaign_quiet_hours_note(campaign=campaign, when=day)["blocked"] is False
    form = ReviewStepForm(
        {
            "action": "schedule",
            "scheduled_at": (night + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M"),
        },
        campaign=campaign,
    )
    assert not form.is_valid() and "scheduled_at" in form.errors


def test_a_user_without_the_send_permission_cannot_send(client, setup):
    channel, template, cl = setup
    user = UserFactory(username="helper", groups=["Contact staff"])
    from django.contrib.auth.models import Permission

    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_campaign", "change_campaign"])
    )
    client.force_login(user)
    campaign = CampaignFactory(channel=channel, template=template, lists=[cl])
    r = client.get(wizard_url(campaign, 5))
    assert b'id="wizard-send-now"' not in r.content
    r = client.post(wizard_url(campaign, 5), {"action": "send_now"})
    assert r.status_code == 403
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DRAFT


def test_campaign_page_shows_funnel_failures_timeline_and_exports(client, marketer, setup, send):
    channel, template, cl = setup
    campaign = CampaignFactory(channel=channel, template=template, lists=[cl])
    send(campaign)
    assert campaign.total_count == 12 and campaign.progress_percent == 100
    url = reverse("admin:campaigns_campaign_change", args=[campaign.pk])
    r = client.get(url)
    assert r.status_code == 200
    body = r.content.decode()
    for marker in ('id="funnel"', 'id="progress"', 'id="export-xlsx"', 'id="messages-link"'):
        assert marker in body
    if campaign.failed_count:  # the sandbox fails ~6% with real Zalo codes, explained
        assert 'id="failures"' in body
    assert 'class="loa-chart"' in body  # sends over time
    data = client.get(
        reverse("admin:campaigns_campaign_progress", args=[campaign.pk]), {"full": 1}
    ).json()
    assert data["total"] == 12 and 'class="loa-chart"' in data["panel"]
    assert data["progress"] == 100


def test_xlsx_export_is_injection_safe(client, marketer, setup, send):
    from openpyxl import load_workbook

    channel, template, cl = setup
    evil = ContactFactory(name='=HYPERLINK("http://x","y")')
    ContactListMembership.objects.create(contact_list=cl, contact=evil)
    campaign = CampaignFactory(channel=channel, template=template, lists=[cl])
    send(campaign)
    r = client.get(reverse("admin:campaigns_campaign_export_xlsx", args=[campaign.pk]))
    assert r.status_code == 200
    wb = load_workbook(io.BytesIO(b"".join(r.streaming_content)))
    rows = list(wb.active.iter_rows())
    assert len(rows) == 14
    # Issue 17: a string cell cannot be a formula, so the XLSX needs no apostrophe; the name is
    # stored as text (data_type "s") and no cell is a formula.
    names = {row[2].value: row[2].data_type for row in rows[1:]}
    assert names['=HYPERLINK("http://x","y")'] == "s"
    assert all(c.data_type != "f" for row in rows for c in row)


def test_message_list_of_a_campaign_uses_the_counter(client, marketer, setup, send):
    channel, template, cl = setup
    campaign = CampaignFactory(channel=channel, template=template, lists=[cl])
    send(campaign)
    url = reverse("admin:campaigns_message_changelist") + f"?campaign__id__exact={campaign.pk}"
    r = client.get(url)
    assert r.status_code == 200
    assert r.context["cl"].paginator.known_count == 12
    assert r.context["cl"].result_count == 12


def test_timeline_sampling_estimates_the_total(setup, send, monkeypatch):
    channel, template, cl = setup
    campaign = CampaignFactory(channel=channel, template=template, lists=[cl])
    send(campaign)
    campaign.refresh_from_db()
    exact = campaign_selectors.campaign_send_timeline(campaign=campaign)
    assert sum(b["count"] for b in exact["buckets"]) == campaign.sent_count
    monkeypatch.setattr(campaign_selectors, "TIMELINE_SAMPLE", 4)
    sampled = campaign_selectors.campaign_send_timeline(campaign=campaign)
    assert sampled["sampled"] is True
    assert abs(sum(b["count"] for b in sampled["buckets"]) - campaign.total_count) <= 3
    lo, hi = campaign_selectors.campaign_id_range(campaign=campaign)
    ids = Message.objects.filter(campaign=campaign).values_list("id", flat=True)
    assert (lo, hi) == (min(ids), max(ids))


def test_first_message_id_since_is_a_binary_search_on_created_at(setup):
    channel, template, cl = setup
    campaign = CampaignFactory(channel=channel, template=template, lists=[cl])
    from campaigns.engine.materialize import campaign_materialize

    campaign_materialize(campaign_id=campaign.pk)
    ids = list(Message.objects.order_by("id").values_list("id", flat=True))
    base = timezone.now() - timedelta(days=30)
    for i, pk in enumerate(ids):
        Message.objects.filter(pk=pk).update(created_at=base + timedelta(days=i))
    assert dashboard.first_message_id_since(base + timedelta(days=5, hours=1)) == ids[6]
    assert dashboard.first_message_id_since(base - timedelta(days=1)) == ids[0]
    assert dashboard.first_message_id_since(base + timedelta(days=100)) == ids[-1] + 1


def test_dashboard_figures_from_a_sample_estimate_the_exact_ones(setup, send, monkeypatch):
    channel, template, cl = setup
    send(CampaignFactory(channel=channel, template=template, lists=[cl]))
    exact = dashboard.dashboard_message_stats()
    assert exact["estimated"] is False and exact["today"]["sent"] == 12
    monkeypatch.setattr(dashboard, "DASH_EXACT", 0)
    monkeypatch.setattr(dashboard, "DASH_SAMPLE", 4)
    sampled = dashboard.dashboard_message_stats()
    assert sampled["estimated"] is True
    assert sampled["today"]["sent"] == 12  # 4 sampled ids, each standing for 3


def test_dashboard_is_the_admin_index(client, marketer, setup, send):
    channel, template, cl = setup
    campaign = CampaignFactory(channel=channel, template=template, lists=[cl])
    send(campaign)
    dashboard.dashboard_cache_clear()
    r = client.get(reverse("admin:index"))
    body = r.content.decode()
    assert r.status_code == 200
    assert 'id="dashboard"' in body and 'id="kpis"' in body
    assert 'id="kpi-today-sent">12<' in body
    assert 'id="dash-webhooks"' in body and 'id="dash-oas"' in body
    assert 'id="app-list"' in body or "app-campaigns" in body  # the app list stays below
    assert 'id="language-switcher"' in body


def test_dashboard_for_contact_staff_shows_imports_not_sends(client, setup):
    user = UserFactory(username="cs", groups=["Contact staff"])
    client.force_login(user)
    r = client.get(reverse("admin:index"))
    body = r.content.decode()
    assert 'id="dash-imports"' in body and 'id="kpis"' not in body


def test_empty_state_points_to_the_upload(client):
    user = UserFactory(username="cs2", groups=["Contact staff"])
    client.force_login(user)
    body = client.get(reverse("admin:index")).content.decode()
    assert 'id="empty-contacts"' in body
    assert reverse("admin:campaigns_contactimport_add") in body


def test_marketer_cannot_open_provider_credentials(client, marketer, setup):
    channel, template, cl = setup
    r = client.get(reverse("admin:providers_provideraccount_change", args=[channel.account.pk]))
    assert r.status_code == 403
    r = client.get(reverse("admin:providers_provideraccount_changelist"))
    assert r.status_code == 403
    index = client.get(reverse("admin:index")).content.decode()
    assert reverse("admin:providers_provideraccount_changelist") not in index


def test_vietnamese_for_vietnamese_browsers_and_english_one_click_away(client, marketer):
    r = client.get(reverse("admin:index"), HTTP_ACCEPT_LANGUAGE="vi-VN,vi;q=0.9")
    assert r.headers["Content-Language"] == "vi"
    assert "Tổng quan" in r.content.decode()  # the dashboard's title, translated
    r = client.post(reverse("set_language"), {"language": "en", "next": "/admin/"})
    assert r.status_code == 302
    r = client.get(reverse("admin:index"), HTTP_ACCEPT_LANGUAGE="vi-VN,vi;q=0.9")
    assert r.headers["Content-Language"] == "en"  # the choice wins over the browser's


def test_numbers_are_grouped_the_vietnamese_way():
    from django.contrib.humanize.templatetags.humanize import intcomma
    from django.utils import translation

    with translation.override("vi"):
        assert intcomma(1234567) == "1.234.567"
    with translation.override("en"):
        assert intcomma(1234567) == "1,234,567"


def test_custom_404_page(client, marketer):
    r = client.get("/admin/campaigns/campaign/999999/wizard/2/")
    assert r.status_code == 404


def test_a_scheduled_campaign_can_go_back_to_draft(client, marketer, setup):
    channel, template, cl = setup
    campaign = CampaignFactory(channel=channel, template=template, lists=[cl])
    when = timezone.now() + timedelta(days=1)
    from campaigns.engine.lifecycle import campaign_schedule

    campaign_schedule(campaign_id=campaign.pk, when=when)
    page = client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk]))
    assert b'id="action-unschedule"' in page.content
    url = reverse("admin:campaigns_campaign_action", args=[campaign.pk, "unschedule"])
    assert client.get(url).status_code == 200  # a confirmation page first
    client.post(url)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DRAFT
    assert client.get(wizard_url(campaign, 5)).status_code == 200


def test_actions_not_allowed_in_the_current_state_are_refused(client, marketer, setup):
    channel, template, cl = setup
    campaign = CampaignFactory(channel=channel, template=template, lists=[cl])
    url = reverse("admin:campaigns_campaign_action", args=[campaign.pk, "resume"])
    r = client.post(url)
    assert r.status_code == 302
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DRAFT


def test_a_refused_send_is_an_error_message_not_an_error_page(client, marketer, setup):
    channel, template, cl = setup
    campaign = CampaignFactory(channel=channel, template=template)  # no list, no segment
    url = reverse("admin:campaigns_campaign_action", args=[campaign.pk, "send"])
    r = client.post(url, follow=True)
    assert r.status_code == 200
    errors = [str(m) for m in r.context["messages"] if m.level_tag == "error"]
    assert len(errors) == 1  # what is missing, in the reader's language
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DRAFT


def test_only_a_draft_is_edited_by_the_wizard(setup, send):
    from campaigns.drafts import campaign_draft_update
    from providers.shared.errors import Refused

    channel, template, cl = setup
    campaign = send(CampaignFactory(channel=channel, template=template, lists=[cl]))
    with pytest.raises(Refused) as refused:
        campaign_draft_update(campaign=campaign, name="renamed")
    assert refused.value.code == "not_draft"
    campaign.refresh_from_db()
    assert campaign.name != "renamed"


def test_the_plain_form_stays_reachable(admin_client, setup):
    r = admin_client.get(reverse("admin:campaigns_campaign_add") + "?plain=1")
    assert r.status_code == 200 and b'name="param_mapping"' in r.content


def test_wizard_free_text_email_requires_a_subject_and_review_shows_it(client, marketer):
    """Issue 15 defect: a free-text email campaign had no subject to ask for (it went out empty).
    The message step asks for one when the channel is email and free text is written."""
    channel = ChannelFactory(name="Mail", kind="email", official_account=None)
    campaign = CampaignFactory(channel=channel, template=None, param_mapping={})
    r = client.post(wizard_url(campaign, 2), {"content": "<p>Chào {{customer_name}}</p>"})
    assert r.status_code == 200 and "subject" in r.context["form"].errors
    assert b'id="id_subject"' in r.content
    campaign.refresh_from_db()
    assert campaign.content == "" and campaign.subject == ""  # nothing saved
    r = client.post(
        wizard_url(campaign, 2),
        {"content": "<p>Chào {{customer_name}}</p>", "subject": "Chào {{customer_name}}"},
    )
    assert r.status_code == 302 and r["Location"] == wizard_url(campaign, 3)
    campaign.refresh_from_db()
    assert campaign.subject == "Chào {{customer_name}}"
    campaign.lists.add(ContactListFactory(size=1))
    r = client.get(wizard_url(campaign, 5))
    assert 'id="review-subject"' in r.content.decode()
    assert "Chào {{customer_name}}" in r.content.decode()
