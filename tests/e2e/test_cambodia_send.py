"""Issue 16, end to end: a Metfone MMP SMS campaign reaches Cambodia, and only Cambodia.

Two Cambodian contacts written the international way (+855 ...) go through the one phone
normalizer (stored 855...), and a Vietnamese one (stored 84...). The campaign is built through the
wizard's services, started with campaign_send_now, and sent by a real qcluster worker over real
HTTP to bench/fake_provider (the harness of tests/e2e/test_matrix.py). Checked:
- the fake received exactly the two Cambodian numbers, in the form docs/PROVIDERS.md says MMP
  takes (phone_format "international": the digits with the country code, 855...; assumed, the
  seeds 000/001 show no request body);
- the Vietnamese recipient was never sent: its message is skipped, error code `unreachable`, with
  the reason shown on the campaign's message list and the message's page;
- the delivery callbacks (seed 001 "Webhook Broadcast": status 4 DELIVERED, then 5 READ, keyed by
  our clientMessageId) applied by the cluster make the campaign's counters add up.

Run on SQLite and on PostgreSQL:
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/loa_x pytest tests/e2e/test_cambodia_send.py
"""

from __future__ import annotations

import time

import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from django.utils import translation

from bench.fake_provider import FakeProviders
from bench.fake_provider import mmp as fake_mmp
from campaigns.drafts import campaign_draft_create, campaign_draft_update
from campaigns.engine.lifecycle import campaign_send_now
from campaigns.models import Campaign, Contact, ContactList, ContactListMembership, Message
from providers.models import Channel, ProviderAccount
from providers.shared.phones import normalize_phone
from tests.conftest import QCluster
from webhooks.models import WebhookEvent

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

CLUSTER_ENV = {
    "Q_WORKERS": "2",
    "LOA_SEND_BATCH_SIZE": "20",
    "LOA_SEND_CONCURRENCY": "2",
    "LOA_DRIVER_TIME_BUDGET": "10",
    "Q_TIMEOUT": "30",
    "Q_RETRY": "60",
}
TIMEOUT = 30

# (as typed, stored, name): Cambodians in the +855 form, a Vietnamese mobile in the local form.
KH_CONTACTS = [
    ("+855 12 345 678", "85512345678", "Sok Dara"),
    ("+855 97 123 4567", "855971234567", "Chan Sreymom"),
]
VN_CONTACT = ("0901234563", "84901234563", "Nguyễn Văn Nam")
CONTENT = "Loa: {{customer_name}}, order {{order_code}} is ready."
MAPPING = {
    "customer_name": {"source": "field", "value": "name"},
    "order_code": {"source": "attribute", "value": "order"},
}


@pytest.fixture
def fake():
    with FakeProviders(latency_ms=0, callbacks=False, seed=16) as server:
        yield server


@pytest.fixture
def cluster(transactional_db):
    from django_q.conf import Conf

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Conf, "SYNC", False)
        c = QCluster(**CLUSTER_ENV)
        try:
            yield c
        finally:
            c.stop()


def _wait(predicate, what: str, cluster: QCluster, timeout: float = TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    value = predicate()
    assert value, f"timed out waiting for {what}\n--- qcluster output ---\n{cluster.output()}"
    return value


def _audience() -> ContactList:
    contact_list = ContactList.objects.create(name="Phnom Penh + Hà Nội", contact_count=3)
    for i, (typed, stored, name) in enumerate([*KH_CONTACTS, VN_CONTACT]):
        result = normalize_phone(typed)  # the one normalizer; +855 is read as written
        assert result.phone == stored, result
        contact = Contact.objects.create(phone=result.phone, name=name, attributes={"order": i})
        ContactListMembership.objects.create(contact_list=contact_list, contact=contact)
    return contact_list


def _campaign(fake: FakeProviders) -> Campaign:
    account = ProviderAccount.objects.create(
        name="Metfone", kind="metfone_mmp", base_url=fake.url("metfone_mmp")
    )
    account.set_secrets({"api_key": "kh-mmp-key"})
    account.save()
    channel = Channel.objects.create(
        name="Metfone SMS", account=account, kind="sms", external_id="pub-sms"
    )
    user = User.objects.create_user("kh-marketer", password="pw-Loa-2026!", is_staff=True)
    campaign = campaign_draft_create(name="Cambodia SMS", channel=channel, user=user)
    campaign = campaign_draft_update(campaign=campaign, template=None, content=CONTENT)
    campaign = campaign_draft_update(campaign=campaign, param_mapping=dict(MAPPING))
    return campaign_draft_update(campaign=campaign, lists=[_audience()])


def _broadcasts(fake: FakeProviders) -> list[dict]:
    with fake.lock:
        return [
            r
            for r in fake.requests
            if r["path"].endswith("/channel/broadcast") and r["method"] == "POST"
        ]


def test_metfone_sms_reaches_cambodia_and_skips_vietnam(fake, cluster, client, admin_client):
    campaign = _campaign(fake)
    with translation.override("en"):  # the skipped reason is written in the sender's language
        assert campaign_send_now(campaign_id=campaign.pk) == 3

    def completed():
        campaign.refresh_from_db()
        return campaign.status == Campaign.Status.COMPLETED

    _wait(completed, f"the campaign to complete (status {campaign.status})", cluster)

    # The wire: one broadcast per Cambodian recipient, the phone as 855... (assumed,
    # docs/PROVIDERS.md "VNA MMP and Metfone MMP": phone_format "international"); none to 84...
    sends = _broadcasts(fake)
    phones = sorted(s["body"]["subscribers"][0]["phone"] for s in sends)
    assert phones == sorted(stored for _typed, stored, _name in KH_CONTACTS)
    assert all(s["body"]["publicId"] == "pub-sms" for s in sends)
    assert all(s["headers"]["Authorization"] == "Bearer kh-mmp-key" for s in sends)

    sent = list(Message.objects.filter(campaign=campaign, phone__startswith="855"))
    assert {m.status for m in sent} == {Message.Status.SENT}
    assert {s["body"]["clientMessageId"] for s in sends} == {m.idempotency_key for m in sent}

    # The Vietnamese recipient: never sent, skipped with its reason.
    vn = Message.objects.get(campaign=campaign, phone=VN_CONTACT[1])
    assert vn.status == Message.Status.SKIPPED and vn.error_code == "unreachable"
    assert vn.error_message.startswith("cannot be reached on this channel (Vietnam)")
    assert vn.attempts == 0 and not vn.provider_message_id and vn.fee is None
    admin_client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    listing = admin_client.get(
        reverse("admin:campaigns_message_changelist"),
        {"campaign__id__exact": campaign.pk, "status__exact": "skipped"},
    ).content.decode()
    assert "unreachable" in listing and "cannot reach the phone" in listing
    page = admin_client.get(reverse("admin:campaigns_message_change", args=[vn.pk]))
    assert "cannot be reached on this channel (Vietnam)" in page.content.decode()

    # The delivery callbacks, as seed 001 documents them: DELIVERED, then READ.
    url = reverse("webhooks:receive", kwargs={"token": campaign.channel.account.webhook_token})
    for message in sent:
        record = fake.messages[message.provider_message_id]
        for status, cause in ((4, "DELIVERED"), (5, "READ")):
            payload = fake_mmp.status_payload(record, status, cause)
            resp = client.post(url, data=payload, content_type="application/json")
            assert resp.status_code == 200, resp.content

    def applied():
        got = set(
            Message.objects.filter(campaign=campaign, phone__startswith="855").values_list(
                "status", flat=True
            )
        )
        return got == {Message.Status.READ}

    _wait(applied, "the callbacks to be applied", cluster)
    events = WebhookEvent.objects.filter(account_id=campaign.channel.account_id)
    _wait(
        lambda: not events.exclude(outcome=WebhookEvent.Outcome.APPLIED).exists(),
        f"every webhook event applied: {list(events.values_list('outcome', 'outcome_detail'))}",
        cluster,
    )
    assert events.count() == 2 * len(KH_CONTACTS)

    # The counters add up, and nothing was charged for the recipient nobody sent to.
    campaign.refresh_from_db()
    rows = Message.objects.filter(campaign=campaign)
    assert campaign.total_count == rows.count() == 3
    assert campaign.sent_count == campaign.delivered_count == campaign.read_count == 2
    assert campaign.skipped_count == rows.filter(status=Message.Status.SKIPPED).count() == 1
    assert campaign.failed_count == campaign.unknown_count == campaign.cancelled_count == 0
    assert campaign.total_count == (
        campaign.sent_count + campaign.failed_count + campaign.skipped_count
    )
    assert campaign.cost == 0
