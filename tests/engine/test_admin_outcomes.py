"""Issue 15, the admin side of the engine's outcomes: a cancelled campaign's funnel, the settling
status treated as active, "retry failed recipients", "send again the messages whose outcome could
not be proven", the provider outage banner (campaign page and dashboard) and the attempt inline.
Everything through the admin with Django's test client, in English and Vietnamese."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from campaigns.engine.lifecycle import campaign_cancel, campaign_send_now, campaign_transition
from campaigns.engine.materialize import campaign_materialize
from campaigns.models import Campaign, Message, MessageAttempt
from campaigns.selectors import dashboard
from campaigns.selectors.campaign import (
    campaign_allowed_actions,
    campaign_retryable_failures,
    campaign_stats,
)
from providers.base import ErrorClass
from tests.factories import CampaignFactory, ContactListFactory, UserFactory

pytestmark = pytest.mark.django_db

EN = {"HTTP_ACCEPT_LANGUAGE": "en"}
VI = {"HTTP_ACCEPT_LANGUAGE": "vi-VN,vi;q=0.9"}


@pytest.fixture
def sent(django_capture_on_commit_callbacks):
    """A sandbox campaign of `n` sent through the real engine, then every message made `sent`
    (the sandbox fails a few at random), so a test sets exactly the outcomes it needs."""

    def run(n: int) -> Campaign:
        campaign = CampaignFactory(lists=[ContactListFactory(size=n)])
        with django_capture_on_commit_callbacks(execute=True):
            campaign_send_now(campaign_id=campaign.pk)
        Message.objects.filter(campaign=campaign).update(
            status="sent", error_class="", error_code="", error_message=""
        )
        Campaign.objects.filter(pk=campaign.pk).update(
            sent_count=n, failed_count=0, unknown_count=0, delivered_count=0, read_count=0
        )
        campaign.refresh_from_db()
        return campaign

    return run


def page(client, campaign, lang=EN):
    r = client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk]), **lang)
    assert r.status_code == 200
    assert r.headers["Content-Language"] == lang["HTTP_ACCEPT_LANGUAGE"][:2]
    return r.content.decode()


def action_url(campaign, action):
    return reverse("admin:campaigns_campaign_action", args=[campaign.pk, action])


# ---- 1. the funnel of a cancelled campaign; settling is active ---------------------------------


def test_cancelled_campaign_funnel_shows_cancelled_and_no_waiting(client, marketer):
    campaign = CampaignFactory(lists=[ContactListFactory(size=10)])
    campaign_transition(campaign_id=campaign.pk, to=Campaign.Status.RUNNING)
    campaign_materialize(campaign_id=campaign.pk)
    first = list(Message.objects.filter(campaign=campaign).order_by("pk")[:3])
    Message.objects.filter(pk__in=[m.pk for m in first]).update(status="sent")
    Campaign.objects.filter(pk=campaign.pk).update(sent_count=3)
    assert campaign_cancel(campaign_id=campaign.pk) == 7  # mid-way: 3 sent, 7 never sent

    stats = campaign_stats(campaign=campaign)
    assert stats["cancelled"] == 7 and stats["pct"]["cancelled"] == 70.0
    assert stats["queued"] == 0 and stats["progress"] == 100 and not stats["running"]
    body = page(client, campaign)
    assert 'id="funnel-cancelled">7<' in body
    assert 'id="funnel-queued">0<' in body
    assert "Cancelled" in body
    page(client, campaign, VI)


def test_settling_campaign_is_active_everywhere(client, marketer, sent):
    campaign = sent(4)
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.SETTLING)
    campaign.refresh_from_db()
    assert campaign_allowed_actions(campaign=campaign) == ["pause", "cancel"]
    assert campaign_stats(campaign=campaign)["running"]  # the page refreshes itself
    body = page(client, campaign)
    assert 'data-running="1"' in body
    assert 'id="action-pause"' in body and 'id="action-cancel"' in body
    dashboard.dashboard_cache_clear()
    index = client.get(reverse("admin:index"), **EN).content.decode()
    assert reverse("admin:campaigns_campaign_change", args=[campaign.pk]) in index
    from campaigns.management.commands.loa_status import loa_status

    assert loa_status()["campaigns_running"] == 1
    call_command("loa_status", stdout=__import__("io").StringIO())


# ---- 2. retry failed recipients ----------------------------------------------------------------


def _fail(campaign, rows):
    msgs = list(Message.objects.filter(campaign=campaign).order_by("pk"))
    for msg, (klass, code) in zip(msgs, rows, strict=False):
        Message.objects.filter(pk=msg.pk).update(
            status="failed", error_class=klass, error_code=code, attempts=5
        )
    Campaign.objects.filter(pk=campaign.pk).update(
        sent_count=len(msgs) - len(rows), failed_count=len(rows)
    )
    campaign.refresh_from_db()
    return msgs


def test_retry_failed_recipients_confirms_the_count_and_requeues_them(
    client, marketer, sent, django_capture_on_commit_callbacks
):
    campaign = sent(5)
    msgs = _fail(
        campaign,
        [
            (ErrorClass.RETRYABLE, "connect_error"),
            (ErrorClass.RETRYABLE, "connect_timeout"),
            (ErrorClass.PERMANENT, "-118"),
        ],
    )
    assert 'id="action-retry_failed"' in page(client, campaign)
    r = client.get(action_url(campaign, "retry_failed"), **EN)
    body = r.content.decode()
    assert r.status_code == 200
    assert 'id="retry-count">2<' in body
    assert "sent again" in body and "refused" in body
    assert client.get(action_url(campaign, "retry_failed"), **VI).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        r = client.post(action_url(campaign, "retry_failed"), follow=True, **EN)
    assert "2 failed recipients queued again" in r.content.decode()
    statuses = dict(Message.objects.filter(campaign=campaign).values_list("pk", "error_code"))
    assert statuses[msgs[2].pk] == "-118"
    assert Message.objects.get(pk=msgs[2].pk).status == "failed"  # a refusal is never retried
    assert statuses[msgs[0].pk] != "connect_error" and statuses[msgs[1].pk] != "connect_timeout"
    campaign.refresh_from_db()
    assert campaign.events.filter(to_status="running", from_status="completed").exists()
    # The action is offered exactly while something is retryable (the sandbox may fail a retried
    # message again), and refused when forced without.
    left = campaign_retryable_failures(campaign=campaign).exists()
    assert ('id="action-retry_failed"' in page(client, campaign)) == left
    if not left:
        assert client.post(action_url(campaign, "retry_failed")).status_code == 302
        assert 'id="action-retry_failed"' not in page(client, campaign)


def test_retry_failed_needs_the_send_permission(client, sent):
    campaign = sent(2)
    _fail(campaign, [(ErrorClass.RETRYABLE, "connect_error")])
    user = UserFactory(username="viewer", groups=[])
    user.is_staff = True
    user.save()
    user.user_permissions.add(*Permission.objects.filter(codename="view_campaign"))
    client.force_login(user)
    assert client.post(action_url(campaign, "retry_failed")).status_code == 403
    assert Message.objects.filter(campaign=campaign, status="failed").count() == 1


# ---- 3. send again the messages whose outcome could not be proven ------------------------------


def test_resend_unproven_warns_of_duplicates_and_resends(
    client, marketer, sent, django_capture_on_commit_callbacks
):
    campaign = sent(4)
    msgs = list(Message.objects.filter(campaign=campaign).order_by("pk"))
    Message.objects.filter(pk__in=[msgs[0].pk, msgs[1].pk]).update(
        status="unknown", error_code="status_unproven"
    )
    Message.objects.filter(pk=msgs[2].pk).update(status="unknown", error_code="")  # still asking
    Campaign.objects.filter(pk=campaign.pk).update(
        status=Campaign.Status.SETTLING, sent_count=1, unknown_count=3
    )
    campaign.refresh_from_db()
    body = page(client, campaign)
    assert "2 messages: the outcome could not be proven" in body
    changelist = reverse("admin:campaigns_message_changelist")
    assert f"{changelist}?campaign__id__exact={campaign.pk}&amp;status__exact=unknown" in body
    assert 'id="action-resend_unproven"' in body
    link = f"{changelist}?campaign__id__exact={campaign.pk}&status__exact=unknown&q=status_unproven"
    assert link.replace("&", "&amp;") in body
    listed = client.get(link, **EN)
    assert listed.status_code == 200 and listed.context["cl"].result_count == 2
    page(client, campaign, VI)
    r = client.get(action_url(campaign, "resend_unproven"), **EN)
    body = r.content.decode()
    assert 'id="unproven-count">2<' in body and "may receive the message twice" in body
    assert client.get(action_url(campaign, "resend_unproven"), **VI).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        r = client.post(action_url(campaign, "resend_unproven"), follow=True, **EN)
    assert "2 messages will be sent again" in r.content.decode()
    after = dict(Message.objects.filter(campaign=campaign).values_list("pk", "status"))
    assert after[msgs[0].pk] != "unknown" and after[msgs[1].pk] != "unknown"
    assert after[msgs[2].pk] == "unknown"  # not proven either way yet: not the person's call


# ---- 4. provider outage: campaign page and dashboard -------------------------------------------


def test_provider_outage_banner_on_campaign_page_and_dashboard(client, marketer, sent):
    campaign = sent(3)
    since = timezone.now() - timedelta(minutes=4)
    Campaign.objects.filter(pk=campaign.pk).update(
        status=Campaign.Status.PAUSED,
        outage_since=since,
        outage_error="connect_error",
        outage_failures=10,
    )
    campaign.refresh_from_db()
    hhmm = timezone.localtime(since).strftime("%H:%M")
    body = page(client, campaign)
    assert 'id="outage"' in body
    assert f"The provider could not be reached since {hhmm}" in body
    assert "refuses the connection" in body
    assert "Sending is paused" in body and "Resume when the provider is back" in body
    page(client, campaign, VI)
    dashboard.dashboard_cache_clear()
    index = client.get(reverse("admin:index"), **EN).content.decode()
    assert 'id="dash-outages"' in index and campaign.name in index
    assert "refuses the connection" in index
    dashboard.dashboard_cache_clear()
    assert client.get(reverse("admin:index"), **VI).status_code == 200

    # Running (below the pause threshold): the page says it keeps trying, not that it paused.
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.RUNNING)
    body = page(client, campaign)
    assert 'id="outage"' in body and "Sending is paused" not in body


# ---- 5. the attempt inline ---------------------------------------------------------------------


def test_message_page_shows_attempts_in_flight_and_their_state(client, marketer, sent):
    campaign = sent(1)
    msg = Message.objects.get(campaign=campaign)
    MessageAttempt.objects.create(message=msg, in_flight=True)
    r = client.get(reverse("admin:campaigns_message_change", args=[msg.pk]), **EN)
    body = r.content.decode()
    assert r.status_code == 200
    assert "field-in_flight" in body and "field-state" in body
    attempt = MessageAttempt.objects.get(message=msg, in_flight=True)
    assert escape(attempt.state_text()) in body  # "the request may or may not have reached..."
