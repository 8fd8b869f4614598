"""A provider secret never appears in a rendered admin page, a log line, a recorded row or an
export, even when the provider echoes it back in an error reply.

The strongest form of "never recorded": after a campaign has gone through eSMS (mocked with
`responses`) with replies echoing the ApiKey, a full `dumpdata` of the database does not contain
any secret in plain text (the encrypted columns hold ciphertext only)."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re

import pytest
import responses
from django.contrib import admin
from django.core.management import call_command
from django.urls import NoReverseMatch, reverse

from campaigns.engine.lifecycle import campaign_send_now
from campaigns.models import Campaign, Message, MessageAttempt
from providers.models import OfficialAccount, ProviderAccount
from tests.factories import (
    CampaignFactory,
    ChannelFactory,
    ContactListFactory,
    OfficialAccountFactory,
    ProviderAccountFactory,
)
from webhooks.models import WebhookEvent

API_KEY = "AKsecret0001XYZapikey"
SECRET_KEY = "SKsecret0002XYZsecretkey"
OA_SECRET = "OAsecret0003XYZoakey"
SECRETS = (API_KEY, SECRET_KEY, OA_SECRET)
ESMS = re.compile(r"https://rest\.esms\.vn/.*")


def assert_clean(text: str, where: str) -> None:
    for s in SECRETS:
        assert s not in text, f"secret {s[:8]}... found in {where}"


@pytest.fixture
def esms_account(db):
    acc = ProviderAccountFactory(
        kind="esms", secrets={"api_key": API_KEY, "secret_key": SECRET_KEY}
    )
    oa = OfficialAccountFactory(account=acc)
    oa.set_secret(OA_SECRET)
    oa.save()
    return acc


@pytest.fixture
def console_output():
    """The configured console handler (settings.LOGGING, with its filters), writing to a
    buffer: what an operator's log files would get."""
    from config.logging import JsonFormatter, PlainFormatter

    root = logging.getLogger()
    handlers = [h for h in root.handlers if isinstance(h.formatter, JsonFormatter | PlainFormatter)]
    assert handlers, "settings.LOGGING's console handler is not installed"
    buf = io.StringIO()
    old = [h.setStream(buf) for h in handlers]
    levels = {n: logging.getLogger(n).level for n in ("loa", "urllib3", "django.request")}
    logging.getLogger("loa").setLevel(logging.DEBUG)
    yield buf
    for h, stream in zip(handlers, old, strict=True):
        h.setStream(stream)
    for n, lvl in levels.items():
        logging.getLogger(n).setLevel(lvl)


def echo_error(request):
    """An eSMS error reply that echoes the credentials it was sent (a provider bug we must
    survive): CodeResult 101 = wrong ApiKey/SecretKey."""
    body = json.loads(request.body)
    return (
        200,
        {"Content-Type": "application/json"},
        json.dumps(
            {
                "CodeResult": "101",
                "ErrorMessage": f"ApiKey {body.get('ApiKey')} / SecretKey {body.get('SecretKey')} "
                f"is not valid (raw: {body.get('ApiKey')})",
                "ApiKey": body.get("ApiKey"),
            }
        ),
    )


def echo_accept(request):
    body = json.loads(request.body)
    return (
        200,
        {"Content-Type": "application/json"},
        json.dumps({"CodeResult": "100", "SMSID": f"sms-{body['RequestId']}", "Echo": body}),
    )


def _send_with_echoing_errors(account) -> Campaign:
    cl = ContactListFactory(size=6)
    campaign = CampaignFactory(lists=[cl], channel=ChannelFactory(account=account))
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add_callback(responses.POST, ESMS, callback=echo_error)
        campaign_send_now(campaign_id=campaign.pk)
        sent_bodies = [c.request.body for c in rsps.calls]
    # the secrets really went out (so the checks that follow are not vacuous) ...
    assert sent_bodies and API_KEY in sent_bodies[0].decode()
    campaign.refresh_from_db()
    # ... the engine paused on the configuration error, and recorded attempts
    assert campaign.status == Campaign.Status.PAUSED
    assert MessageAttempt.objects.filter(message__campaign=campaign).exists()
    return campaign


@pytest.mark.django_db(transaction=True)
def test_echoed_secret_stays_out_of_recorded_bodies_logs_and_admin_pages(
    esms_account, console_output, admin_client
):
    campaign = _send_with_echoing_errors(esms_account)
    for row in MessageAttempt.objects.values("request_body", "response_body", "status_code"):
        assert_clean(json.dumps(row, default=str), "a MessageAttempt body")
        assert '"ApiKey": "***"' in row["request_body"]
    assert API_KEY not in ProviderAccount.objects.get().secrets_encrypted
    for url in (
        reverse("admin:campaigns_message_changelist") + f"?campaign__id__exact={campaign.pk}",
        reverse("admin:providers_provideraccount_changelist"),
        reverse("admin:providers_officialaccount_changelist"),
    ):
        r = admin_client.get(url)
        assert r.status_code == 200, url
        assert_clean(r.content.decode(), url)
    assert_clean(console_output.getvalue(), "the log output")


@pytest.mark.django_db(transaction=True)
def test_echoed_secret_is_in_no_row_page_or_export(esms_account, admin_client):
    campaign = _send_with_echoing_errors(esms_account)
    for row in MessageAttempt.objects.all().values():
        assert_clean(json.dumps(row, default=str), "a MessageAttempt row")
    for row in Message.objects.all().values():
        assert_clean(json.dumps(row, default=str), "a Message row")
    assert_clean(campaign.status_reason, "the campaign's status reason")
    # the whole database, as text
    dump = io.StringIO()
    call_command("dumpdata", stdout=dump)
    assert_clean(dump.getvalue(), "dumpdata")
    for url in (
        reverse("admin:campaigns_campaign_change", args=[campaign.pk]),
        reverse("admin:campaigns_message_change", args=[Message.objects.first().pk]),
    ):
        r = admin_client.get(url)
        assert r.status_code == 200, url
        assert_clean(r.content.decode(), url)
    export = admin_client.get(reverse("admin:campaigns_campaign_export", args=[campaign.pk]))
    assert export.status_code == 200
    assert_clean(b"".join(export.streaming_content).decode("utf-8-sig"), "the CSV export")


def _send_with_crashing_transport(account) -> None:
    import requests

    cl = ContactListFactory(size=2)
    campaign = CampaignFactory(lists=[cl], channel=ChannelFactory(account=account))
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        # an unexpected exception whose text carries the key (a library quoting its input)
        rsps.add(
            responses.POST, ESMS, body=RuntimeError(f"cannot encode ApiKey={API_KEY} {SECRET_KEY}")
        )
        rsps.add(
            responses.POST,
            ESMS,
            body=requests.exceptions.ConnectionError(f"reset while sending {API_KEY}"),
        )
        campaign_send_now(campaign_id=campaign.pk)


@pytest.mark.django_db(transaction=True)
def test_secret_is_not_logged_when_the_adapter_crashes_or_the_connection_breaks(
    esms_account, console_output
):
    _send_with_crashing_transport(esms_account)
    out = console_output.getvalue()
    assert "Traceback" in out, "the adapter crash was expected to be logged with its traceback"
    assert_clean(out, "the log output")
    for row in MessageAttempt.objects.values("request_body", "response_body"):
        assert_clean(json.dumps(row, default=str), "a MessageAttempt body")


@pytest.mark.django_db(transaction=True)
def test_secret_is_not_recorded_when_the_adapter_crashes(esms_account):
    _send_with_crashing_transport(esms_account)
    for row in MessageAttempt.objects.all().values():
        assert_clean(json.dumps(row, default=str), "a MessageAttempt row")
    for row in Message.objects.all().values():
        assert_clean(json.dumps(row, default=str), "a Message row")


@pytest.mark.django_db(transaction=True)
def test_accepted_sends_and_callbacks_record_no_secret(esms_account, client, admin_user):
    cl = ContactListFactory(size=3)
    campaign = CampaignFactory(lists=[cl], channel=ChannelFactory(account=esms_account))
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add_callback(responses.POST, ESMS, callback=echo_accept)
        campaign_send_now(campaign_id=campaign.pk)
    msg = Message.objects.filter(campaign=campaign).first()
    assert msg.status == Message.Status.SENT
    # eSMS calls back with a GET and query parameters (providers.md §2.5)
    r = client.get(
        esms_account.webhook_path(),
        {
            "SMSID": msg.provider_message_id,
            "RequestId": msg.idempotency_key,
            "SendStatus": "5",
            "SendSuccess": "1",
            "SendFailed": "0",
        },
    )
    assert r.status_code == 200
    assert WebhookEvent.objects.exists()
    for row in WebhookEvent.objects.all().values():
        assert_clean(json.dumps(row, default=str), "a WebhookEvent row")
    for row in MessageAttempt.objects.all().values():
        assert_clean(json.dumps(row, default=str), "a MessageAttempt row")
    dump = io.StringIO()
    call_command("dumpdata", stdout=dump)
    assert_clean(dump.getvalue(), "dumpdata")
    # the campaign's exports
    client.force_login(admin_user)
    export = client.get(reverse("admin:campaigns_campaign_export", args=[campaign.pk]))
    assert export.status_code == 200
    csv_text = b"".join(export.streaming_content).decode("utf-8-sig")
    assert msg.phone in csv_text
    assert_clean(csv_text, "the CSV export")
    if _has_url("admin:campaigns_campaign_export_xlsx", args=[campaign.pk]):
        import openpyxl

        r = client.get(reverse("admin:campaigns_campaign_export_xlsx", args=[campaign.pk]))
        assert r.status_code == 200
        data = b"".join(r.streaming_content) if r.streaming else r.content
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True)
        cells = " ".join(
            str(v) for ws in book.worksheets for row in ws.iter_rows(values_only=True) for v in row
        )
        assert msg.phone in cells
        assert_clean(cells, "the XLSX export")


def _has_url(name: str, args=None) -> bool:
    try:
        reverse(name, args=args)
    except NoReverseMatch:
        return False
    return True


def _admin_urls_for(model, objs) -> list[str]:
    info = (model._meta.app_label, model._meta.model_name)
    urls = []
    for suffix in ("changelist", "add"):
        name = "admin:{}_{}_{}".format(*info, suffix)
        if _has_url(name):
            urls.append(reverse(name))
    for obj in objs:
        for suffix in ("change", "history", "delete"):
            with contextlib.suppress(NoReverseMatch):
                urls.append(reverse("admin:{}_{}_{}".format(*info, suffix), args=[obj.pk]))
    return urls


@pytest.mark.django_db
def test_no_admin_page_renders_a_secret(esms_account, admin_client):
    """Every registered admin: changelist, add, and change/history/delete of a few rows, with a
    provider account, OAs, channels and a campaign present."""
    campaign = CampaignFactory(channel=ChannelFactory(account=esms_account))
    # the admin's own audit trail after an edit of the credentials
    url = reverse("admin:providers_provideraccount_change", args=[esms_account.pk])
    page = admin_client.get(url)
    assert page.status_code == 200
    assert_clean(page.content.decode(), url)
    crawled = 0
    for model in admin.site._registry:
        objs = list(model._default_manager.all()[:3])
        for u in _admin_urls_for(model, objs):
            r = admin_client.get(u)
            assert r.status_code in (200, 302, 403), f"{u}: {r.status_code}"
            assert_clean(r.content.decode(errors="replace"), u)
            crawled += 1
    assert crawled > 20
    assert campaign.pk


@pytest.mark.django_db
def test_secrets_stay_write_only_when_the_form_is_re_rendered(esms_account, admin_client):
    """A POST with new credentials and an error elsewhere re-renders the form: the typed secret
    must not come back in the page (PasswordInput(render_value=False))."""
    url = reverse("admin:providers_provideraccount_change", args=[esms_account.pk])
    new_key = "NEWsecret0004XYZtyped"
    form = {
        "name": "",  # required: the form is re-rendered with an error
        "kind": "esms",
        "base_url": "",
        "settings": "{}",
        "rate_limit": "",
        "is_active": "on",
        "secret_api_key": new_key,
        "official_accounts-TOTAL_FORMS": "0",
        "official_accounts-INITIAL_FORMS": "0",
    }
    r = admin_client.post(url, form)
    assert r.status_code == 200
    html = r.content.decode()
    assert "errorlist" in html
    assert new_key not in html
    assert_clean(html, "the re-rendered form")
    # the history after a successful save names the fields, never their values
    r = admin_client.post(url, {**form, "name": esms_account.name})
    assert r.status_code == 302, r.content.decode()[:2000]
    esms_account.refresh_from_db()
    assert esms_account.get_secrets()["api_key"] == new_key
    history = admin_client.get(
        reverse("admin:providers_provideraccount_history", args=[esms_account.pk])
    )
    assert history.status_code == 200
    assert new_key not in history.content.decode()
    oa = OfficialAccount.objects.get(account=esms_account)
    for view in ("change", "history"):
        page = admin_client.get(reverse(f"admin:providers_officialaccount_{view}", args=[oa.pk]))
        assert page.status_code == 200
        assert_clean(page.content.decode(), f"OA {view}")
