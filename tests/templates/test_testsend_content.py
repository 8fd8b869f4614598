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


@responses.activate
def test_a_metfone_sms_test_send_reads_a_local_number_as_cambodian_and_refuses_a_vietnamese_one():
    """Issue 16: Metfone SMS reaches Cambodia; a test send may not go where the campaign would
    skip the number, and "012 345 678" typed for Metfone is the Cambodian 85512345678."""
    from providers.shared.errors import Refused

    responses.add(responses.POST, f"{BASE}/api/v1/channel/broadcast", json={"messageId": "m-2"})
    account = ProviderAccountFactory(
        kind="metfone_mmp", base_url=BASE, secrets={"api_key": "MMP-KEY-2"}
    )
    channel = ChannelFactory(account=account, kind="sms", official_account=None, external_id="ch-2")
    template = TemplateFactory(
        account=account,
        channel_kind="sms",
        provider_template_id="sms-2",
        body="Hello {{customer_name}}, {{order_code}}",
    )
    data = {"customer_name": "Sok", "order_code": "KH1"}
    template_test_send(template=template, channel=channel, phone="012 345 678", data=data)
    sent = json.dumps(json.loads(responses.calls[0].request.body))
    assert "85512345678" in sent
    with pytest.raises(Refused) as refused:
        template_test_send(template=template, channel=channel, phone="+84 912 345 678", data=data)
    assert refused.value.code == "unreachable" and len(responses.calls) == 1
