"""Helpers for the provider adapter tests: fixtures from the docs, configs, messages."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qsl

import pytest
import responses

from providers import http, ratelimit
from providers.base import AccountConfig, OutboundMessage, WebhookRequest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def fixture_json(name: str):
    return json.loads(fixture_text(name))


def fixture_query(name: str) -> dict[str, str]:
    """A callback query string as Django's request.GET would give it to the view."""
    return dict(parse_qsl(fixture_text(name).strip(), keep_blank_values=True))


def config(kind: str, *, base_url: str = "", secrets=None, settings=None, **kw) -> AccountConfig:
    return AccountConfig(
        account_id=kw.pop("account_id", 7),
        kind=kind,
        base_url=base_url,
        secrets=secrets if secrets is not None else {},
        settings=settings or {},
        webhook_url=kw.pop("webhook_url", "https://loa.example/webhooks/tok/"),
        **kw,
    )


def message(**kw) -> OutboundMessage:
    base = dict(
        idempotency_key="loa12t1abcdc34",
        phone="84901888484",
        template_id="205644",
        template_data={"customer_name": "Nguyễn Văn A", "order_code": "HD00001"},
        param_order=("customer_name", "order_code"),
        oa_id="4097311281936189049",
    )
    base.update(kw)
    return OutboundMessage(**base)


def esms_oas_answer(base_url: str) -> None:
    """responses answers eSMS's GetListZOA and GetQuota under base_url as the docs show them."""
    responses.add(
        responses.POST,
        f"{base_url}/ZNS/GetListZOA/",
        json=fixture_json("esms/get_list_zoa_response.json"),
    )
    responses.add(
        responses.POST,
        f"{base_url}/ZNS/GetQuota/",
        json=fixture_json("esms/get_quota_response.json"),
    )


def webhook(method="POST", body=b"", query=None, headers=None) -> WebhookRequest:
    if isinstance(body, dict | list):
        body = json.dumps(body).encode()
    return WebhookRequest(method=method, query=query or {}, body=body, headers=headers or {})


@pytest.fixture(autouse=True)
def _isolated_http(tmp_path):
    """Each test gets its own rate-limit buckets and fresh connection pools."""
    ratelimit.set_limiter(ratelimit.FileLimiter(str(tmp_path / "buckets")))
    yield
    ratelimit.set_limiter(None)
    http.close_sessions()


@pytest.fixture(autouse=True)
def _english(client, english):
    """Assertions read English text (the english fixture of tests/conftest.py), and the test
    client asks for English pages."""
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"


@pytest.fixture
def fast_http(settings):
    """Short timeouts so hang/timeout tests finish quickly."""
    settings.LOA = {**settings.LOA, "HTTP_CONNECT_TIMEOUT": 0.5, "HTTP_READ_TIMEOUT": 0.5}
    return settings
