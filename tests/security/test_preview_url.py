"""A template's preview URL comes from the provider: only an http(s) one may become a link.

A `javascript:` URL once reached the template page as an href. It is dropped when templates are
synced (templates_app/sync.py) and never rendered as a link (templates_app/admin.py), so a row
stored before the fix cannot become one either."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import responses
from django.urls import reverse

from templates_app import sync
from templates_app.models import Template
from tests.factories import OfficialAccountFactory, ProviderAccountFactory, TemplateFactory

pytestmark = pytest.mark.django_db

ET = "https://api.etelecom.vn/v1/shop"
FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "etelecom"
EVIL = "javascript:alert(1)"


@pytest.fixture(autouse=True)
def _english(client, english):
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"


def _change_page(admin_client, template: Template) -> str:
    url = reverse("admin:templates_app_template_change", args=[template.pk])
    resp = admin_client.get(url)
    assert resp.status_code == 200
    return resp.content.decode()


@responses.activate
def test_synced_javascript_preview_url_is_not_a_link(admin_client):
    account = ProviderAccountFactory(kind="etelecom", secrets={"api_key": "ET-KEY"})
    OfficialAccountFactory(account=account, oa_id="4097311281936189049")
    answer = json.loads((FIXTURE / "list_templates_response.json").read_text(encoding="utf-8"))
    answer["templates"][0]["preview_url"] = EVIL
    answer["templates"][1]["preview_url"] = "https://account.zalo.cloud/znspreview/ok"
    responses.add(responses.POST, f"{ET}.Zalo/ListTemplates", json=answer)

    report = sync.templates_sync(account=account)
    assert report.ok, report.message
    evil = Template.objects.get(provider_template_id="231677")
    assert evil.preview_url == ""
    good = Template.objects.get(provider_template_id="231700")
    assert good.preview_url == "https://account.zalo.cloud/znspreview/ok"
    page = _change_page(admin_client, evil)
    assert "javascript:" not in page


def test_stored_javascript_preview_url_is_never_rendered_as_a_link(admin_client):
    """A row stored before sync checked the scheme: the page shows no link for it."""
    template = TemplateFactory(preview_url=EVIL)
    page = _change_page(admin_client, template)
    assert 'href="javascript:' not in page.replace("&#x27;", "'")
    assert "preview of the template</a>" not in page
    Template.objects.filter(pk=template.pk).update(preview_url="https://zalo.example/p/1")
    page = _change_page(admin_client, template)
    assert 'href="https://zalo.example/p/1"' in page
