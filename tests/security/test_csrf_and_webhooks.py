"""CSRF on every admin form, webhook tokens that cannot be enumerated, and request size limits."""

from __future__ import annotations

import contextlib
import re

import pytest
from django.contrib import admin
from django.test import Client, override_settings
from django.urls import NoReverseMatch, reverse

from tests.factories import CampaignFactory, ProviderAccountFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clear_cache")]


@pytest.fixture
def csrf_client(admin_user):
    c = Client(enforce_csrf_checks=True)
    c.force_login(admin_user)
    return c


def test_an_admin_post_without_the_token_is_refused(csrf_client):
    account = ProviderAccountFactory(name="before")
    url = reverse("admin:providers_provideraccount_change", args=[account.pk])
    r = csrf_client.post(url, {"name": "after", "kind": "sandbox"})
    assert r.status_code == 403
    account.refresh_from_db()
    assert account.name == "before"
    # an admin action, a delete, and the login form too
    changelist = reverse("admin:campaigns_campaign_changelist")
    campaign = CampaignFactory()
    r = csrf_client.post(
        changelist, {"action": "delete_selected", "_selected_action": [campaign.pk]}
    )
    assert r.status_code == 403
    r = csrf_client.post(
        reverse("admin:campaigns_campaign_delete", args=[campaign.pk]), {"post": "yes"}
    )
    assert r.status_code == 403
    assert (
        Client(enforce_csrf_checks=True)
        .post(reverse("admin:login"), {"username": "root", "password": "x"})
        .status_code
        == 403
    )


def test_an_admin_post_with_the_token_goes_through(csrf_client):
    account = ProviderAccountFactory(name="before")
    url = reverse("admin:campaigns_contactlist_add")
    page = csrf_client.get(url)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode())
    assert token, "the add form has no CSRF token"
    r = csrf_client.post(url, {"csrfmiddlewaretoken": token.group(1), "name": "VIP"})
    assert r.status_code in (200, 302)
    assert r.status_code != 403
    assert account.pk


def test_every_post_form_of_the_admin_carries_a_csrf_token(admin_client):
    """Every registered admin's add and change pages: each POST form holds the token."""
    CampaignFactory()
    checked = 0
    for model in admin.site._registry:
        info = (model._meta.app_label, model._meta.model_name)
        urls = []
        with contextlib.suppress(NoReverseMatch):
            urls.append(reverse("admin:{}_{}_add".format(*info)))
        obj = model._default_manager.first()
        if obj is not None:
            urls.append(reverse("admin:{}_{}_change".format(*info), args=[obj.pk]))
            urls.append(reverse("admin:{}_{}_changelist".format(*info)))
        for url in urls:
            r = admin_client.get(url)
            if r.status_code != 200:
                continue
            html = r.content.decode()
            for m in re.finditer(r"<form\b([^>]*)>(.*?)</form>", html, re.S | re.I):
                attrs, body = m.group(1), m.group(2)
                if 'method="post"' in attrs.lower():
                    assert "csrfmiddlewaretoken" in body, f"POST form without token on {url}"
                    checked += 1
    assert checked >= 15


def test_webhook_tokens_cannot_be_told_apart(client):
    """A wrong token, a malformed one, an inactive account's and a near-miss of a real one all
    get the same answer."""
    live = ProviderAccountFactory()
    inactive = ProviderAccountFactory(is_active=False)
    answers = set()
    for token in (
        "x" * 43,
        "short",
        "a.b-c_d~e",
        live.webhook_token[:-1] + ("A" if live.webhook_token[-1] != "A" else "B"),
        live.webhook_token.upper() if live.webhook_token.upper() != live.webhook_token else "Z",
        inactive.webhook_token,
        "%00",
    ):
        r = client.get(f"/webhooks/{token}/")
        answers.add((r.status_code, r.content, r.get("Content-Type")))
    assert answers == {(404, b'{"error": "not found"}', "application/json")}
    ok = client.get(live.webhook_path())
    assert ok.status_code != 404


@override_settings(LOA_WEBHOOK_NOT_FOUND_LIMIT=5, LOA_WEBHOOK_NOT_FOUND_WINDOW=600)
def test_repeated_unknown_tokens_from_one_address_are_throttled(client):
    live = ProviderAccountFactory()
    for i in range(5):
        r = client.get(f"/webhooks/guess{i:040d}/", REMOTE_ADDR="192.0.2.10")
        assert r.status_code == 404
    r = client.get("/webhooks/guess-after/", REMOTE_ADDR="192.0.2.10")
    assert r.status_code == 429
    assert 0 < int(r["Retry-After"]) <= 600
    # the throttled address gets 429 even for a real token (no database work for it at all) ...
    assert client.get(live.webhook_path(), REMOTE_ADDR="192.0.2.10").status_code == 429
    # ... while other addresses, such as the provider's, are not affected
    assert client.get(live.webhook_path(), REMOTE_ADDR="192.0.2.99").status_code != 429
    assert client.get("/webhooks/nope/", REMOTE_ADDR="192.0.2.99").status_code == 404


@override_settings(LOA_WEBHOOK_NOT_FOUND_LIMIT=3)
def test_callbacks_for_a_deactivated_account_never_throttle_the_provider(client):
    """A provider still calling back for an account we deactivated gets 404s from its own
    addresses, which the other accounts' callbacks share: those must not count."""
    live = ProviderAccountFactory()
    old = ProviderAccountFactory(is_active=False)
    for _ in range(10):
        assert client.get(old.webhook_path(), REMOTE_ADDR="203.0.113.20").status_code == 404
    assert client.get(live.webhook_path(), REMOTE_ADDR="203.0.113.20").status_code != 429


def test_request_size_limits_are_sane():
    from django.conf import settings

    assert settings.DATA_UPLOAD_MAX_MEMORY_SIZE == 2_621_440
    assert settings.FILE_UPLOAD_MAX_MEMORY_SIZE <= 10 * 1024 * 1024
    assert settings.DATA_UPLOAD_MAX_NUMBER_FILES <= 10
    assert settings.CONTACT_UPLOAD_MAX_BYTES >= settings.FILE_UPLOAD_MAX_MEMORY_SIZE
    from webhooks.services import MAX_BODY

    # a webhook body we would keep fits well inside what Django reads into memory
    assert MAX_BODY * 4 <= settings.DATA_UPLOAD_MAX_MEMORY_SIZE


def test_an_oversized_webhook_body_is_refused_without_a_500(client):
    from django.conf import settings

    live = ProviderAccountFactory()
    body = b"{" + b'"a":"' + b"x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 10) + b'"}'
    r = client.post(live.webhook_path(), body, content_type="application/json")
    assert r.status_code in (400, 413)
