"""The WebhookEvent admin's "Re-apply": it applies exactly the chosen events, and only for
someone who may change webhook events (it writes statuses, counters and opt-outs)."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from campaigns.models import Campaign, Message
from tests.factories import CampaignFactory, ContactFactory, UserFactory, message_for
from webhooks.models import WebhookEvent

pytestmark = pytest.mark.django_db
OUT = WebhookEvent.Outcome


def _setup():
    campaign = CampaignFactory()
    a, b = ContactFactory.create_batch(2)
    Message.objects.bulk_create(
        [
            message_for(campaign, a, status="sent", provider_message_id="pm-old"),
            message_for(campaign, b, status="sent", provider_message_id="pm-chosen"),
        ]
    )
    Campaign.objects.filter(pk=campaign.pk).update(status="running", sent_count=2)
    account = campaign.channel.account

    def event(pid, outcome):
        return WebhookEvent.objects.create(
            account=account,
            method="POST",
            body=json.dumps({"msg_id": pid, "status": "read"}),
            outcome=outcome,
            dedupe_key=f"{pid}:read",
        )

    # The oldest event waits (received, its applier not run yet); the chosen one was unmatched earlier.
    oldest = event("pm-old", OUT.RECEIVED)
    chosen = event("pm-chosen", OUT.UNMATCHED)
    return oldest, chosen


def _user(*codenames):
    user = UserFactory()
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="webhooks", codename__in=list(codenames))
    )
    return user


def _reapply(client, event):
    url = reverse("admin:webhooks_webhookevent_changelist")
    return client.post(
        url, {"action": "reapply", "_selected_action": [event.pk], "index": 0}, follow=True
    )


def test_reapply_applies_the_chosen_event_not_the_oldest(client):
    oldest, chosen = _setup()
    client.force_login(_user("view_webhookevent", "change_webhookevent"))
    r = _reapply(client, chosen)
    assert r.status_code == 200
    chosen.refresh_from_db()
    oldest.refresh_from_db()
    assert chosen.outcome == OUT.APPLIED
    assert oldest.outcome == OUT.RECEIVED  # untouched: not the one chosen
    statuses = dict(Message.objects.values_list("provider_message_id", "status"))
    assert statuses == {"pm-chosen": "read", "pm-old": "sent"}


def test_reapply_is_refused_with_only_the_view_permission(client):
    oldest, chosen = _setup()
    client.force_login(_user("view_webhookevent"))
    changelist = client.get(reverse("admin:webhooks_webhookevent_changelist"))
    assert changelist.status_code == 200
    assert 'value="reapply"' not in changelist.content.decode()
    _reapply(client, chosen)
    chosen.refresh_from_db()
    oldest.refresh_from_db()
    assert (chosen.outcome, oldest.outcome) == (OUT.UNMATCHED, OUT.RECEIVED)
    assert set(Message.objects.values_list("status", flat=True)) == {"sent"}
