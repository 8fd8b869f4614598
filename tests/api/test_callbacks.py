# ruff: noqa: F811 (the fixtures imported from callback_fixtures are used as arguments)
"""Status callbacks to the client (issue 18): the engine's status changes of API messages queue one
outbox row each, in the engine's transaction; the pump POSTs them to the application's URL,
signed, to a real local HTTP receiver; failures are retried with backoff and given up after 24 h."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from campaigns.api.callbacks import services
from campaigns.api.callbacks.services import callbacks_send_due
from campaigns.api.models import CallbackDelivery
from campaigns.engine.delivery import messages_apply_events
from campaigns.models import Message
from providers.base import EventStatus, StatusEvent
from tests.api.callback_fixtures import (  # noqa: F401 (fixtures)
    SECRET,
    api_message_for,
    application,
    receiver,
)
from tests.api.receiver import site_text, verify
from tests.factories import CampaignFactory, ContactFactory, message_for

pytestmark = pytest.mark.django_db


def _event(status, **kw):
    return StatusEvent(status=status, **kw)


def test_a_status_change_is_posted_signed_with_its_status_and_time(application, receiver):
    am = api_message_for(application, client_reference="ORDER-42")
    at = timezone.now() - timedelta(minutes=3)
    changed = messages_apply_events(
        items=[(am.message_id, _event(EventStatus.DELIVERED, occurred_at=at, fee=Decimal("300")))]
    )
    assert changed == 1
    row = CallbackDelivery.objects.get()
    assert (row.application_id, row.api_message_id, row.status) == (
        application.pk,
        am.pk,
        "delivered",
    )
    assert row.next_attempt_at is not None and row.delivered_at is None

    report = callbacks_send_due()
    assert (report.delivered, report.failed) == (1, 0)
    [got] = receiver.received
    assert verify(SECRET, got)
    assert got.headers["Content-Type"] == "application/json"
    assert got.headers["X-Loa-Delivery"] == str(row.pk)
    assert got.headers["X-Loa-Event"] == "message.status"
    assert got.json == {
        "event": "message.status",
        "message_id": am.pk,
        "client_reference": "ORDER-42",
        "phone": am.message.phone,
        "status": "delivered",
        "status_rank": 3,
        "final": False,
        "occurred_at": at.isoformat(),
        "fee": 300.0,
        "currency": "VND",
        "error": None,
    }
    row.refresh_from_db()
    assert row.delivered_at is not None and row.attempts == 1 and row.last_status_code == 200
    assert row.next_attempt_at is None
    assert callbacks_send_due().delivered == 0  # delivered once: nothing left


def test_the_signature_covers_timestamp_and_body(application, receiver):
    am = api_message_for(application)
    messages_apply_events(items=[(am.message_id, _event(EventStatus.READ))])
    callbacks_send_due()
    [got] = receiver.received
    assert verify(SECRET, got)
    assert not verify("another secret", got)
    tampered = type(got)(got.headers, got.body.replace(b'"read"', b'"failed"'), got.at)
    assert not verify(SECRET, tampered)
    later = int(got.headers["X-Loa-Timestamp"]) + 301  # replayed after the 5-minute window
    assert not verify(SECRET, got, now=later)


def test_failure_carries_the_error_and_is_final(application, receiver):
    am = api_message_for(application)
    messages_apply_events(
        items=[
            (
                am.message_id,
                _event(EventStatus.FAILED, error_code="-114", error_message="User is inactive"),
            )
        ]
    )
    callbacks_send_due()
    body = receiver.received[0].json
    assert body["status"] == "failed" and body["final"] is True
    assert body["error"]["code"] == "-114"
    assert body["error"]["provider_message"] == "User is inactive"
    assert body["error"]["meaning"]  # the code's explanation (providers.errors), never empty


def test_duplicates_late_events_and_campaign_messages_queue_nothing(application):
    am = api_message_for(application)
    messages_apply_events(items=[(am.message_id, _event(EventStatus.DELIVERED))])
    messages_apply_events(items=[(am.message_id, _event(EventStatus.DELIVERED))])  # duplicate
    messages_apply_events(items=[(am.message_id, _event(EventStatus.SENT))])  # late
    assert CallbackDelivery.objects.count() == 1

    # A campaign's message (origin "campaign") never reaches the API room.
    campaign_msg = message_for(CampaignFactory(), ContactFactory(), status=Message.Status.SENT)
    campaign_msg.save()
    messages_apply_events(items=[(campaign_msg.pk, _event(EventStatus.DELIVERED))])
    assert CallbackDelivery.objects.count() == 1


def test_an_application_without_a_callback_url_gets_no_rows(application):
    application.callback_url = ""
    application.save()
    am = api_message_for(application)
    messages_apply_events(items=[(am.message_id, _event(EventStatus.DELIVERED))])
    assert not CallbackDelivery.objects.exists()


def test_a_fee_learned_later_is_its_own_callback(application, receiver):
    am = api_message_for(application, status=Message.Status.DELIVERED)
    messages_apply_events(
        items=[(am.message_id, _event(EventStatus.DELIVERED, fee=Decimal("250.5")))]
    )
    row = CallbackDelivery.objects.get()
    assert row.event == "message.fee"
    callbacks_send_due()
    body = receiver.received[0].json
    assert body["event"] == "message.fee" and body["status"] == "delivered"
    assert body["fee"] == 250.5


def test_many_changes_in_one_batch_are_one_insert(application, django_assert_max_num_queries):
    ams = [api_message_for(application, client_reference=f"R{i}") for i in range(20)]
    items = [(am.message_id, _event(EventStatus.DELIVERED)) for am in ams]
    # lock + read, one UPDATE per shape, counters per campaign (20 one-message campaigns), the
    # origin lookup, the API messages' SELECT and ONE outbox INSERT (+ savepoints).
    with django_assert_max_num_queries(20 + 12) as ctx:
        messages_apply_events(items=items)
    inserts = [q for q in ctx.captured_queries if "INSERT" in q["sql"] and "callback" in q["sql"]]
    assert len(inserts) == 1
    assert CallbackDelivery.objects.count() == 20


def test_a_failing_client_is_retried_with_backoff_then_gets_it(application, receiver, monkeypatch):
    """500, then no answer in time, then 200: three attempts at 0 s, +30 s, +60 s after that."""
    monkeypatch.setattr(services, "TIMEOUT", (1, 0.5))
    receiver.script = [500, "slow"]
    receiver.slow_seconds = 1.5
    am = api_message_for(application)
    messages_apply_events(items=[(am.message_id, _event(EventStatus.DELIVERED))])
    row = CallbackDelivery.objects.get()
    t0 = timezone.now()

    assert callbacks_send_due(now=t0).failed == 1
    row.refresh_from_db()
    assert (row.attempts, row.last_status_code) == (1, 500)
    assert row.last_error == site_text("The client answered HTTP {code}.").format(code=500)
    assert row.next_attempt_at == t0 + timedelta(seconds=30)

    assert callbacks_send_due(now=t0 + timedelta(seconds=20)).failed == 0  # not due yet

    t1 = t0 + timedelta(seconds=31)
    assert callbacks_send_due(now=t1).failed == 1
    row.refresh_from_db()
    assert row.attempts == 2 and row.last_status_code is None
    assert row.last_error == site_text("No answer within {seconds} seconds.").format(seconds=0.5)
    assert row.next_attempt_at == t1 + timedelta(seconds=60)

    t2 = t1 + timedelta(seconds=61)
    assert callbacks_send_due(now=t2).delivered == 1
    row.refresh_from_db()
    assert row.delivered_at == t2 and row.attempts == 3 and row.last_error == ""
    assert len(receiver.received) == 3
    # The same callback each time (same delivery id and body), signed afresh each time.
    assert {r.headers["X-Loa-Delivery"] for r in receiver.received} == {str(row.pk)}
    assert len({r.body for r in receiver.received}) == 1
    assert all(verify(SECRET, r) for r in receiver.received)


def test_retry_schedule_doubles_up_to_an_hour():
    delays = [services.retry_delay(n).total_seconds() for n in range(1, 10)]
    assert delays == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]


def test_given_up_after_24_hours(application, receiver):
    receiver.script = [503] * 5
    am = api_message_for(application)
    messages_apply_events(items=[(am.message_id, _event(EventStatus.DELIVERED))])
    row = CallbackDelivery.objects.get()
    assert row.retry_until == row.created_at + timedelta(hours=24)

    # Time moved: the last attempt inside the window fails, and the next would fall past it.
    late = row.created_at + timedelta(hours=23, minutes=59, seconds=50)
    report = callbacks_send_due(now=late)
    assert (report.given_up, report.failed) == (1, 0)
    row.refresh_from_db()
    assert row.given_up_at == late and row.next_attempt_at is None
    assert row.state == CallbackDelivery.State.GIVEN_UP
    assert callbacks_send_due(now=late + timedelta(hours=2)).given_up == 0  # never tried again
    assert len(receiver.received) == 1


def test_a_removed_url_or_secret_is_a_recorded_failure_not_a_crash(application, receiver):
    am = api_message_for(application)
    messages_apply_events(items=[(am.message_id, _event(EventStatus.DELIVERED))])
    application.callback_secret = ""
    application.save()
    assert callbacks_send_due().failed == 1
    row = CallbackDelivery.objects.get()
    assert row.last_error == site_text("The application has no callback secret to sign with.")
    assert receiver.received == []  # nothing unsigned ever leaves


def test_an_http_url_is_refused_where_https_is_required(application, receiver, settings):
    settings.LOA_ALLOW_HTTP_PROVIDER_URLS = False
    am = api_message_for(application)
    messages_apply_events(items=[(am.message_id, _event(EventStatus.DELIVERED))])
    assert callbacks_send_due().failed == 1
    assert CallbackDelivery.objects.get().last_error == site_text(
        "The callback URL must use https."
    )
    assert receiver.received == []


def test_a_cancelled_api_message_is_told_and_a_campaign_cancel_reads_no_ids(application, receiver):
    from campaigns.engine.lifecycle import campaign_cancel
    from campaigns.models import Campaign

    am = api_message_for(application, status=Message.Status.PENDING)
    Campaign.objects.filter(pk=am.campaign_id).update(status=Campaign.Status.RUNNING)
    assert campaign_cancel(campaign_id=am.campaign_id) == 1
    callbacks_send_due()
    body = receiver.received[0].json
    assert body["status"] == "cancelled" and body["final"] is True


def test_a_worker_dying_mid_send_leaves_the_callback_due_again(application, receiver, monkeypatch):
    """At least once: the row is pushed ahead before the POST, not marked; a pump that dies
    there leaves it to the next pump after IN_FLIGHT_GRACE."""
    am = api_message_for(application)
    messages_apply_events(items=[(am.message_id, _event(EventStatus.DELIVERED))])
    t0 = timezone.now()

    def die(*args, **kwargs):
        raise RuntimeError("worker killed")

    with monkeypatch.context() as m:
        m.setattr(services, "_post", die)
        with pytest.raises(RuntimeError):
            callbacks_send_due(now=t0)
    row = CallbackDelivery.objects.get()
    assert row.delivered_at is None and row.attempts == 0
    assert row.next_attempt_at == t0 + services.IN_FLIGHT_GRACE
    assert callbacks_send_due(now=t0 + timedelta(seconds=30)).delivered == 0  # still in flight
    assert callbacks_send_due(now=t0 + services.IN_FLIGHT_GRACE).delivered == 1
    assert len(receiver.received) == 1


def test_the_pump_drains_everything_due_one_pump_at_a_time(application, receiver):
    from campaigns.engine.leases import lease_acquire, lease_release

    ams = [api_message_for(application, client_reference=f"P{i}") for i in range(5)]
    messages_apply_events(items=[(a.message_id, _event(EventStatus.DELIVERED)) for a in ams])
    holder = lease_acquire(services.PUMP_LEASE, 60)
    assert services.callbacks_pump().delivered == 0  # another pump holds the lease
    lease_release(services.PUMP_LEASE, holder)
    assert services.callbacks_pump().delivered == 5
    assert sorted(r.json["client_reference"] for r in receiver.received) == [
        f"P{i}" for i in range(5)
    ]


def test_a_failure_to_queue_callbacks_never_stops_the_statuses(application, monkeypatch, caplog):
    def broken(**kwargs):
        raise RuntimeError("outbox broken")

    monkeypatch.setattr("campaigns.api.callbacks.receivers.callbacks_enqueue", broken)
    am = api_message_for(application)
    assert messages_apply_events(items=[(am.message_id, _event(EventStatus.DELIVERED))]) == 1
    am.message.refresh_from_db()
    assert am.message.status == Message.Status.DELIVERED
    assert f"status callbacks not queued for messages {am.message_id}" in caplog.text


def test_the_pump_is_scheduled_every_minute_and_its_task_path_resolves(application, receiver):
    from django.utils.module_loading import import_string
    from django_q.models import Schedule

    schedule = Schedule.objects.get(name="loa: API callbacks")
    assert (schedule.schedule_type, schedule.minutes, schedule.repeats) == ("I", 1, -1)
    task = import_string(schedule.func)
    am = api_message_for(application)
    messages_apply_events(items=[(am.message_id, _event(EventStatus.DELIVERED))])
    assert task() == {"delivered": 1, "failed": 0, "given_up": 0}
    assert len(receiver.received) == 1
