"""Issue 17, item 6: a provider account's settings are named fields per provider kind
(providers/account_settings.py), the JSON only for the keys without a field; through the admin."""

import re

import pytest
from django.urls import reverse
from django.utils import translation

from providers.account_settings import (
    BOOL,
    CHOICE,
    SETTING_FIELDS,
    setting_choices,
    setting_field_name,
    setting_fields,
)
from providers.models import ProviderAccount
from providers.registry import PROVIDERS
from providers.services import account_settings_errors
from tests.factories import ProviderAccountFactory

pytestmark = pytest.mark.django_db

API_KEY = "esms-KEY-7f3a9c0001"


@pytest.fixture(autouse=True)
def english(client):
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    with translation.override("en"):
        yield


@pytest.fixture
def esms(db):
    return ProviderAccountFactory(
        name="eSMS chính",
        kind="esms",
        secrets={"api_key": API_KEY, "secret_key": "esms-SECRET-0002"},
        settings={"sandbox": True, "http": {"connect_timeout": 4}},
    )


def f(kind, key):
    return setting_field_name(kind, key)


def esms_post(account, **named):
    """What the browser posts for the eSMS change page: every named field as shown, changed
    by `named`, the advanced JSON as shown."""
    values = {
        f("esms", "api_version"): "v4",
        f("esms", "sending_mode"): "",
        f("esms", "campaign_name"): "",
        f("esms", "phone_format"): "local",
        f("esms", "journey_id"): "",
        f("esms", "journey_id_field"): "",
        f("esms", "status_base_url"): "https://status-sms.esms.vn",
        f("esms", "zns_sms_type"): "25",
        f("esms", "sandbox"): "on",
    }
    values.update(named)
    data = {
        "name": account.name,
        "kind": "esms",
        "base_url": "",
        "rate_limit": "",
        "is_active": "on",
        "settings_advanced": '{"http": {"connect_timeout": 4}}',
        "official_accounts-TOTAL_FORMS": "0",
        "official_accounts-INITIAL_FORMS": "0",
        **values,
    }
    return {k: v for k, v in data.items() if v is not None}


def test_the_table_matches_the_adapters():
    """Every named key is one its adapter has, and every choice default is a choice."""
    for kind, specs in SETTING_FIELDS.items():
        cls = PROVIDERS[kind]
        for spec in specs:
            assert spec.key in cls.default_settings, (kind, spec.key)
            default = cls.default_settings[spec.key]
            if spec.kind == CHOICE:
                assert str(default) in dict(spec.choices), (kind, spec.key)
            if spec.kind == BOOL:
                assert isinstance(default, bool), (kind, spec.key)
            assert spec.help_text, (kind, spec.key)
    assert set(SETTING_FIELDS) == set(PROVIDERS)


def test_the_settings_check_takes_its_choices_from_the_table():
    assert setting_choices("esms")["sending_mode"] == ("", "1", "3")
    assert setting_choices("etelecom")["sending_mode"] == ("default", "tag3")
    assert account_settings_errors(kind="esms", settings={"sending_mode": "3"}) == []
    assert account_settings_errors(kind="esms", settings={"sending_mode": "tag3"}) == [
        "Setting sending_mode must be one of: , 1, 3."
    ]
    assert account_settings_errors(kind="esms", settings={"zns_sms_type": "99"})
    assert account_settings_errors(kind="etelecom", settings={"phone_format": "plus"})
    assert account_settings_errors(kind="vna_mmp", settings={"phone_format": "plus"}) == []


def test_the_esms_page_shows_named_fields_with_help_from_the_seed(admin_client, esms):
    page = admin_client.get(
        reverse("admin:providers_provideraccount_change", args=[esms.pk])
    ).content.decode()
    assert "Settings: eSMS.vn" in page
    for spec in setting_fields("esms"):
        assert f'name="{f("esms", spec.key)}"' in page
    assert "Message is not charged" in page  # seed 003's words on Sandbox
    assert "The campaign name of request" in page  # seed 003's campaignid
    # the account's stored value, and the defaults of the others
    assert re.search(rf'name="{f("esms", "sandbox")}"[^>]*checked', page)
    assert re.search(r'<option value="v4" selected>V4 \(parameters in order\)</option>', page)
    # other kinds' fields are not on an eSMS account's page
    assert f("etelecom", "mode") not in page
    # the advanced JSON holds only what has no field
    advanced = re.search(r'<textarea name="settings_advanced"[^>]*>(.*?)</textarea>', page, re.S)
    assert advanced and "connect_timeout" in advanced.group(1)
    assert "sandbox" not in advanced.group(1)
    assert '<textarea name="settings"' not in page
    assert API_KEY not in page  # secrets stay write-only


def test_saving_named_fields_merges_with_the_advanced_json(admin_client, esms):
    url = reverse("admin:providers_provideraccount_change", args=[esms.pk])
    response = admin_client.post(
        url,
        esms_post(
            esms,
            **{
                f("esms", "api_version"): "v6",
                f("esms", "sending_mode"): "3",
                f("esms", "campaign_name"): "  Tết 2027 ",
                f("esms", "sandbox"): None,  # unticked
            },
        ),
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    esms.refresh_from_db()
    assert esms.settings == {
        "http": {"connect_timeout": 4},
        "api_version": "v6",
        "sending_mode": "3",
        "campaign_name": "Tết 2027",
        "sandbox": False,  # stored before: kept, now false
    }
    assert esms.get_secrets()["api_key"] == API_KEY  # a blank secret field keeps it


def test_a_named_key_in_the_advanced_json_is_refused(admin_client, esms):
    url = reverse("admin:providers_provideraccount_change", args=[esms.pk])
    data = esms_post(esms)
    data["settings_advanced"] = '{"api_version": "v6"}'
    response = admin_client.post(url, data)
    assert response.status_code == 200
    assert "“api_version” has its own field above: set it there." in response.content.decode()
    data["settings_advanced"] = '{"rate_limits": "fast"}'
    response = admin_client.post(url, data)
    assert "Setting rate_limits must be a JSON object." in response.content.decode()
    data["settings_advanced"] = "[1]"
    response = admin_client.post(url, data)
    assert "Settings must be a JSON object" in response.content.decode()
    esms.refresh_from_db()
    assert esms.settings == {"sandbox": True, "http": {"connect_timeout": 4}}


def test_adding_an_etelecom_account_stores_only_what_differs(admin_client):
    add = reverse("admin:providers_provideraccount_add")
    page = admin_client.get(add).content.decode()
    # every kind's settings are on "Add"; account_settings.js shows the chosen one
    assert "loa-settings-etelecom" in page and "loa-settings-esms" in page
    assert "loa/account_settings.js" in page
    response = admin_client.post(
        add,
        {
            "name": "eTelecom partner",
            "kind": "etelecom",
            "base_url": "",
            "rate_limit": "",
            "is_active": "on",
            "settings_advanced": "",
            "secret_shop_key": "shop-KEY-0003",
            f("etelecom", "mode"): "partner",
            f("etelecom", "environment"): "production",
            f("etelecom", "path_prefix"): "v1",
            f("etelecom", "sending_mode"): "default",
            f("etelecom", "phone_format"): "international",
            f("etelecom", "journey_id"): "",
            f("etelecom", "journey_id_field"): "",
            # another kind's fields, posted as the page has them, are not read
            f("esms", "api_version"): "v6",
            "official_accounts-TOTAL_FORMS": "0",
            "official_accounts-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    account = ProviderAccount.objects.get(name="eTelecom partner")
    assert account.settings == {"mode": "partner"}
    assert account.get_secrets() == {"shop_key": "shop-KEY-0003"}


def test_an_mmp_account_keeps_its_structures_in_the_advanced_json(admin_client):
    account = ProviderAccountFactory(
        kind="vna_mmp",
        base_url="https://mmp.example",
        settings={"auth_header": "x-api-key", "application_ids": {"zalo_zns": 7}},
    )
    url = reverse("admin:providers_provideraccount_change", args=[account.pk])
    page = admin_client.get(url).content.decode()
    assert re.search(rf'name="{f("vna_mmp", "auth_header")}"[^>]*value="x-api-key"', page)
    # "Bearer " keeps its space: a stripped prefix would glue the key to it
    assert re.search(rf'name="{f("vna_mmp", "auth_prefix")}"[^>]*value="Bearer "', page)
    advanced = re.search(r'<textarea name="settings_advanced"[^>]*>(.*?)</textarea>', page, re.S)
    assert "application_ids" in advanced.group(1) and "auth_header" not in advanced.group(1)
    response = admin_client.post(
        url,
        {
            "name": account.name,
            "kind": "vna_mmp",
            "base_url": "https://mmp.example",
            "rate_limit": "",
            "is_active": "on",
            "settings_advanced": '{"application_ids": {"zalo_zns": 7}}',
            f("vna_mmp", "auth_header"): "x-api-key",
            f("vna_mmp", "auth_prefix"): "Bearer ",
            f("vna_mmp", "phone_format"): "plus",
            f("vna_mmp", "email_field"): "email",
            f("vna_mmp", "email_from"): "",
            f("vna_mmp", "test_channel_id"): "",
            "official_accounts-TOTAL_FORMS": "0",
            "official_accounts-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    account.refresh_from_db()
    assert account.settings == {
        "application_ids": {"zalo_zns": 7},
        "auth_header": "x-api-key",
        "phone_format": "plus",
    }
