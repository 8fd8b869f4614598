"""A person who may change a provider account cannot send its secrets to another host.

- Outside a test environment (LOA_ALLOW_HTTP_PROVIDER_URLS false, the default when DEBUG is off
  or DJANGO_ENV=production) only https:// base URLs are accepted, and no call leaves over http
  even for an account saved before (the transport refuses it).
- Changing the base URL of an account that holds secrets needs the secrets entered again in the
  same save: whoever points the account elsewhere must already know them.
Through the admin form (client.post), as a person would do it."""

from __future__ import annotations

import pytest
import responses
from django.urls import reverse

from providers import services
from providers.models import ProviderAccount
from providers.shared.errors import Refused
from tests.factories import ProviderAccountFactory

pytestmark = pytest.mark.django_db

MMP = "https://mmp.example.test"


@pytest.fixture(autouse=True)
def _english(client, english):
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"


@pytest.fixture
def https_only(settings):
    settings.LOA_ALLOW_HTTP_PROVIDER_URLS = False
    return settings


def _form(account: ProviderAccount | None = None, **fields) -> dict:
    """The account form as the admin posts it (no Zalo OA inline rows)."""
    data = {
        "name": account.name if account else "mmp-1",
        "kind": account.kind if account else "vna_mmp",
        "base_url": account.base_url if account else MMP,
        "settings": "{}",
        "rate_limit": "",
        "is_active": "on",
        "official_accounts-TOTAL_FORMS": "0",
        "official_accounts-INITIAL_FORMS": "0",
        "official_accounts-MIN_NUM_FORMS": "0",
        "official_accounts-MAX_NUM_FORMS": "1000",
    }
    data.update(fields)
    return data


def _change(admin_client, account, **fields):
    url = reverse("admin:providers_provideraccount_change", args=[account.pk])
    return admin_client.post(url, _form(account, **fields))


def test_http_base_url_is_refused_outside_a_test_environment(admin_client, https_only):
    add = reverse("admin:providers_provideraccount_add")
    resp = admin_client.post(add, _form(base_url="http://collector.example.net"))
    assert resp.status_code == 200
    assert b"https://" in resp.content and b"LOA_ALLOW_HTTP_PROVIDER_URLS" in resp.content
    assert not ProviderAccount.objects.filter(name="mmp-1").exists()
    resp = admin_client.post(add, _form(base_url="ftp://collector.example.net"))
    assert not ProviderAccount.objects.filter(name="mmp-1").exists()
    resp = admin_client.post(add, _form(base_url=MMP, secret_api_key="k"))
    assert resp.status_code == 302, resp.content[:2000]
    assert ProviderAccount.objects.get(name="mmp-1").base_url == MMP


def test_http_base_url_is_accepted_where_the_setting_allows_it(admin_client, settings):
    settings.LOA_ALLOW_HTTP_PROVIDER_URLS = True
    add = reverse("admin:providers_provideraccount_add")
    resp = admin_client.post(add, _form(base_url="http://127.0.0.1:8765"))
    assert resp.status_code == 302, resp.content[:2000]


@responses.activate
def test_test_connection_never_sends_secrets_over_http(https_only):
    """An account saved with an http base URL before the rule (or through the ORM): the
    connection test refuses in words, and no request leaves."""
    account = ProviderAccountFactory(
        kind="vna_mmp", base_url="http://collector.example.net", secrets={"api_key": "MMP-K"}
    )
    with pytest.raises(Refused) as refused:
        services.account_test_connection(account=account)
    assert "https" in str(refused.value.message)
    assert len(responses.calls) == 0


def test_changing_the_base_url_needs_the_secrets_again(admin_client, settings):
    settings.LOA_ALLOW_HTTP_PROVIDER_URLS = True
    account = ProviderAccountFactory(kind="vna_mmp", base_url=MMP, secrets={"api_key": "MMP-K"})
    resp = _change(admin_client, account, base_url="https://collector.example.net")
    assert resp.status_code == 200
    assert b"enter the secrets again" in resp.content
    account.refresh_from_db()
    assert account.base_url == MMP and account.get_secrets() == {"api_key": "MMP-K"}

    # Other changes keep the secrets without re-entering them.
    resp = _change(admin_client, account, rate_limit="5")
    assert resp.status_code == 302, resp.content[:2000]

    # With the secret entered in the same save, the change is accepted.
    resp = _change(
        admin_client, account, base_url="https://mmp2.example.test", secret_api_key="NEW-K"
    )
    assert resp.status_code == 302, resp.content[:2000]
    account.refresh_from_db()
    assert account.base_url == "https://mmp2.example.test"
    assert account.get_secrets() == {"api_key": "NEW-K"}


def test_changing_the_kind_or_a_settings_url_also_needs_the_secrets(admin_client, settings):
    """eSMS's status host is a setting, and a new kind has another default address: both move
    the secrets elsewhere too."""
    settings.LOA_ALLOW_HTTP_PROVIDER_URLS = True
    account = ProviderAccountFactory(kind="esms", secrets={"api_key": "A", "secret_key": "S"})
    resp = _change(
        admin_client, account, settings='{"status_base_url": "https://collector.example.net"}'
    )
    assert resp.status_code == 200 and b"enter the secrets again" in resp.content
    resp = _change(admin_client, account, kind="etelecom")
    assert resp.status_code == 200 and b"enter the secrets again" in resp.content
    resp = _change(
        admin_client,
        account,
        settings='{"status_base_url": "https://collector.example.net"}',
        secret_api_key="A2",
        secret_secret_key="S2",
    )
    assert resp.status_code == 302, resp.content[:2000]


def test_clearing_the_secrets_allows_a_new_base_url(admin_client, settings):
    settings.LOA_ALLOW_HTTP_PROVIDER_URLS = True
    account = ProviderAccountFactory(kind="vna_mmp", base_url=MMP, secrets={"api_key": "MMP-K"})
    resp = _change(admin_client, account, base_url="https://other.example.test", clear_secrets="on")
    assert resp.status_code == 302, resp.content[:2000]
    account.refresh_from_db()
    assert account.get_secrets() == {}
