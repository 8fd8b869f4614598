"""Issue 15: the test send of a content template (SMS, Viber entered in Loa) sends its rendered
text, as the campaign does (campaigns.engine.send), not a template id the provider never heard of."""

import json

import pytest
import responses

from templates_app.testsend import template_test_send
from tests.factories import ChannelFactory, ProviderAccountFactory, TemplateFactory

pytestmark = pytest.mark.django_db

BASE = "https://mmp.example.test"


@responses.activate
def test_test_send_of_a_content_template_sends_its_text():
    responses.add(responses.POST, f"{BASE}/api/v1/channel/broadcast", json={"messageId": "m-1"})
    account = ProviderAccountFactory(
        kind="vna_mmp", base_url=BASE, secrets={"api_key": "MMP-KEY-1"}
    )
    channel = ChannelFactory(account=account, kind="sms", official_account=None, external_id="ch-1")
    template = TemplateFactory(
        account=account,
        channel_kind="sms",
        provider_template_id="sms-1",
        body="Chào {{customer_name}}, đơn {{order_code}}.",
    )
    template_test_send(
        template=template,
        channel=channel,
        phone="0901888484",
        data={"customer_name": "An", "order_code": "DH1"},
    )
    body = json.loads(responses.calls[0].request.body)
    assert body["message"] == {"type": "text", "text": "Chào An, đơn DH1."}
