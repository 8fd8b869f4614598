"""Keys in the admin: created per application, shown once (the page's message), stored hashed,
revoked by an action; an application's callback secret shown once and stored encrypted."""

import re

import pytest
from django.utils import timezone

from campaigns.api.models import ApiApplication, ApiKey
from campaigns.privacy.models import AuditAction, AuditEvent
from tests.api.conftest import bearer

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(admin_client):
    admin_client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return admin_client


def test_a_key_is_shown_once_stored_hashed_works_and_is_revoked_by_the_action(admin, channel):
    r = admin.post(
        "/admin/api/apiapplication/add/",
        {"name": "Shop A", "active": "on", "channels": [channel.pk], "callback_url": ""},
        follow=True,
    )
    assert r.status_code == 200
    app = ApiApplication.objects.get()
    secret = re.search(r"<code>(whsec_[^<]+)</code>", r.content.decode())[1]
    assert app.callback_secret == secret and secret not in app.callback_secret_encrypted

    r = admin.post(
        "/admin/api/apikey/add/",
        {
            "application": app.pk,
            "name": "shop backend",
            "scopes": ["send", "read_templates"],
            "channels": [],
            "allowed_ips": "",
            "expires_at_0": "",
            "expires_at_1": "",
        },
        follow=True,
    )
    assert r.status_code == 200, r.content
    page = r.content.decode()
    raw = re.search(r"<code>(loa_[^<]+)</code>", page)[1]
    assert "shown only now" in page
    key = ApiKey.objects.get()
    assert key.key_hash == ApiKey.hash(raw) and key.prefix == raw[:12]
    assert raw not in str(ApiKey.objects.values().get())
    # Not shown again: the change page has the prefix only.
    page = admin.get(f"/admin/api/apikey/{key.pk}/change/").content.decode()
    assert raw not in page and f"{raw[:12]}…" in page
    assert bearer(raw).get("/api/v1/templates").status_code == 200
    # The creation is in the audit trail, with who and the key's name, never its secret.
    event = AuditEvent.objects.get(action=AuditAction.API_KEY_CREATE)
    assert event.actor.is_superuser and event.target_id == str(key.pk)
    assert event.detail["name"] == "shop backend" and raw not in str(event.__dict__)

    r = admin.post(
        "/admin/api/apikey/",
        {"action": "revoke", "_selected_action": [key.pk]},
        follow=True,
    )
    assert "1 key(s) revoked" in r.content.decode()
    key.refresh_from_db()
    assert key.revoked_at is not None and key.revoked_at <= timezone.now()
    assert bearer(raw).get("/api/v1/templates").json()["code"] == "key_revoked"


def test_a_bad_ip_allow_list_is_refused_in_the_form(admin, app):
    r = admin.post(
        "/admin/api/apikey/add/",
        {
            "application": app.pk,
            "name": "k",
            "scopes": ["send"],
            "allowed_ips": "10.0.0.0/8\nnot-an-ip",
            "expires_at_0": "",
            "expires_at_1": "",
        },
    )
    assert r.status_code == 200
    assert "Not an IP address or network: not-an-ip" in r.content.decode()
    assert not ApiKey.objects.exists()


def test_the_application_page_links_to_its_messages_and_callbacks(admin, app):
    page = admin.get(f"/admin/api/apiapplication/{app.pk}/change/").content.decode()
    assert f"?application={app.pk}" in page and f"?application__id__exact={app.pk}" in page
    assert "API messages of this application" in page
