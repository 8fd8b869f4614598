"""One message all the way: POST /api/v1/messages -> the engine's driver -> the provider's HTTP
API (eSMS ZNS, faked at the requests seam by `responses`) -> the provider's delivery callback
through /webhooks/ -> GET /api/v1/messages/{id} shows it delivered, with its fee and history.
And once over a real socket: a live server answered with `requests`."""

import json
import re
from urllib.parse import urlencode

import pytest
import requests
import responses

from campaigns.api.models import ApiMessage
from tests.api.conftest import make_key
from tests.factories import ChannelFactory, ProviderAccountFactory, TemplateFactory

pytestmark = pytest.mark.django_db(transaction=True)

ESMS_SEND = re.compile(
    r"https://rest\.esms\.vn/MainService\.svc/json/SendZaloMessage_V4_post_json/"
)


@responses.activate
def test_post_engine_provider_http_webhook_then_get_shows_delivered(app, client):
    responses.add(responses.POST, ESMS_SEND, json={"CodeResult": "100", "SMSID": "esms-77"})
    account = ProviderAccountFactory(
        kind="esms", secrets={"api_key": "AK-TEST-0001", "secret_key": "SK-TEST-0002"}
    )
    channel = ChannelFactory(account=account)
    template = TemplateFactory(account=account, provider_template_id="205644")
    _key, raw = make_key(app)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {raw}", "HTTP_ACCEPT_LANGUAGE": "en"}

    r = client.post(
        "/api/v1/messages",
        {
            "template_id": template.pk,
            "phone": "0912 345 678",
            "params": {"customer_name": "Trần Thị Lan", "order_code": "DH777"},
            "client_reference": "order-777",
        },
        content_type="application/json",
        **auth,
    )
    assert r.status_code == 202, r.content
    mid = r.json()["id"]
    # The engine called the provider (inline django-q in the tests) with the engine's key.
    assert len(responses.calls) == 1
    sent = json.loads(responses.calls[0].request.body)
    message = ApiMessage.objects.get(pk=mid).message
    assert sent["Phone"] == "0912345678" and sent["TempID"] == "205644"
    assert sent["Params"] == ["Trần Thị Lan", "DH777"]
    assert sent["RequestId"] == message.idempotency_key
    assert sent["OAID"] == channel.official_account.oa_id

    got = client.get(f"/api/v1/messages/{mid}", **auth).json()
    assert got["status"] == "sent" and got["provider_message_id"] == "esms-77"
    assert [h["status"] for h in got["history"]] == ["queued", "provider_call", "sent"]

    # eSMS reports the delivery on the account's webhook URL (SendStatus 5 + SendSuccess 1).
    query = urlencode(
        {
            "SMSID": "esms-77",
            "SendStatus": "5",
            "SendSuccess": "1",
            "SendFailed": "0",
            "RequestId": message.idempotency_key,
            "error_info": '{"error":0,"message":"Success"}',
        }
    )
    hook = client.get(f"/webhooks/{account.webhook_token}/?{query}")
    assert hook.status_code == 200

    got = client.get(f"/api/v1/messages/{mid}", **auth).json()
    assert got["status"] == "delivered"
    assert got["delivered_at"] is not None
    assert [h["status"] for h in got["history"]] == ["queued", "provider_call", "sent", "delivered"]
    by_ref = client.get("/api/v1/messages?client_reference=order-777", **auth).json()
    assert by_ref["results"][0]["status"] == "delivered"


def test_over_a_real_socket(live_server, app, template):
    _key, raw = make_key(app)
    s = requests.Session()
    s.headers.update({"Authorization": f"Bearer {raw}", "Accept-Language": "en"})
    schema = requests.get(f"{live_server.url}/api/v1/openapi.json", timeout=10).json()
    assert schema["openapi"].startswith("3.") and "/api/v1/messages" in schema["paths"]
    r = s.post(
        f"{live_server.url}/api/v1/messages",
        json={
            "template_id": template.pk,
            "phone": "0912345678",
            "params": {"customer_name": "Lan", "order_code": "DH1"},
        },
        headers={"Idempotency-Key": "live-1"},
        timeout=10,
    )
    assert r.status_code == 202 and r.json()["status"] == "queued"
    again = s.post(
        f"{live_server.url}/api/v1/messages",
        json={
            "template_id": template.pk,
            "phone": "0912345678",
            "params": {"customer_name": "Lan", "order_code": "DH1"},
        },
        headers={"Idempotency-Key": "live-1"},
        timeout=10,
    )
    assert again.json() == r.json() and again.headers["Idempotent-Replayed"] == "true"
    got = s.get(f"{live_server.url}/api/v1/messages/{r.json()['id']}", timeout=10)
    # The sandbox's fate is drawn from the message's key (6% fail): any outcome after a send.
    assert got.status_code == 200
    assert got.json()["status"] in ("sent", "delivered", "read", "failed")
    # The docs page is served with its assets from this server, not a CDN.
    docs = requests.get(f"{live_server.url}/api/v1/docs", timeout=10)
    assert docs.status_code == 200 and "swagger-ui-bundle.js" in docs.text
    assert "cdn." not in docs.text
