"""A real qcluster process against the ORM broker sends a campaign end to end."""

import pytest

from campaigns.engine.lifecycle import campaign_send_now
from campaigns.models import Campaign, Message
from tests.conftest import wait_for
from tests.factories import CampaignFactory, ContactListFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_real_qcluster_sends_every_contact_once_and_receipts_arrive(qcluster):
    cl = ContactListFactory(size=120)
    campaign = CampaignFactory(lists=[cl])
    cluster = qcluster()
    campaign_send_now(campaign_id=campaign.pk)  # enqueues driver tasks in the ORM broker

    def finished():
        campaign.refresh_from_db()
        return campaign.status == Campaign.Status.COMPLETED

    assert wait_for(finished, timeout=90), cluster.output()
    assert Message.objects.filter(campaign=campaign).count() == 120
    assert campaign.sent_count == 120

    def receipts_in():
        campaign.refresh_from_db()
        return campaign.delivered_count + campaign.failed_count >= 100

    # the sandbox's callbacks come back through the webhook path, pumped by the cluster
    assert wait_for(receipts_in, timeout=90), cluster.output()
    # Receipts keep arriving (read after delivered): stop the worker, then compare counters and
    # rows at one moment (they move together in one transaction; a snapshot taken between two
    # applied batches would race).
    cluster.stop()
    campaign.refresh_from_db()
    per_status = {
        s: Message.objects.filter(campaign=campaign, status=s).count()
        for s in ("delivered", "read", "failed")
    }
    assert campaign.read_count == per_status["read"]
    assert campaign.failed_count == per_status["failed"]
