"""Fixtures of the API tests: an application, keys with scopes, a ZNS channel and template."""

import pytest
from django.test import Client

from campaigns.api.models import PREFIX_LENGTH, ApiApplication, ApiKey
from tests.factories import ChannelFactory, TemplateFactory

ALL_SCOPES = [s.value for s in ApiKey.Scope]


@pytest.fixture(autouse=True)
def _api_cache():
    from django.core.cache import caches

    from campaigns.api.cache import cache_clear

    caches["api"].clear()
    cache_clear()
    yield
    caches["api"].clear()
    cache_clear()


def make_key(app: ApiApplication, *, scopes=None, **fields) -> tuple[ApiKey, str]:
    raw = ApiKey.generate()
    key = ApiKey.objects.create(
        application=app,
        name=fields.pop("name", "test key"),
        prefix=raw[:PREFIX_LENGTH],
        key_hash=ApiKey.hash(raw),
        scopes=ALL_SCOPES if scopes is None else scopes,
        **fields,
    )
    return key, raw


@pytest.fixture
def app(db):
    return ApiApplication.objects.create(name="Shop A")


@pytest.fixture
def channel(db):
    return ChannelFactory()


@pytest.fixture
def template(channel):
    return TemplateFactory(account=channel.account, official_account=channel.official_account)


@pytest.fixture
def api_key(app):
    return make_key(app)


def bearer(raw: str, lang: str = "en") -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}", HTTP_ACCEPT_LANGUAGE=lang)


@pytest.fixture
def api(api_key) -> Client:
    """A test client authenticated with a key of every scope, speaking English."""
    return bearer(api_key[1])
