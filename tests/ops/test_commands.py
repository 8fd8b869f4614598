"""loa_status (queue depth, stuck messages, last callbacks) and purge_old_data (retention)."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from unittest import mock

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_q.models import OrmQ, Schedule

from campaigns.models import Campaign, Message, MessageAttempt
from providers.models import ProviderAccount
from tests.factories import CampaignFactory, ContactFactory, ProviderAccountFactory, message_for
from webhooks.management.commands.purge_old_data import SCHEDULE_NAME, data_purge
from webhooks.models import InboundMessage, WebhookEvent

pytestmark = pytest.mark.django_db
S = Message.Status


def make_messages(campaign: Campaign, n: int, status: str = S.SENT, **fields) -> list[Message]:
    contacts = ContactFactory.create_batch(n)
    return Message.objects.bulk_create(
        [message_for(campaign, c, status=status, **fields) for c in contacts]
    )


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


# ---- loa_status --------------------------------------------------------------------------------


def test_loa_status_reports_queue_stuck_unknown_and_callbacks():
    now = timezone.now()
    running = CampaignFactory(status=Campaign.Status.RUNNING)
    old_claim = now - timedelta(hours=1)
    make_messages(running, 3, status=S.SENDING, claimed_at=old_claim)
    make_messages(running, 2, status=S.SENDING, claimed_at=now)  # in flight, not stuck
    make_messages(running, 4, status=S.UNKNOWN)
    make_messages(running, 5, status=S.PENDING)
    account = running.channel.account
    ProviderAccount.objects.filter(pk=account.pk).update(last_callback_at=now - timedelta(hours=2))
    silent = ProviderAccountFactory(name="Quiet eSMS", kind="esms")
    from django_q.conf import Conf
    from django_q.tasks import async_task

    with mock.patch.object(Conf, "SYNC", False):  # the test settings run tasks inline
        async_task("math.floor", 1.5)
        async_task("math.floor", 2.5)
    assert OrmQ.objects.count() == 2

    report = json.loads(run("loa_status", "--json"))
    assert report["queue"] == {
        "broker": "orm",
        "queued": 2,
        "in_table": 2,
        "oldest_lock": report["queue"]["oldest_lock"],
        "ok": True,
    }
    assert report["campaigns_running"] == 1
    assert report["pending_in_running_campaigns"] == 5
    assert report["stuck_sending"]["total"] == 3
    assert report["stuck_sending"]["by_campaign"][0]["campaign_id"] == running.pk
    assert report["unknown"]["total"] == 4
    by_name = {a["name"]: a for a in report["accounts"]}
    assert by_name[account.name]["seconds_since_callback"] >= 7200
    assert by_name[account.name]["last_callback_at"].endswith("+07:00")  # Asia/Ho_Chi_Minh
    assert by_name["Quiet eSMS"]["last_callback_at"] is None and silent.pk
    assert any("3 message(s) in sending" in p for p in report["problems"])

    text = run("loa_status")
    assert "queue (orm): 2 waiting" in text
    assert "stuck in sending > 600 s: 3" in text
    assert "unknown (reconciling): 4" in text
    assert "Quiet eSMS [esms]: never" in text
    with pytest.raises(CommandError):
        call_command("loa_status", "--check", stdout=io.StringIO())


def test_loa_status_silent_account_with_running_campaign_is_a_problem():
    running = CampaignFactory(status=Campaign.Status.RUNNING)
    ProviderAccount.objects.filter(pk=running.channel.account_id).update(kind="esms")
    report = json.loads(run("loa_status", "--json"))
    assert any("no callback ever" in p for p in report["problems"])


def test_loa_status_all_quiet():
    Schedule.objects.update(next_run=timezone.now() + timedelta(seconds=30))
    report = json.loads(run("loa_status", "--json"))
    assert report["problems"] == []
    run("loa_status", "--check")  # exits 0


# ---- purge_old_data ----------------------------------------------------------------------------


@pytest.fixture
def aged():
    """Old and recent rows of every kind the purge handles."""
    now = timezone.now()
    old_done = CampaignFactory(status=Campaign.Status.COMPLETED, finished_at=now - timedelta(400))
    old_cancelled = CampaignFactory(
        status=Campaign.Status.CANCELLED, finished_at=now - timedelta(500)
    )
    recent_done = CampaignFactory(status=Campaign.Status.COMPLETED, finished_at=now - timedelta(10))
    # failed campaigns can be resumed: never purged whatever their age
    old_failed = CampaignFactory(status=Campaign.Status.FAILED, finished_at=now - timedelta(900))
    msgs = {
        "old_done": make_messages(old_done, 7),
        "old_cancelled": make_messages(old_cancelled, 3),
        "recent_done": make_messages(recent_done, 4),
        "old_failed": make_messages(old_failed, 2),
    }
    attempts = []
    for m in msgs["old_done"] + msgs["recent_done"]:
        attempts.append(MessageAttempt(message=m, status_code=200, request_body="{}"))
    MessageAttempt.objects.bulk_create(attempts)
    # recent attempts of the recent campaign: 4 old (40 days) + 4 recent
    recent_ids = [m.pk for m in msgs["recent_done"]]
    old_attempts = MessageAttempt.objects.filter(message_id__in=recent_ids)
    extra = MessageAttempt.objects.bulk_create(
        [MessageAttempt(message_id=i, status_code=200) for i in recent_ids]
    )
    MessageAttempt.objects.filter(pk__in=[a.pk for a in extra]).update(
        created_at=now - timedelta(days=40)
    )
    assert old_attempts.count() == 8
    account = old_done.channel.account
    events = [
        WebhookEvent.objects.create(
            account=account, method="GET", message=msgs["old_done"][0], dedupe_key=f"e{i}"
        )
        for i in range(6)
    ]
    WebhookEvent.objects.filter(pk__in=[e.pk for e in events[:4]]).update(
        received_at=now - timedelta(days=100)
    )
    inbound = InboundMessage.objects.create(
        account=account, sender="u1", text="STOP", event=events[0]
    )
    return {
        "campaigns": (old_done, old_cancelled, recent_done, old_failed),
        "msgs": msgs,
        "inbound": inbound,
        "events": events,
    }


def test_purge_dry_run_counts_and_deletes_nothing(aged):
    before = (Message.objects.count(), MessageAttempt.objects.count(), WebhookEvent.objects.count())
    out = run("purge_old_data", "--dry-run")
    # 7 + 3 messages of ended campaigns; their 7 attempts + 4 attempts older than 30 days;
    # 4 webhook events older than 90 days
    assert "would delete: 10 messages, 11 message attempts, 4 webhook events" in out
    after = (Message.objects.count(), MessageAttempt.objects.count(), WebhookEvent.objects.count())
    assert before == after
    assert not Schedule.objects.filter(name=SCHEDULE_NAME).exists()


def test_purge_deletes_past_the_windows_in_small_batches(aged):
    out = run("purge_old_data", "--batch-size", "3")
    assert "deleted: 10 messages, 11 message attempts, 4 webhook events" in out
    old_done, old_cancelled, recent_done, old_failed = aged["campaigns"]
    assert not Message.objects.filter(campaign__in=[old_done, old_cancelled]).exists()
    assert Message.objects.filter(campaign=recent_done).count() == 4
    assert Message.objects.filter(campaign=old_failed).count() == 2
    assert MessageAttempt.objects.count() == 4  # the recent campaign's recent attempts
    # the campaigns and their counters stay
    assert Campaign.objects.filter(pk=old_done.pk).exists()
    # webhook events: the 2 recent ones stay, and lost their link to the purged message
    remaining = WebhookEvent.objects.all()
    assert remaining.count() == 2
    assert all(e.message_id is None for e in remaining)
    # the inbound reply stays, without its (purged) raw event
    aged["inbound"].refresh_from_db()
    assert aged["inbound"].event_id is None
    # a first real run installs the daily schedule
    sched = Schedule.objects.get(name=SCHEDULE_NAME)
    assert sched.schedule_type == Schedule.DAILY
    assert timezone.localtime(sched.next_run).strftime("%H:%M") == "03:00"
    # a second run finds nothing
    assert "deleted: 0 messages, 0 message attempts, 0 webhook events" in run("purge_old_data")


def test_purge_deletes_by_batches_of_ids_never_whole_tables(aged):
    with CaptureQueriesContext(connection) as ctx:
        data_purge(batch_size=2)
    deletes = [q["sql"] for q in ctx.captured_queries if q["sql"].upper().startswith("DELETE")]
    assert deletes
    for sql in deletes:
        # DELETE ... WHERE id IN (...), or a range of one campaign's message ids
        ranged = "CAMPAIGN_ID" in sql.upper() and ">=" in sql and "<" in sql
        assert " IN (" in sql.upper() or ranged, sql
        assert "LOCK" not in sql.upper()
    assert not any("LOCK TABLE" in q["sql"].upper() for q in ctx.captured_queries)


def test_replies_go_after_their_window_but_unmatched_opt_out_requests_wait(aged, settings):
    """A reply holds a person's own words and phone: kept LOA_RETENTION_INBOUND_DAYS, except an
    opt-out request no contact could be tied to, which waits for a person however old. The
    opt-out a reply applied is an OptOut row and stays."""
    from campaigns.models import OptOut

    now = timezone.now()
    account = aged["campaigns"][0].channel.account
    person = ContactFactory()
    OptOut.objects.create(contact=person, source=OptOut.Source.REPLY, reason="STOP")
    state = InboundMessage.OptOutState

    def reply(days, text, opt_out_state=""):
        row = InboundMessage.objects.create(
            account=account,
            sender="u2",
            phone=person.phone,
            text=text,
            contact=person,
            opted_out=bool(opt_out_state),
            opt_out_state=opt_out_state,
        )
        InboundMessage.objects.filter(pk=row.pk).update(received_at=now - timedelta(days=days))
        return row

    old = [reply(400, "Cho tôi hỏi giá"), reply(366, "STOP", state.APPLIED)]
    waiting = reply(800, "HUY", state.NOT_MATCHED)
    recent = reply(364, "Cảm ơn")
    assert "4 webhook events, 2 replies" in run("purge_old_data", "--dry-run")
    assert InboundMessage.objects.filter(pk__in=[r.pk for r in old]).count() == 2
    assert "2 replies" in run("purge_old_data", "--batch-size", "1")
    assert not InboundMessage.objects.filter(pk__in=[r.pk for r in old]).exists()
    assert (
        InboundMessage.objects.filter(pk__in=[waiting.pk, recent.pk, aged["inbound"].pk]).count()
        == 3
    )
    assert OptOut.objects.filter(contact=person).exists()
    assert "0 replies" in run("purge_old_data", "--inbound-days", "0")
    settings.LOA_RETENTION_INBOUND_DAYS = 300
    assert "1 replies" in run("purge_old_data")  # the 364-day one, under a shorter window
    assert InboundMessage.objects.filter(pk__in=[waiting.pk, aged["inbound"].pk]).count() == 2


def test_a_window_of_zero_keeps_that_kind_forever(aged):
    out = run("purge_old_data", "--message-days", "0", "--attempt-days", "0", "--webhook-days", "0")
    assert "deleted: 0 messages, 0 message attempts, 0 webhook events" in out


def test_install_schedule_and_bad_arguments():
    out = run("purge_old_data", "--install-schedule", "--at", "02:30")
    assert "created: daily at 02:30" in out
    sched = Schedule.objects.get(name=SCHEDULE_NAME)
    assert sched.func == "webhooks.management.commands.purge_old_data.scheduled_purge"
    out = run("purge_old_data", "--install-schedule")
    assert "updated: daily at 03:00" in out
    assert Schedule.objects.filter(name=SCHEDULE_NAME).count() == 1
    with pytest.raises(CommandError, match="HH:MM"):
        call_command("purge_old_data", "--at", "25:00")
    with pytest.raises(CommandError, match="negative"):
        call_command("purge_old_data", "--message-days", "-1")


def test_the_scheduled_task_runs_the_purge(aged):
    from django_q.models import Schedule as Sched

    run("purge_old_data", "--install-schedule")
    sched = Sched.objects.get(name=SCHEDULE_NAME)
    from pydoc import locate

    result = locate(sched.func)()
    assert result == {
        "messages": 10,
        "attempts": 11,
        "webhook_events": 4,
        "inbound_messages": 0,  # the aged reply is recent
        "webhook_bodies": 0,  # (the aged events are deleted first)
        "import_files": 0,
    }


def test_purge_by_id_ranges_deletes_exactly_the_ended_campaigns_rows():
    """Slices are ranges of consecutive ids of one campaign: a newer campaign's messages whose
    ids fall inside the old campaign's range stay, with their attempts; the old ones' attempts
    go with them (the cascade), whatever the slice width."""
    now = timezone.now()
    old = CampaignFactory(status=Campaign.Status.COMPLETED, finished_at=now - timedelta(400))
    new = CampaignFactory(status=Campaign.Status.COMPLETED, finished_at=now - timedelta(10))
    contacts = [ContactFactory() for _ in range(7)]
    # ids interleaved: old, new, old, new, ...
    msgs = [
        Message.objects.create(**vars_of(message_for(old if i % 2 == 0 else new, c)))
        for i, c in enumerate(contacts)
    ]
    for m in msgs:
        MessageAttempt.objects.create(message=m, status_code=200)
    kept = [m.pk for m in msgs if m.campaign_id == new.pk]
    out = data_purge(now=now, batch_size=2, attempt_days=0, webhook_days=0)
    assert out["messages"] == 4 and out["attempts"] == 4
    assert sorted(Message.objects.values_list("pk", flat=True)) == kept
    assert sorted(MessageAttempt.objects.values_list("message_id", flat=True)) == kept
    assert Campaign.objects.filter(pk=old.pk).exists()


def vars_of(message: Message) -> dict:
    """An unsaved message's field values, to create it (and get its id) one at a time."""
    return {f.attname: getattr(message, f.attname) for f in Message._meta.concrete_fields[1:]}


def test_purge_takes_the_api_records_with_their_messages():
    """ApiMessage.message has no foreign-key constraint in the database (api/0006: its trigger
    cost the purge 15 s a month at 50M messages): the purge deletes those rows itself, first,
    and leaves none pointing at a deleted message; a recent API message keeps its record."""
    from campaigns.api.models import ApiApplication, ApiMessage

    now = timezone.now()
    app = ApiApplication.objects.create(name="Shop")
    records = {}
    for age in (400, 10):
        campaign = CampaignFactory(
            origin=Campaign.Origin.API,
            status=Campaign.Status.COMPLETED,
            finished_at=now - timedelta(age),
        )
        msg = message_for(campaign, ContactFactory(), status="delivered")
        msg.save()
        records[age] = ApiMessage.objects.create(
            application=app, campaign=campaign, message=msg, client_reference=f"R{age}"
        )
    out = data_purge(now=now, batch_size=1, attempt_days=0, webhook_days=0)
    assert out["messages"] == 1
    assert list(ApiMessage.objects.values_list("client_reference", flat=True)) == ["R10"]
    assert not ApiMessage.objects.exclude(message_id__in=Message.objects.values("pk")).exists()
