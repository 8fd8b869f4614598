"""The rate share kept for API messages (LOA_API_RATE_SHARE): an ordinary campaign's provider
calls pass a bucket of their own at (1 - share) x the account's rate before the account's bucket;
an API message's calls pass the account's bucket only, so campaign traffic never fills it.
Checked at the provider's HTTP seam (eSMS through `responses`) with a recording limiter."""

import re

import pytest
import responses
from django.conf import settings
from django.test import override_settings

from campaigns.engine.lifecycle import campaign_send_now
from providers import ratelimit
from providers.models import ProviderAccount
from tests.api.conftest import make_key
from tests.factories import (
    CampaignFactory,
    ChannelFactory,
    ContactListFactory,
    ProviderAccountFactory,
    TemplateFactory,
)

pytestmark = pytest.mark.django_db(transaction=True)

ESMS_SEND = re.compile(
    r"https://rest\.esms\.vn/MainService\.svc/json/SendZaloMessage_V4_post_json/"
)


class Recorder:
    """A limiter that never waits and remembers each reservation (bucket key, rate)."""

    def __init__(self):
        self.calls = []

    def reserve(self, key, rate, burst=1):
        self.calls.append((key, rate))
        return 0.0


@pytest.fixture
def limiter():
    rec = Recorder()
    ratelimit.set_limiter(rec)
    yield rec
    ratelimit.set_limiter(None)


@responses.activate
@override_settings(LOA={**settings.LOA, "API_RATE_SHARE": 0.2})
def test_campaign_calls_leave_the_share_and_api_calls_use_the_account_bucket(limiter, app, client):
    responses.add(responses.POST, ESMS_SEND, json={"CodeResult": "100", "SMSID": "s-1"})
    account = ProviderAccountFactory(
        kind="esms", secrets={"api_key": "AK-TEST-0001", "secret_key": "SK-TEST-0002"}
    )
    ProviderAccount.objects.filter(pk=account.pk).update(rate_limit=50)
    channel = ChannelFactory(account=account)
    template = TemplateFactory(account=account, provider_template_id="205644")
    account_bucket = f"esms-{account.pk}-send"

    campaign = CampaignFactory(
        channel=channel, template=template, lists=[ContactListFactory(size=3)]
    )
    campaign_send_now(campaign_id=campaign.pk)
    campaign_calls = list(limiter.calls)
    assert campaign_calls == [(f"{account_bucket}-campaigns", 40.0), (account_bucket, 50)] * 3

    limiter.calls.clear()
    _key, raw = make_key(app)
    r = client.post(
        "/api/v1/messages",
        {
            "template_id": template.pk,
            "phone": "0912345678",
            "params": {"customer_name": "Lan", "order_code": "DH1"},
        },
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {raw}",
    )
    assert r.status_code == 202
    assert limiter.calls == [(account_bucket, 50)]
