"""A message whose send timed out is sent again only on proof that the provider never got it.

The real path end to end: a campaign is sent through the engine (Q_CLUSTER sync in the test
settings), the provider's HTTP is answered by `responses`, the send times out, and
reconciliation (campaigns.engine.reconcile.messages_reconcile) asks the provider. A 404 from a
status path we assumed proves nothing: the message stays `unknown`, with a reason a person can
read, and the provider sees exactly one send. Only a documented "not found" (eTelecom's
ListMessages by tracking_id answering an empty list) or a documented dedupe window lets the
engine send again.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import requests
import responses
from django.utils import timezone

from campaigns.engine.lifecycle import campaign_send_now
from campaigns.engine.reconcile import messages_reconcile, messages_resend_unknown
from campaigns.models import Campaign, Message
from providers.base import EventStatus
from providers.errors import explain
from providers.mmp.adapter import VnaMmpProvider
from tests.factories import (
    CampaignFactory,
    ChannelFactory,
    ContactListFactory,
    OfficialAccountFactory,
    ProviderAccountFactory,
    TemplateFactory,
)

from .conftest import config

pytestmark = pytest.mark.django_db(transaction=True)

MMP = "https://mmp.example.test"
BROADCAST = f"{MMP}/api/v1/channel/broadcast"
MMP_STATUS = f"{MMP}/api/v1/message/status"
MMP_EMAIL_STATUS = f"{MMP}/api/v1/email/status"
ETEL = "https://etelecom.example.test/v1/shop"
SEND_ZNS = f"{ETEL}.Zalo/SendZNS"
LIST_MESSAGES = f"{ETEL}.Zalo/ListMessages"


def _timeout(request):
    raise requests.exceptions.ReadTimeout("read timed out")


def _mmp_sms_campaign() -> Campaign:
    account = ProviderAccountFactory(kind="vna_mmp", base_url=MMP, secrets={"api_key": "k"})
    channel = ChannelFactory(
        account=account, kind="sms", external_id="chan-1", official_account=None
    )
    template = TemplateFactory(account=account, provider_template_id="sms-1", channel_kind="sms")
    return CampaignFactory(channel=channel, template=template, lists=[ContactListFactory(size=1)])


def _etelecom_campaign() -> Campaign:
    account = ProviderAccountFactory(kind="etelecom", base_url=ETEL, secrets={"api_key": "k"})
    oa = OfficialAccountFactory(account=account, oa_id="4097311281936189049")
    channel = ChannelFactory(account=account, kind="zalo_zns", official_account=oa)
    template = TemplateFactory(account=account, provider_template_id="205644")
    return CampaignFactory(channel=channel, template=template, lists=[ContactListFactory(size=1)])


def _send_and_time_out(campaign: Campaign, send_url: str) -> Message:
    """Send the campaign; the provider never answers the send: the message is `unknown`. Then
    make it old enough for any "not found" rule (RESEND_NOT_FOUND_AFTER_MINUTES) to apply."""
    responses.add_callback(responses.POST, send_url, callback=_timeout)
    campaign_send_now(campaign_id=campaign.pk)
    msg = Message.objects.get(campaign=campaign)
    assert msg.status == Message.Status.UNKNOWN, (msg.status, msg.error_code)
    assert msg.error_code == "read_timeout"
    Message.objects.filter(pk=msg.pk).update(claimed_at=timezone.now() - timedelta(hours=1))
    return msg


def _calls(url: str) -> int:
    return sum(1 for c in responses.calls if c.request.url.split("?")[0] == url)


def _reconcile_twice(msg: Message) -> None:
    for _ in range(2):
        messages_reconcile()
        Message.objects.filter(pk=msg.pk).update(last_polled_at=None)


@responses.activate
def test_mmp_status_404_after_a_send_timeout_never_resends():
    """The incident: Get Message Status (an assumed path) answered 404, the engine read it as
    "no record" and sent again. Now: one send, the message stays unknown, with its reason."""
    campaign = _mmp_sms_campaign()
    msg = _send_and_time_out(campaign, BROADCAST)
    responses.add(responses.GET, MMP_STATUS, status=404, json={"errorCode": "NOT_FOUND"})
    responses.add(responses.POST, MMP_EMAIL_STATUS, status=404, json={})
    _reconcile_twice(msg)

    assert _calls(BROADCAST) == 1
    assert _calls(MMP_STATUS) >= 1
    # An SMS is never looked up through the email batch-status API.
    assert _calls(MMP_EMAIL_STATUS) == 0
    msg.refresh_from_db()
    assert msg.status == Message.Status.UNKNOWN
    assert msg.error_code == "status_unproven"
    assert "404" in msg.error_message and "assumed" in msg.error_message
    assert "person" in explain(msg.error_code)
    campaign.refresh_from_db()
    assert campaign.unknown_count == 1


@responses.activate
def test_a_person_may_resend_an_unproven_message_once():
    """The person's decision (messages_resend_unknown, behind the admin's confirmed action):
    the message goes out again, once, and the campaign runs to send it."""
    campaign = _mmp_sms_campaign()
    msg = _send_and_time_out(campaign, BROADCAST)
    responses.add(responses.GET, MMP_STATUS, status=404, json={})
    messages_reconcile()
    responses.replace(responses.POST, BROADCAST, json={"messageId": "m-2"})
    assert messages_resend_unknown(message_ids=[msg.pk]) == 1
    assert messages_resend_unknown(message_ids=[msg.pk]) == 0  # no longer unknown
    assert _calls(BROADCAST) == 2
    msg.refresh_from_db()
    assert msg.status == Message.Status.SENT and msg.provider_message_id == "m-2"
    campaign.refresh_from_db()
    assert campaign.unknown_count == 0


@responses.activate
def test_mmp_status_lookup_failure_leaves_the_message_unknown_and_says_why():
    """A status lookup that fails outright (here a 500) is recorded on the message too."""
    campaign = _mmp_sms_campaign()
    msg = _send_and_time_out(campaign, BROADCAST)
    responses.add(responses.GET, MMP_STATUS, status=500, json={})
    _reconcile_twice(msg)
    assert _calls(BROADCAST) == 1
    msg.refresh_from_db()
    assert msg.status == Message.Status.UNKNOWN
    assert msg.error_code == "status_unproven" and "http_500" in msg.error_message


@responses.activate
def test_etelecom_list_messages_404_after_a_send_timeout_never_resends():
    """eTelecom: no msg_id after the timeout, so ListMessages by tracking_id is asked; a bare
    404 (the base URL is our inference) leaves the message unknown and visible, not stranded
    behind a configuration error nobody sees."""
    campaign = _etelecom_campaign()
    msg = _send_and_time_out(campaign, SEND_ZNS)
    responses.add(responses.POST, LIST_MESSAGES, status=404, body="404 page not found")
    _reconcile_twice(msg)

    assert _calls(SEND_ZNS) == 1
    assert _calls(LIST_MESSAGES) >= 1
    msg.refresh_from_db()
    assert msg.status == Message.Status.UNKNOWN
    assert msg.error_code == "status_unproven" and "http_404" in msg.error_message
    campaign.refresh_from_db()
    assert campaign.unknown_count == 1


@responses.activate
def test_etelecom_list_messages_ignoring_the_filter_proves_nothing():
    """ListMessages answering other messages (the tracking_id filter was not applied) does not
    prove ours is absent."""
    campaign = _etelecom_campaign()
    msg = _send_and_time_out(campaign, SEND_ZNS)
    other = {"id": "1", "msg_id": "z1", "tracking_id": "someone-else", "status": "P"}
    responses.add(
        responses.POST, LIST_MESSAGES, json={"messages": [other], "paging": {"limit": 10}}
    )
    _reconcile_twice(msg)
    assert _calls(SEND_ZNS) == 1
    msg.refresh_from_db()
    assert msg.status == Message.Status.UNKNOWN and msg.error_code == "status_unproven"


@responses.activate
def test_etelecom_documented_empty_list_messages_allows_one_resend():
    """eTelecom documents ListMessages filtered by tracking_id (providers.md §1.4): an empty
    answer is the provider saying it has no message with our key. The message is sent again,
    once."""
    campaign = _etelecom_campaign()
    msg = _send_and_time_out(campaign, SEND_ZNS)
    responses.add(responses.POST, LIST_MESSAGES, json={"messages": [], "paging": {"limit": 10}})
    accepted = {"id": "9", "msg_id": "zalo-9", "tracking_id": msg.idempotency_key, "status": "Z"}
    responses.replace(responses.POST, SEND_ZNS, json=accepted)
    messages_reconcile()

    assert _calls(SEND_ZNS) == 2
    asked = json.loads(
        next(c for c in responses.calls if "ListMessages" in c.request.url).request.body
    )
    assert asked["filter"]["tracking_id"] == msg.idempotency_key
    msg.refresh_from_db()
    assert msg.status == Message.Status.SENT and msg.provider_message_id == "zalo-9"


ESMS_SEND = "https://rest.esms.vn/MainService.svc/json/SendZaloMessage_V4_post_json/"


def _esms_campaign() -> Campaign:
    account = ProviderAccountFactory(kind="esms", secrets={"api_key": "a", "secret_key": "b"})
    oa = OfficialAccountFactory(account=account, oa_id="4097311281936189049")
    channel = ChannelFactory(account=account, kind="zalo_zns", official_account=oa)
    template = TemplateFactory(account=account, provider_template_id="205644")
    return CampaignFactory(channel=channel, template=template, lists=[ContactListFactory(size=1)])


@responses.activate
def test_esms_resends_inside_the_request_id_window_only():
    """eSMS dedupes RequestId (seed 003; 24 h and CodeResult 124 per providers.md §2.2): inside
    the window the same RequestId goes again (eSMS refuses it if it had the first); after it,
    nothing proves a repeat would be refused, so the message stays unknown for a person."""
    campaign = _esms_campaign()
    msg = _send_and_time_out(campaign, ESMS_SEND)
    Message.objects.filter(pk=msg.pk).update(claimed_at=timezone.now() - timedelta(hours=25))
    _reconcile_twice(msg)
    assert _calls(ESMS_SEND) == 1
    msg.refresh_from_db()
    assert msg.status == Message.Status.UNKNOWN and msg.error_code == "status_unproven"
    assert "RequestId" in msg.error_message

    Message.objects.filter(pk=msg.pk).update(claimed_at=timezone.now() - timedelta(hours=1))
    responses.replace(responses.POST, ESMS_SEND, json={"CodeResult": "124", "SMSID": ""})
    messages_reconcile()
    assert _calls(ESMS_SEND) == 2
    sent = [json.loads(c.request.body) for c in responses.calls if c.request.url == ESMS_SEND]
    assert sent[0]["RequestId"] == sent[1]["RequestId"]
    msg.refresh_from_db()
    assert msg.status == Message.Status.SENT


def test_an_unproven_status_answer_can_never_claim_absence():
    """The contract: an MMP status answer (every path and shape assumed) never carries
    proven_absent, and the MMP provider declares it cannot prove absence at all."""
    provider = VnaMmpProvider(config("vna_mmp", base_url=MMP, secrets={"api_key": "k"}))
    assert provider.can_prove_absence is False
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, MMP_STATUS, status=404, json={})
        event = provider.fetch_status(
            provider_message_id="", idempotency_key="k1", channel_kind="sms"
        )
    assert event.status == EventStatus.UNKNOWN and event.proven_absent is False
