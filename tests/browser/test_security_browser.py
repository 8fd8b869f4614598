"""In a real browser: a Contact staff user cannot reach provider accounts, no page ever renders a
provider secret (not in the HTML, not in any input's value), and a sign-in lockout is explained.

Uses the shared fixtures of tests/browser/conftest.py (Playwright driving Debian's chromium;
skipped with the reason when either is missing)."""

from __future__ import annotations

import os

import pytest
from django.utils import translation

from config.security import locked_message
from tests.browser.conftest import PASSWORD, ensure_roles, login, logout
from tests.factories import (
    CampaignFactory,
    ChannelFactory,
    OfficialAccountFactory,
    ProviderAccountFactory,
    UserFactory,
)

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("clear_cache"),
]

API_KEY = "BRapikey0001secretXYZ"
SECRET_KEY = "BRsecretkey0002secretXYZ"
OA_SECRET = "BRoasecret0003secretXYZ"
TYPED = "BRtyped0004secretXYZ"
SECRETS = (API_KEY, SECRET_KEY, OA_SECRET, TYPED)


@pytest.fixture
def world():
    ensure_roles()
    account = ProviderAccountFactory(
        name="eSMS production",
        kind="esms",
        secrets={"api_key": API_KEY, "secret_key": SECRET_KEY},
    )
    oa = OfficialAccountFactory(account=account, name="Shop OA")
    oa.set_secret(OA_SECRET)
    oa.save()
    channel = ChannelFactory(account=account, official_account=oa, name="ZNS via eSMS")
    CampaignFactory(channel=channel, name="Spring sale")
    UserFactory(username="boss", is_superuser=True)
    UserFactory(username="contacts1", groups=["Contact staff"])
    UserFactory(username="marketer1", groups=["Marketer"])
    return {"account": account, "oa": oa, "channel": channel}


def everything_rendered(page) -> str:
    """The HTML plus every form control's current value (a value set by script would not be in
    the serialized HTML)."""
    values = page.eval_on_selector_all(
        "input, textarea, select", "els => els.map(e => e.value || '').join('\\n')"
    )
    return page.content() + "\n" + values


def assert_no_secret(page, where: str) -> None:
    text = everything_rendered(page)
    for s in SECRETS:
        assert s not in text, f"secret {s[:10]}... rendered on {where}"


def test_contact_staff_cannot_reach_provider_accounts(page, world):
    login(page, "contacts1")
    index = page.content()
    assert "/admin/campaigns/contact/" in index  # their own room is there ...
    assert "/admin/providers/" not in index  # ... provider rooms are not even listed
    account, oa, channel = world["account"], world["oa"], world["channel"]
    for url in (
        "/admin/providers/",
        "/admin/providers/provideraccount/",
        f"/admin/providers/provideraccount/{account.pk}/change/",
        f"/admin/providers/provideraccount/{account.pk}/history/",
        "/admin/providers/provideraccount/add/",
        "/admin/providers/officialaccount/",
        f"/admin/providers/officialaccount/{oa.pk}/change/",
        f"/admin/providers/channel/{channel.pk}/change/",
    ):
        response = page.goto(url)
        assert response.status in (403, 404), f"{url}: {response.status}"
        assert "eSMS production" not in page.content() or response.status == 404
        assert_no_secret(page, url)


def test_no_page_renders_a_secret_even_after_editing_it(page, world):
    account, oa = world["account"], world["oa"]
    login(page, "boss")
    page.goto(f"/admin/providers/provideraccount/{account.pk}/change/")
    assert page.locator("input[type=password]").count() >= 2
    assert_no_secret(page, "the account form")
    # type a new key and save: it is stored, and never shown again
    page.fill("input[name=secret_api_key]", TYPED)
    page.click("input[name=_continue]")
    page.wait_for_selector(".messagelist")
    assert_no_secret(page, "the account form after saving")
    account.refresh_from_db()
    assert account.get_secrets()["api_key"] == TYPED
    for url in (
        "/admin/",
        "/admin/providers/provideraccount/",
        f"/admin/providers/provideraccount/{account.pk}/history/",
        f"/admin/providers/officialaccount/{oa.pk}/change/",
        "/admin/providers/officialaccount/",
        "/admin/providers/channel/",
        "/admin/campaigns/campaign/",
    ):
        page.goto(url)
        assert_no_secret(page, url)
    logout(page)
    # a marketer may look at OAs and channels, never at their secrets
    login(page, "marketer1")
    for url in (
        f"/admin/providers/officialaccount/{oa.pk}/change/",
        "/admin/providers/channel/",
    ):
        response = page.goto(url)
        assert response.status == 200, url
        assert_no_secret(page, url)
    response = page.goto(f"/admin/providers/provideraccount/{account.pk}/change/")
    assert response.status == 403


def test_repeated_wrong_passwords_lock_the_sign_in_with_a_clear_message(page, world):
    for i in range(5):
        page.goto("/admin/login/?next=/admin/")
        page.fill("#id_username", "boss")
        page.fill("#id_password", f"wrong-{i}")
        page.click("input[type=submit]")
        page.wait_for_selector(".errornote")
    # the `page` fixture's browser asks for English (tests/browser/conftest.py)
    with translation.override("en"):
        expected = locked_message(15 * 60)
    assert page.inner_text(".errornote").strip() == expected
    page.fill("#id_username", "boss")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector(".errornote")
    assert page.inner_text(".errornote").strip() == expected
    assert page.locator("#user-tools").count() == 0
