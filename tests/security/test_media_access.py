"""Uploaded contact files and import error reports hold phone numbers: they are served only
through a view that checks the permission, in every mode (with DEBUG on, /media/ used to serve
them to anyone, under predictable names)."""

from __future__ import annotations

import importlib

import pytest
from django.contrib.auth.models import Permission
from django.core.files.base import ContentFile
from django.urls import clear_url_caches, reverse

from campaigns.models import ContactImport
from tests.factories import ContactListFactory, UserFactory

pytestmark = pytest.mark.django_db

PHONES = b"phone,name\n0901888484,Nguyen Van A\n"
REFUSED = b"row,phone,reason\n3,12,invalid phone\n"


@pytest.fixture
def contact_import(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    imp = ContactImport(original_name="khach hang.csv", contact_list=ContactListFactory())
    imp.file.save("khach-hang.csv", ContentFile(PHONES), save=False)
    imp.error_report.save("khach-hang-errors.csv", ContentFile(REFUSED), save=False)
    imp.save()
    return imp


@pytest.fixture
def debug_urls(settings):
    """config.urls as `make run` builds it (DEBUG on), for the length of a test."""
    import config.urls

    settings.DEBUG = True
    importlib.reload(config.urls)
    clear_url_caches()
    yield
    settings.DEBUG = False
    importlib.reload(config.urls)
    clear_url_caches()


def _body(resp) -> bytes:
    return b"".join(resp.streaming_content) if resp.streaming else resp.content


def test_media_url_serves_nothing_even_with_debug_on(client, contact_import, debug_urls):
    for field in (contact_import.file, contact_import.error_report):
        resp = client.get("/media/" + field.name)
        assert resp.status_code == 404
        assert b"0901888484" not in _body(resp) and b"invalid phone" not in _body(resp)


def _urls(imp: ContactImport) -> list[tuple[str, bytes]]:
    return [
        (reverse("campaign_files:import_file", args=[imp.pk]), PHONES),
        (reverse("campaign_files:import_error_report", args=[imp.pk]), REFUSED),
    ]


def test_anonymous_gets_the_login_page_not_the_file(client, contact_import):
    for url, content in _urls(contact_import):
        resp = client.get(url)
        assert resp.status_code == 302 and "/admin/login/" in resp["Location"]
        assert content not in _body(resp)


def test_staff_without_the_view_permission_is_refused(client, contact_import):
    client.force_login(UserFactory())
    for url, content in _urls(contact_import):
        resp = client.get(url)
        assert resp.status_code == 403
        assert content not in _body(resp)
    # Not staff: refused even with the permission.
    user = UserFactory(is_staff=False)
    user.user_permissions.add(Permission.objects.get(codename="view_contactimport"))
    client.force_login(user)
    for url, _content in _urls(contact_import):
        assert client.get(url).status_code == 403


def test_permitted_staff_downloads_the_file_as_an_attachment(client, contact_import):
    user = UserFactory()
    user.user_permissions.add(Permission.objects.get(codename="view_contactimport"))
    client.force_login(user)
    for url, content in _urls(contact_import):
        resp = client.get(url)
        assert resp.status_code == 200
        assert _body(resp) == content
        assert resp["Content-Disposition"].startswith("attachment;")
        assert resp["X-Content-Type-Options"] == "nosniff"
        assert "no-store" in resp["Cache-Control"]
    resp = client.get(reverse("campaign_files:import_file", args=[contact_import.pk]))
    assert "khach" in resp["Content-Disposition"]


def test_missing_import_or_report_is_404(client, contact_import):
    user = UserFactory()
    user.user_permissions.add(Permission.objects.get(codename="view_contactimport"))
    client.force_login(user)
    assert client.get(reverse("campaign_files:import_file", args=[999999])).status_code == 404
    ContactImport.objects.filter(pk=contact_import.pk).update(error_report="")
    url = reverse("campaign_files:import_error_report", args=[contact_import.pk])
    assert client.get(url).status_code == 404
