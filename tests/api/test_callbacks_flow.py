# ruff: noqa: F811 (the fixtures imported from callback_fixtures are used as arguments)
"""The whole path of a status callback: POST /api/v1/messages -> the engine sends it through eSMS
(HTTP mocked at the requests seam, `responses`) -> the client gets "sent" -> eSMS calls our
webhook -> the message is delivered -> the client gets "delivered", signed, on a real local HTTP
receiver. django-q runs inline in the test settings, so the pump runs when each commit lands."""

import json

import pytest
import responses
from django.test import Client
from django.urls import reverse

from campaigns.api.models import ApiMessage, CallbackDelivery
from campaigns.models import Message
from tests.api.callback_fixtures import (  # noqa: F401 (fixtures)
    SECRET,
    application,
    receiver,
)
from tests.api.conftest import bearer, make_key
from tests.api.receiver import verify
from tests.factories import ChannelFactory, ProviderAccountFactory, TemplateFactory

pytestmark = pytest.mark.django_db(transaction=True)

ESMS_V4 = "https://rest.esms.vn/MainService.svc/json/SendZaloMessage_V4_post_json/"


@responses.activate
def test_client_gets_sent_then_delivered_through_the_real_path(application, receiver):
    responses.add_passthru("http://127.0.0.1")  # the client's receiver is real HTTP
    account = ProviderAccountFactory(
        kind="esms", secrets={"api_key": "APIKEY123", "secret_key": "SECRET456"}
    )
    channel = ChannelFactory(account=account, official_account__oa_id="4097311281936189049")
    template = TemplateFactory(
        account=account, provider_template_id="205644", params=["customer_name", "order_code"]
    )
    application.channels.add(channel)
    _key, raw = make_key(application)
    responses.add(
        responses.POST,
        ESMS_V4,
        json={"CodeResult": "100", "CountRegenerate": 0, "SMSID": "sms-777"},
    )

    r = bearer(raw).post(
        "/api/v1/messages",
        {
            "template_id": template.pk,
            "phone": "0901888484",
            "params": {"customer_name": "Nguyễn Văn A", "order_code": "DH001"},
            "client_reference": "ORDER-9",
        },
        content_type="application/json",
    )
    assert r.status_code == 202, r.content
    api_message = ApiMessage.objects.get(pk=r.json()["id"])
    msg = api_message.message
    msg.refresh_from_db()
    assert msg.status == Message.Status.SENT and msg.provider_message_id == "sms-777"

    # The client was told "sent" as soon as the provider took it.
    assert [x.json["status"] for x in receiver.received] == ["sent"]

    # eSMS calls back (GET + query, providers.md §2.5): delivered, with its price.
    url = reverse("webhooks:receive", args=[account.webhook_token])
    receipt = {
        "SMSID": "sms-777",
        "SendFailed": "0",
        "SendStatus": "5",
        "SendSuccess": "1",
        "TotalPrice": "300.0000",
        "RequestId": msg.idempotency_key,
        "TypeId": "25",
        "error_info": '{"error":0,"message":"Success","data":{"delivery_time":null,"status":1}}',
    }
    assert Client().get(url, receipt).status_code == 200
    msg.refresh_from_db()
    assert msg.status == Message.Status.DELIVERED

    statuses = [x.json["status"] for x in receiver.received]
    assert statuses == ["sent", "delivered"]
    delivered = receiver.received[-1]
    assert verify(SECRET, delivered)
    body = json.loads(delivered.body)
    assert body["message_id"] == api_message.pk and body["client_reference"] == "ORDER-9"
    assert body["event"] == "message.status" and body["status_rank"] == 3
    assert body["fee"] == 300.0 and body["phone"] == "84901888484"
    assert CallbackDelivery.objects.filter(delivered_at__isnull=False).count() == 2
