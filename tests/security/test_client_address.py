"""The client's address behind TRUSTED_PROXY_COUNT reverse proxies."""

from __future__ import annotations

import pytest
from django.test import override_settings

from config.middleware import client_ip


@pytest.mark.parametrize(
    ("hops", "xff", "expected"),
    [
        (0, "1.2.3.4", "10.0.0.1"),  # no proxy trusted: the socket's address
        (1, "", "10.0.0.1"),  # no header: the socket's address
        (1, "203.0.113.5", "203.0.113.5"),
        (1, "6.6.6.6, 203.0.113.5", "203.0.113.5"),  # the left entry is the client's claim
        (2, "6.6.6.6, 203.0.113.5, 10.1.1.1", "203.0.113.5"),  # CDN + nginx
        (1, "2001:db8::1", "2001:db8::1"),
        (1, "not-an-ip", "10.0.0.1"),  # garbage never becomes the address
        (1, "1.2.3.4, <script>", "10.0.0.1"),
    ],
)
def test_client_ip(rf, hops, xff, expected):
    request = rf.get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=xff)
    with override_settings(TRUSTED_PROXY_COUNT=hops):
        assert client_ip(request.META) == expected


@override_settings(TRUSTED_PROXY_COUNT=1)
def test_the_middleware_rewrites_remote_addr_for_everything_downstream(client, db):
    from tests.factories import ProviderAccountFactory
    from webhooks.models import WebhookEvent

    account = ProviderAccountFactory()
    r = client.get(
        account.webhook_path(),
        {"x": "1"},
        REMOTE_ADDR="127.0.0.1",
        HTTP_X_FORWARDED_FOR="6.6.6.6, 198.51.100.23",
    )
    assert r.status_code < 500
    assert WebhookEvent.objects.get().remote_addr == "198.51.100.23"
