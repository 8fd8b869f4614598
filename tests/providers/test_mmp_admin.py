"""The MMP management API in the admin (issue 16): templates (create, get, update, delete, the
approved list through the sync), Zalo consent (check, request, from the channel and the contact
page) and a channel's information and status. Through the admin with the test client, as an
administrator: each page sends the request docs/PROVIDERS.md describes (assumed shapes,
providers/mmp/assumed.py), shows the answer, turns a provider 4xx/5xx/timeout into a sentence
(never a 500), and is refused to a marketer."""

from __future__ import annotations

import json

import pytest
import requests
import responses
from django.urls import reverse

from campaigns.models import Campaign
from providers.models import Channel
from templates_app.models import Template
from templates_app.tasks import templates_sync_all_task
from tests.factories import (
    CampaignFactory,
    ContactFactory,
    ContactListFactory,
    ProviderAccountFactory,
    TemplateFactory,
)

pytestmark = pytest.mark.django_db

BASE = "https://mmp.example.test"
KEY = "MMP-KEY-7"


@pytest.fixture
def account():
    return ProviderAccountFactory(
        name="VNA", kind="vna_mmp", base_url=BASE, secrets={"api_key": KEY}
    )


@pytest.fixture
def viber(account):
    return Channel.objects.create(
        name="Viber VNA", account=account, kind="viber", external_id="ch-viber"
    )


@pytest.fixture
def zalo(account):
    return Channel.objects.create(
        name="Zalo VNA", account=account, kind="zalo_zns", external_id="ch-zalo"
    )


def texts(resp) -> str:
    return " ".join(str(m) for m in resp.context["messages"])


def body(call) -> dict:
    return json.loads(call.request.body)


def bearer(call) -> bool:
    return call.request.headers["Authorization"] == f"Bearer {KEY}"


# ---- channel information and status ---------------------------------------------------------------


def test_channel_info_is_fetched_on_demand_and_shown(admin_client, viber):
    change = admin_client.get(reverse("admin:providers_channel_change", args=[viber.pk]))
    info_url = reverse("admin:providers_channel_provider_info", args=[viber.pk])
    assert info_url.encode() in change.content
    assert b"mmp-consent-link" not in change.content  # a Viber channel has no Zalo consent
    with responses.RequestsMock() as rsps:  # no call registered: a GET must ask nothing
        page = admin_client.get(info_url)
        assert page.status_code == 200 and b"mmp-info-fetch" in page.content
        assert b"docs/PROVIDERS.md" in page.content  # the assumed shapes say so, with a link
        rsps.add(
            responses.GET,
            f"{BASE}/api/v1/channel/ch-viber",
            json={"data": {"name": "Loa Viber", "status": "ACTIVE", "country": "VN"}},
        )
        rsps.add(
            responses.GET,
            f"{BASE}/api/v1/channel/ch-viber/status",
            json={"channelStatus": "CONNECTED", "echo": KEY},
        )
        page = admin_client.post(info_url)
        assert [c.request.method for c in rsps.calls] == ["GET", "GET"]
        assert all(bearer(c) for c in rsps.calls)
    html = page.content.decode()
    assert page.status_code == 200
    assert "Loa Viber" in html and "ACTIVE" in html and "data.country" in html
    assert 'id="mmp-status-value">CONNECTED<' in html
    assert KEY not in html  # the provider echoed the key: secrets never appear in the admin


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ({"status": 401, "json": {}}, "refused the credentials"),
        ({"status": 404, "json": {}}, "an address Loa assumed"),
        ({"status": 400, "json": {"errorMessage": "channel is archived"}}, "channel is archived"),
        ({"status": 503, "json": {}}, "server error (HTTP 503)"),
        ({"body": requests.exceptions.ReadTimeout("slow")}, "did not answer in time"),
    ],
)
def test_channel_info_errors_are_sentences(admin_client, viber, answer, expected):
    url = reverse("admin:providers_channel_provider_info", args=[viber.pk])
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add(responses.GET, f"{BASE}/api/v1/channel/ch-viber", **answer)
        rsps.add(responses.GET, f"{BASE}/api/v1/channel/ch-viber/status", json={"status": "OK"})
        page = admin_client.post(url)
    html = page.content.decode()
    assert page.status_code == 200
    assert expected in html
    assert 'id="mmp-status-value">OK<' in html  # one part failing does not hide the other


def test_channel_without_public_id_says_so(admin_client, account):
    channel = Channel.objects.create(name="no id", account=account, kind="sms")
    page = admin_client.post(reverse("admin:providers_channel_provider_info", args=[channel.pk]))
    assert page.status_code == 200 and b"publicId" in page.content


# ---- Zalo consent -----------------------------------------------------------------------------------


def test_consent_check_and_request(admin_client, zalo):
    change = admin_client.get(reverse("admin:providers_channel_change", args=[zalo.pk]))
    url = reverse("admin:providers_channel_zalo_consent", args=[zalo.pk])
    assert url.encode() in change.content
    form = admin_client.get(url + "?phone=84912345678")
    assert form.status_code == 200 and b'value="84912345678"' in form.content
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, f"{BASE}/api/v1/channel/zalo/consent", json={"consent": "GRANTED"})
        page = admin_client.post(url, {"phone": "+84 912 345 678", "op": "check"})
        (call,) = rsps.calls
        assert call.request.url.endswith("?publicId=ch-zalo&phone=84912345678") and bearer(call)
    assert page.status_code == 200
    assert "Consent granted" in page.content.decode()
    assert "Consent status for 84912345678: Consent granted" in texts(page)
    with responses.RequestsMock() as rsps:
        rsps.add(
            responses.POST,
            f"{BASE}/api/v1/channel/zalo/consent",
            json={"data": {"consentStatus": "REQUESTED", "requestId": "r-1"}},
        )
        page = admin_client.post(url, {"phone": "0912 345 678", "op": "request"})
        (call,) = rsps.calls
        assert body(call) == {"publicId": "ch-zalo", "phone": "84912345678"}
    html = page.content.decode()
    assert "Consent requested, not answered yet" in html and "data.requestId" in html
    assert "Consent request sent to 84912345678" in texts(page)


def test_consent_answers_loa_cannot_read_and_failures(admin_client, zalo):
    url = reverse("admin:providers_channel_zalo_consent", args=[zalo.pk])
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, f"{BASE}/api/v1/channel/zalo/consent", json={"consent": "MAYBE"})
        page = admin_client.post(url, {"phone": "0912345678", "op": "check"})
    assert "answered “MAYBE”, which Loa does not interpret" in page.content.decode()
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, f"{BASE}/api/v1/channel/zalo/consent", status=502, json={})
        page = admin_client.post(url, {"phone": "0912345678", "op": "request"})
        assert len(rsps.calls) == 1  # a request that changes something is never retried here
    html = page.content.decode()
    assert page.status_code == 200
    assert "server error (HTTP 502)" in html and "not known whether it made the change" in html
    bad = admin_client.post(url, {"phone": "12", "op": "check"})
    assert bad.status_code == 200 and b"errorlist" in bad.content


def test_consent_refuses_a_number_zalo_cannot_reach(admin_client, zalo):
    url = reverse("admin:providers_channel_zalo_consent", args=[zalo.pk])
    with responses.RequestsMock():  # nothing is asked
        page = admin_client.post(url, {"phone": "+855 12 345 678", "op": "check"})
    assert page.status_code == 200
    assert "This channel reaches Vietnam only: 85512345678" in page.content.decode()


def test_contact_page_links_to_consent_with_the_phone(admin_client, zalo, viber, client):
    contact = ContactFactory(phone="84912345678")
    page = admin_client.get(reverse("admin:campaigns_contact_change", args=[contact.pk]))
    link = reverse("admin:providers_channel_zalo_consent", args=[zalo.pk]) + "?phone=84912345678"
    assert link.encode() in page.content
    other = reverse("admin:providers_channel_zalo_consent", args=[viber.pk])
    assert other.encode() not in page.content  # Viber has no Zalo consent


# ---- templates ----------------------------------------------------------------------------------------


def test_create_template_on_the_provider(admin_client, account, viber):
    redirect = admin_client.post(
        reverse("admin:providers_provideraccount_changelist"),
        {"action": "create_template_on_provider", "_selected_action": [account.pk]},
    )
    url = reverse("admin:templates_app_template_mmp_create")
    assert redirect.status_code == 302 and redirect["Location"] == f"{url}?account={account.pk}"
    form = admin_client.get(redirect["Location"])
    assert form.status_code == 200 and b"Viber VNA" in form.content
    assert b"docs/PROVIDERS.md" in form.content and b"TEXT_WITH_ATTACHMENT" in form.content
    with responses.RequestsMock() as rsps:
        rsps.add(
            responses.POST,
            f"{BASE}/api/v1/template",
            json={"data": {"publicId": "tpl-9", "templateStatus": "PENDING"}},
        )
        resp = admin_client.post(
            redirect["Location"],
            {
                "channel": viber.pk,
                "name": "Chào mừng",
                "message_type": "TEXT",
                "content": "Chào {{name}}, mã {{code}}",
            },
            follow=True,
        )
        (call,) = rsps.calls
    assert bearer(call)
    # CreateFormTemplateMessage as docs/PROVIDERS.md assumes it (bodies.template_form).
    assert body(call) == {
        "name": "Chào mừng",
        "publicId": "ch-viber",
        "applicationId": 1,  # seed 000: 1 viber
        "messageType": "TEXT",
        "content": "Chào {{name}}, mã {{code}}",
        "params": ["name", "code"],
    }
    template = Template.objects.get(account=account, provider_template_id="tpl-9")
    assert template.status == Template.Status.PENDING and template.channel_kind == "viber"
    assert template.body == "Chào {{name}}, mã {{code}}" and template.synced_at is not None
    assert list(template.params.values_list("name", flat=True)) == ["name", "code"]
    assert resp.redirect_chain[-1][0].endswith(f"/{template.pk}/change/")
    assert "Chào mừng [tpl-9]: pending review at the provider" in texts(resp)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (
            {"status": 400, "json": {"errorMessage": "name already used"}},
            "refused the request (HTTP 400): name already used",
        ),
        ({"status": 401, "json": {}}, "refused the credentials"),
        ({"body": requests.exceptions.ReadTimeout("slow")}, "not known whether it made the change"),
        ({"json": {"ok": True}}, "not known whether it made the change"),  # no template id
    ],
)
def test_create_template_failures_are_shown(admin_client, account, viber, answer, expected):
    url = reverse("admin:templates_app_template_mmp_create") + f"?account={account.pk}"
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, f"{BASE}/api/v1/template", **answer)
        page = admin_client.post(
            url, {"channel": viber.pk, "name": "X", "message_type": "TEXT", "content": "Hi"}
        )
        assert len(rsps.calls) == 1  # a create is never retried blindly
    assert page.status_code == 200
    assert expected in page.content.decode()
    assert not Template.objects.filter(account=account).exists()


def _mmp_template(account, **kw) -> Template:
    fields = {
        "account": account,
        "official_account": None,
        "provider_template_id": "tpl-9",
        "name": "Chào mừng",
        "channel_kind": "viber",
        "body": "Chào {{name}}",
        "status": Template.Status.APPROVED,
        "price": 0,
    }
    fields.update(kw)
    template = TemplateFactory(**fields)
    Template.objects.filter(pk=template.pk).update(synced_at="2026-01-01T00:00:00Z")
    template.refresh_from_db()
    return template


def test_get_template_keeps_the_approval_state_current(admin_client, account, viber):
    template = _mmp_template(account)
    running = CampaignFactory(channel=viber, template=template, status=Campaign.Status.RUNNING)
    running.lists.add(ContactListFactory(size=1))
    change = admin_client.get(reverse("admin:templates_app_template_change", args=[template.pk]))
    get_url = reverse("admin:templates_app_template_mmp_get", args=[template.pk])
    assert get_url.encode() in change.content
    with responses.RequestsMock() as rsps:
        rsps.add(
            responses.GET,
            f"{BASE}/api/v1/template/tpl-9",
            json={"data": {"publicId": "tpl-9", "status": "DISABLED", "reason": "spam reports"}},
        )
        resp = admin_client.post(get_url, follow=True)
        assert bearer(rsps.calls[0])
    template.refresh_from_db()
    assert template.status == Template.Status.DISABLED and template.status_reason == "spam reports"
    assert template.name == "Chào mừng" and template.body == "Chào {{name}}"  # kept: not in answer
    running.refresh_from_db()
    assert running.status == Campaign.Status.PAUSED
    assert "disabled at the provider" in texts(resp) and running.name in texts(resp)


def test_get_template_with_a_status_loa_does_not_know_changes_nothing(admin_client, account):
    template = _mmp_template(account)
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, f"{BASE}/api/v1/template/tpl-9", json={"status": "ON_HOLD"})
        resp = admin_client.post(
            reverse("admin:templates_app_template_mmp_get", args=[template.pk]), follow=True
        )
    template.refresh_from_db()
    assert template.status == Template.Status.APPROVED
    assert "“ON_HOLD”, a status Loa does not know: unchanged" in texts(resp)
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, f"{BASE}/api/v1/template/tpl-9", status=500, json={})
        resp = admin_client.post(
            reverse("admin:templates_app_template_mmp_get", args=[template.pk]), follow=True
        )
    assert resp.status_code == 200 and "server error (HTTP 500)" in texts(resp)


def test_update_template_then_reads_its_state(admin_client, account, viber):
    template = _mmp_template(account)
    url = reverse("admin:templates_app_template_mmp_update", args=[template.pk])
    form = admin_client.get(url)
    assert form.status_code == 200 and "Chào {{name}}" in form.content.decode()
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, f"{BASE}/api/v1/template/tpl-9", json={"code": 0})
        rsps.add(
            responses.GET,
            f"{BASE}/api/v1/template/tpl-9",
            json={"publicId": "tpl-9", "templateStatus": "IN_REVIEW"},
        )
        resp = admin_client.post(
            url,
            {
                "channel": viber.pk,
                "name": "Chào mừng 2",
                "message_type": "TEXT",
                "content": "Xin chào {{name}} {{city}}",
            },
            follow=True,
        )
        update, get = rsps.calls
    assert body(update)["content"] == "Xin chào {{name}} {{city}}"
    assert body(update)["params"] == ["name", "city"] and get.request.method == "GET"
    template.refresh_from_db()
    assert template.status == Template.Status.PENDING and template.name == "Chào mừng 2"
    assert list(template.params.values_list("name", flat=True)) == ["name", "city"]
    assert "pending review at the provider" in texts(resp)


def test_delete_template_keeps_the_row_and_pauses_its_campaigns(admin_client, account, viber):
    template = _mmp_template(account)
    running = CampaignFactory(channel=viber, template=template, status=Campaign.Status.RUNNING)
    running.lists.add(ContactListFactory(size=1))
    finished = CampaignFactory(channel=viber, template=template, status=Campaign.Status.COMPLETED)
    url = reverse("admin:templates_app_template_mmp_delete", args=[template.pk])
    assert admin_client.get(url).status_code == 200
    with responses.RequestsMock():  # not confirmed: nothing is asked
        unconfirmed = admin_client.post(url, {})
    assert unconfirmed.status_code == 200 and b"errorlist" in unconfirmed.content
    with responses.RequestsMock() as rsps:
        rsps.add(responses.DELETE, f"{BASE}/api/v1/template/tpl-9", status=503, json={})
        failed = admin_client.post(url, {"confirm": "on"})
        assert len(rsps.calls) == 1
    assert "not known whether it made the change" in failed.content.decode()
    template.refresh_from_db()
    assert template.status == Template.Status.APPROVED
    with responses.RequestsMock() as rsps:
        rsps.add(responses.DELETE, f"{BASE}/api/v1/template/tpl-9", json={})
        resp = admin_client.post(url, {"confirm": "on"}, follow=True)
        assert bearer(rsps.calls[0])
    template.refresh_from_db()
    assert template.status == Template.Status.DELETED
    running.refresh_from_db()
    finished.refresh_from_db()
    assert running.status == Campaign.Status.PAUSED
    assert finished.status == Campaign.Status.COMPLETED and finished.template_id == template.pk
    assert "deleted at the provider" in texts(resp) and running.name in texts(resp)


def test_sync_lists_approved_per_channel_and_asks_about_the_others(admin_client, account, viber):
    pending = _mmp_template(account, status=Template.Status.PENDING)
    lost = _mmp_template(account, provider_template_id="tpl-gone", name="Gone?")
    with responses.RequestsMock() as rsps:
        rsps.add(
            responses.GET,
            f"{BASE}/api/v1/template/approved",
            json={"data": [{"publicId": "tpl-1", "name": "Welcome", "content": "Hi {{name}}"}]},
        )
        rsps.add(
            responses.GET,
            f"{BASE}/api/v1/template/tpl-9",
            json={"publicId": "tpl-9", "status": "REJECTED", "reason": "wording"},
        )
        rsps.add(responses.GET, f"{BASE}/api/v1/template/tpl-gone", status=404, json={})
        resp = admin_client.post(
            reverse("admin:providers_provideraccount_changelist"),
            {"action": "sync_templates", "_selected_action": [account.pk]},
            follow=True,
        )
        assert rsps.calls[0].request.url.endswith("approved?publicId=ch-viber")
    listed = Template.objects.get(account=account, provider_template_id="tpl-1")
    assert listed.status == Template.Status.APPROVED and listed.channel_kind == "viber"
    pending.refresh_from_db()
    assert pending.status == Template.Status.REJECTED and pending.status_reason == "wording"
    lost.refresh_from_db()
    # A 404 from an assumed path proves nothing: unchanged, and said.
    assert lost.status == Template.Status.APPROVED
    assert "Could not get template Gone?" in texts(resp)


def test_the_daily_sync_covers_mmp_accounts(account, viber):
    with responses.RequestsMock() as rsps:
        rsps.add(
            responses.GET,
            f"{BASE}/api/v1/template/approved",
            json={"data": [{"publicId": "tpl-1", "name": "Welcome", "content": "Hi"}]},
        )
        reports = templates_sync_all_task()
    assert [r["account"] for r in reports] == ["VNA"] and reports[0]["created"] == 1


def test_metfone_channels_have_information_but_no_zalo_consent(admin_client):
    metfone = ProviderAccountFactory(
        name="Metfone", kind="metfone_mmp", base_url=BASE, secrets={"api_key": KEY}
    )
    sms = Channel.objects.create(name="SMS KH", account=metfone, kind="sms", external_id="ch-kh")
    change = admin_client.get(reverse("admin:providers_channel_change", args=[sms.pk]))
    assert b"mmp-info-link" in change.content and b"mmp-consent-link" not in change.content
    url = reverse("admin:providers_channel_zalo_consent", args=[sms.pk])
    with responses.RequestsMock():  # refused before any call
        page = admin_client.post(url, {"phone": "0912345678", "op": "check"})
    assert "only on the Zalo channels of a VNA MMP account" in page.content.decode()


def test_the_assumptions_page_serves_the_mmp_section(admin_client):
    page = admin_client.get(reverse("admin:providers_mmp_assumptions"))
    assert page.status_code == 200 and page["Content-Type"].startswith("text/plain")
    text = page.content.decode()
    assert text.startswith("## VNA MMP and Metfone MMP") and "template_form" in text


# ---- a marketer ---------------------------------------------------------------------------------------


def test_a_marketer_sees_no_tool_and_is_refused(client, marketer, account, viber, zalo):
    template = _mmp_template(account)
    contact = ContactFactory(phone="84912345678")
    change = client.get(reverse("admin:templates_app_template_change", args=[template.pk]))
    assert change.status_code == 200
    assert b"mmp-get-button" not in change.content and b"mmp-delete-link" not in change.content
    listing = client.get(reverse("admin:templates_app_template_changelist"))
    assert b"mmp-create-link" not in listing.content
    channel_page = client.get(reverse("admin:providers_channel_change", args=[zalo.pk]))
    assert b"mmp-consent-link" not in channel_page.content
    assert b"mmp-info-link" not in channel_page.content
    with responses.RequestsMock():  # whatever is asked, no provider call is made
        for url, method in [
            (reverse("admin:providers_channel_provider_info", args=[viber.pk]), "post"),
            (reverse("admin:providers_channel_zalo_consent", args=[zalo.pk]), "post"),
            (reverse("admin:templates_app_template_mmp_create"), "get"),
            (reverse("admin:templates_app_template_mmp_get", args=[template.pk]), "post"),
            (reverse("admin:templates_app_template_mmp_update", args=[template.pk]), "post"),
            (reverse("admin:templates_app_template_mmp_delete", args=[template.pk]), "post"),
        ]:
            resp = getattr(client, method)(url, {"phone": "0912345678", "confirm": "on"})
            assert resp.status_code == 403, url
    contact_page = client.get(reverse("admin:campaigns_contact_change", args=[contact.pk]))
    assert b"mmp-consent-contact" not in contact_page.content
