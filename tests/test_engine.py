"""The send path end to end, in-process: campaign -> materialize -> driver (sync django-q2) ->
sandbox provider -> callbacks through the webhook path -> statuses and counters."""

import pytest
from django.utils import timezone

from campaigns.engine.delivery import message_apply_event
from campaigns.engine.driver import campaign_drive
from campaigns.engine.lifecycle import campaign_send_now, campaign_transition
from campaigns.engine.materialize import campaign_materialize
from campaigns.models import Campaign, Message, OptOut
from providers.base import EventStatus, StatusEvent
from providers.sandbox.outbox import SandboxCallback
from providers.shared.errors import Refused
from tests.factories import CampaignFactory, ContactListFactory
from webhooks.models import WebhookEvent
from webhooks.services import sandbox_callbacks_deliver

pytestmark = pytest.mark.django_db(transaction=True)


def _deliver_all():
    SandboxCallback.objects.update(due_at=timezone.now())
    return sandbox_callbacks_deliver(limit=100_000)


def test_send_now_reaches_every_contact_once_and_counts_add_up():
    cl = ContactListFactory(size=50)
    campaign = CampaignFactory(lists=[cl])
    total = campaign_send_now(campaign_id=campaign.pk)
    assert total == 50
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.COMPLETED
    assert Message.objects.filter(campaign=campaign).count() == 50
    assert not Message.objects.filter(campaign=campaign, status__in=["pending", "sending"]).exists()
    assert campaign.sent_count == 50
    _deliver_all()
    campaign.refresh_from_db()
    statuses = dict.fromkeys(["sent", "delivered", "read", "failed"], 0)
    for s in Message.objects.filter(campaign=campaign).values_list("status", flat=True):
        statuses[s] += 1
    assert campaign.failed_count == statuses["failed"]
    assert campaign.read_count == statuses["read"]
    assert campaign.delivered_count == statuses["delivered"] + statuses["read"]
    assert sum(statuses.values()) == 50
    # every callback went through the webhook log
    assert (
        WebhookEvent.objects.filter(outcome="applied").count()
        >= statuses["delivered"] + statuses["read"]
    )
    # template data frozen per message
    msg = Message.objects.filter(campaign=campaign).first()
    assert msg.template_data["customer_name"].startswith("Nguyễn Văn")
    assert msg.template_data["order_code"] == "DH001"


def test_second_send_is_refused_and_sends_nothing_new():
    cl = ContactListFactory(size=5)
    campaign = CampaignFactory(lists=[cl])
    campaign_send_now(campaign_id=campaign.pk)
    with pytest.raises(Refused) as refused:
        campaign_send_now(campaign_id=campaign.pk)
    assert refused.value.code == "wrong_status"
    assert Message.objects.filter(campaign=campaign).count() == 5


def test_opt_out_is_honoured_at_claim_time():
    cl = ContactListFactory(size=3)
    campaign = CampaignFactory(lists=[cl])
    campaign_transition(campaign_id=campaign.pk, to=Campaign.Status.RUNNING)
    campaign_materialize(campaign_id=campaign.pk)
    victim = cl.contacts.first()
    OptOut.objects.create(contact=victim, channel_kind=OptOut.ALL, reason="STOP")
    campaign_drive(campaign_id=campaign.pk)
    m = Message.objects.get(campaign=campaign, contact=victim)
    assert m.status == Message.Status.SKIPPED
    campaign.refresh_from_db()
    assert campaign.skipped_count == 1 and campaign.sent_count == 2


@pytest.mark.parametrize(
    "sequence,final",
    [
        (["delivered", "read"], "read"),
        (["read", "delivered"], "read"),
        (["delivered", "failed"], "delivered"),
        (["failed", "delivered"], "failed"),
        (["read", "read", "read"], "read"),
        (["sent", "failed"], "failed"),
    ],
)
def test_status_moves_forward_only(sequence, final):
    cl = ContactListFactory(size=1)
    campaign = CampaignFactory(lists=[cl])
    campaign_transition(campaign_id=campaign.pk, to=Campaign.Status.RUNNING)
    campaign_materialize(campaign_id=campaign.pk)
    msg = Message.objects.get(campaign=campaign)
    Message.objects.filter(pk=msg.pk).update(status="sent")
    for s in sequence:
        message_apply_event(message_id=msg.pk, event=StatusEvent(EventStatus(s)))
    msg.refresh_from_db()
    assert msg.status == final
    campaign.refresh_from_db()
    assert campaign.read_count == (1 if final == "read" else 0)
    assert campaign.delivered_count == (1 if final in ("read", "delivered") else 0)
    assert campaign.failed_count == (1 if final == "failed" else 0)
