"""The engine's rules, in-process: outcome classes, schedules, quiet hours, frequency cap, rate
limit, pause/resume/cancel, the reaper and reconciliation."""

import threading
import time
from datetime import timedelta

import pytest
from django.db.models import Count
from django.test import override_settings
from django.utils import timezone

from campaigns.engine import driver, materialize
from campaigns.engine import pacer as pacer_module
from campaigns.engine.claim import messages_claim
from campaigns.engine.delivery import message_find, messages_find
from campaigns.engine.driver import DriveResult, campaign_drive
from campaigns.engine.keys import idempotency_key, idempotency_key_parse
from campaigns.engine.lifecycle import (
    campaign_cancel,
    campaign_pause,
    campaign_resume,
    campaign_schedule,
    campaign_send_now,
    campaign_transition,
)
from campaigns.engine.materialize import campaign_materialize
from campaigns.engine.pacer import RatePacer
from campaigns.engine.policy import promotion_allowed_at
from campaigns.engine.reconcile import messages_reap_stuck, messages_reconcile
from campaigns.engine.scheduler import campaigns_start_due
from campaigns.engine.send import messages_send_batch
from campaigns.models import Campaign, Message
from providers import registry, zalo
from providers.base import BaseProvider, ErrorClass, EventStatus, SendResult, StatusEvent
from providers.sandbox.adapter import SandboxProvider
from tests.factories import (
    CampaignFactory,
    ContactListFactory,
    ProviderAccountFactory,
    TemplateFactory,
)

pytestmark = pytest.mark.django_db(transaction=True)


def quota_exceeded() -> SendResult:
    """What a Zalo relay answers when the OA's daily quota is used up: deferred until the quota's
    reset (the adapter asks providers.zalo when; the engine only reads the time)."""
    return SendResult.failed(
        ErrorClass.DEFERRED, -144, "OA daily quota exceeded", retry_at=zalo.deferred_until(-144)
    )


class ScriptedProvider(BaseProvider):
    """Answers each phone from a script; counts calls per idempotency key."""

    kind = "scripted"
    label = "Scripted (tests)"
    uses_http = False
    script: dict[str, SendResult] = {}
    calls: dict[str, int] = {}
    starts: list[float] = []
    lock = threading.Lock()
    now = staticmethod(time.monotonic)

    def send(self, message):
        with self.lock:
            ScriptedProvider.calls[message.idempotency_key] = (
                ScriptedProvider.calls.get(message.idempotency_key, 0) + 1
            )
            ScriptedProvider.starts.append(ScriptedProvider.now())
        return ScriptedProvider.script.get(message.phone) or SendResult.accepted(
            f"id-{message.idempotency_key}"
        )


@pytest.fixture
def scripted(monkeypatch):
    monkeypatch.setitem(registry.PROVIDERS, "scripted", ScriptedProvider)
    ScriptedProvider.script, ScriptedProvider.calls, ScriptedProvider.starts = {}, {}, []
    return ScriptedProvider


def _campaign(n, kind="sandbox", **kw):
    account = ProviderAccountFactory(kind=kind)
    cl = ContactListFactory(size=n)
    return CampaignFactory(lists=[cl], channel__account=account, **kw)


def test_each_outcome_class_lands_where_it_should(scripted):
    c = _campaign(5, kind="scripted")
    phones = list(c.lists.first().contacts.order_by("pk").values_list("phone", flat=True))
    scripted.script = {
        phones[0]: SendResult.failed(ErrorClass.PERMANENT, -118, "Zalo account not existed"),
        phones[1]: SendResult.failed(ErrorClass.AMBIGUOUS, "read_timeout", "timeout"),
        phones[2]: SendResult.failed(ErrorClass.RETRYABLE, "connect_error", "refused"),
        phones[3]: quota_exceeded(),
    }
    campaign_send_now(campaign_id=c.pk)
    by_phone = {m.phone: m for m in Message.objects.filter(campaign=c)}
    assert by_phone[phones[0]].status == "failed" and by_phone[phones[0]].error_code == "-118"
    assert by_phone[phones[1]].status == "unknown"
    assert (
        by_phone[phones[2]].status == "pending"
        and by_phone[phones[2]].next_attempt_at > timezone.now()
    )
    deferred = by_phone[phones[3]]
    assert deferred.status == "pending"
    assert (
        timezone.localtime(deferred.next_attempt_at).hour == 0
    )  # tomorrow, after the quota resets
    c.refresh_from_db()
    assert c.status == Campaign.Status.RUNNING and "00:05" in c.status_reason
    assert c.failed_count == 1 and c.unknown_count == 1


def test_configuration_error_pauses_the_campaign_and_says_why(scripted):
    c = _campaign(3, kind="scripted")
    for phone in c.lists.first().contacts.values_list("phone", flat=True):
        scripted.script[phone] = SendResult.failed(
            ErrorClass.CONFIGURATION, 101, "Authorize Failed"
        )
    campaign_send_now(campaign_id=c.pk)
    c.refresh_from_db()
    assert c.status == Campaign.Status.PAUSED
    assert "Authorize Failed" in c.status_reason
    assert not Message.objects.filter(campaign=c, status="sending").exists()


@override_settings(
    LOA={
        **__import__("django.conf").conf.settings.LOA,
        "FAILURE_PAUSE_MIN": 10,
        "FAILURE_PAUSE_RATE": 0.5,
        "SEND_BATCH_SIZE": 10,
    }
)
def test_failure_rate_auto_pauses_early(scripted):
    c = _campaign(60, kind="scripted")
    for phone in c.lists.first().contacts.values_list("phone", flat=True):
        scripted.script[phone] = SendResult.failed(ErrorClass.PERMANENT, -1121, "param too long")
    campaign_send_now(campaign_id=c.pk)
    c.refresh_from_db()
    assert c.status == Campaign.Status.PAUSED and "automatically" in c.status_reason
    assert len(scripted.calls) < 60  # it stopped before burning the whole audience


def test_pause_stops_claiming_and_resume_continues_exactly_the_rest(scripted):
    c = _campaign(30, kind="scripted")
    campaign_transition(campaign_id=c.pk, to=Campaign.Status.RUNNING)
    campaign_materialize(campaign_id=c.pk)
    batch = messages_claim(campaign_id=c.pk, limit=10, kind="zalo_zns")
    messages_send_batch(campaign=c, provider=c.channel.account.get_provider(), messages=batch)
    campaign_pause(campaign_id=c.pk)
    assert campaign_drive(campaign_id=c.pk) == DriveResult.PAUSED
    assert Message.objects.filter(campaign=c, status="pending").count() == 20
    campaign_resume(campaign_id=c.pk)  # drivers run inline in tests
    c.refresh_from_db()
    assert c.status == Campaign.Status.COMPLETED
    assert sorted(scripted.calls.values()) == [1] * 30


def test_cancel_ends_pending_rows():
    c = _campaign(10)
    campaign_transition(campaign_id=c.pk, to=Campaign.Status.RUNNING)
    campaign_materialize(campaign_id=c.pk)
    assert campaign_cancel(campaign_id=c.pk) == 10
    assert set(Message.objects.filter(campaign=c).values_list("status", flat=True)) == {"cancelled"}
    assert campaign_drive(campaign_id=c.pk) == DriveResult.PAUSED


def test_stale_schedule_waits_for_a_human_and_due_one_starts():
    due = _campaign(3)
    stale = _campaign(3)
    now = timezone.now()
    campaign_schedule(campaign_id=due.pk, when=now - timedelta(minutes=5))
    campaign_schedule(campaign_id=stale.pk, when=now - timedelta(hours=5))
    started = campaigns_start_due(now=now)
    assert started == [due.pk]
    stale.refresh_from_db()
    assert stale.status == Campaign.Status.SCHEDULED and "grace" in stale.status_reason
    assert not Message.objects.filter(campaign=stale).exists()


def test_quiet_hours_defer_promotion_not_transaction(monkeypatch):
    promo = _campaign(3, template__tag="promotion")
    trans = _campaign(3, template__tag="transaction")
    night = timezone.localtime().replace(hour=23, minute=30)
    monkeypatch.setattr(
        driver, "promotion_allowed_at", lambda now=None: (False, night + timedelta(hours=8))
    )
    campaign_send_now(campaign_id=promo.pk)
    campaign_send_now(campaign_id=trans.pk)
    assert Message.objects.filter(campaign=promo, status="pending").count() == 3
    promo.refresh_from_db()
    assert promo.status == Campaign.Status.RUNNING  # waiting for the window, restarted by the tick
    assert not Message.objects.filter(campaign=trans, status__in=["pending", "sending"]).exists()
    assert Message.objects.get(campaign=trans, contact=trans.lists.first().contacts.first()).sent_at


def test_quiet_window_arithmetic():
    tz_now = timezone.localtime()
    assert promotion_allowed_at(tz_now.replace(hour=12, minute=0))[0] is True
    ok, opens = promotion_allowed_at(tz_now.replace(hour=23, minute=0))
    assert (
        not ok
        and opens.hour == 7
        and opens.date() > tz_now.replace(hour=23).date() - timedelta(days=1)
    )
    ok, opens = promotion_allowed_at(tz_now.replace(hour=5, minute=0))
    assert not ok and opens.hour == 7 and opens.date() == tz_now.date()


@override_settings(LOA={**__import__("django.conf").conf.settings.LOA, "FREQUENCY_CAP_DAY": 1})
def test_frequency_cap_skips_contacts_who_got_a_promotion_today(monkeypatch):
    # whatever the hour the suite runs at: the quiet hours are another test's subject
    monkeypatch.setattr(driver, "promotion_allowed_at", lambda now=None: (True, timezone.now()))
    first = _campaign(4, template__tag="promotion")
    campaign_send_now(campaign_id=first.pk)
    second = CampaignFactory(
        channel=first.channel, template=first.template, lists=list(first.lists.all())
    )
    campaign_send_now(campaign_id=second.pk)
    assert set(Message.objects.filter(campaign=second).values_list("status", flat=True)) == {
        "skipped"
    }
    assert Message.objects.filter(campaign=second, error_code="frequency_cap").count() == 4


def _busiest_10s(times: list[float]) -> int:
    """The most sends in any 10-second window of the sorted send times."""
    busiest, j = 0, 0
    for i in range(len(times)):
        while times[i] - times[j] >= 10.0:
            j += 1
        busiest = max(busiest, i - j + 1)
    return busiest


class FakeClock:
    """A clock the test controls: sleeping moves it, instantly. `late` makes given sleeps (by
    their order) wake up that many seconds after they were due, as a busy machine does."""

    def __init__(self, start: float = 1_000_000.0, late: dict[int, float] | None = None):
        self.t = start
        self.sleeps = 0
        self.late = late or {}
        self.lock = threading.Lock()

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.sleeps += 1
            self.t += seconds + self.late.get(self.sleeps, 0.0)


def test_rate_limit_paces_sends(scripted, monkeypatch, settings):
    """Through the driver (send-now, batches, result writes between them), on a clock the test
    drives: the achieved rate is the limit, and no 10-second window holds more than 10 R. One
    send thread: the provider reads the clock right after each release (with several, a thread
    could read it after another one's sleep moved it)."""
    settings.LOA = {**settings.LOA, "SEND_CONCURRENCY": 1}
    clock = FakeClock()
    monkeypatch.setattr(pacer_module, "CLOCK", clock)
    monkeypatch.setattr(ScriptedProvider, "now", staticmethod(clock.now))
    c = _campaign(330, kind="scripted", rate_limit=30)
    campaign_send_now(campaign_id=c.pk)
    starts = sorted(scripted.starts)
    assert len(starts) == 330
    achieved = (len(starts) - 1) / (starts[-1] - starts[0])
    assert abs(achieved - 30) / 30 <= 0.01, achieved
    assert _busiest_10s(starts) == 300  # exactly the limit over a 10-second window, never above


def test_rate_pacer_catches_up_after_a_stall_without_breaking_the_window():
    clock = FakeClock()
    pacer = RatePacer(100, clock=clock)
    times = []
    for k in range(400):
        if k == 100:
            clock.t += 0.5  # a batch write stalls the driver
        pacer.wait()
        times.append(clock.now())
    achieved = (len(times) - 1) / (times[-1] - times[0])
    assert achieved > 99, achieved  # the stall was made up
    assert _busiest_10s(times) <= 1000
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert min(gaps) >= 1 / 125 - 1e-9  # catching up at 1.25 R, not in a burst


def test_rate_pacer_window_holds_when_a_send_wakes_up_late():
    """The 301st send in 10 s under load: a thread that woke up late from its sleep must not
    narrow the window between it and the send a window later (the window is counted on the
    times sends were released, not the times they were due)."""
    clock = FakeClock(late={50: 0.3})  # the 51st send's wake-up comes 0.3 s late
    pacer = RatePacer(30, clock=clock)
    times = []
    for _k in range(700):
        pacer.wait()
        times.append(clock.now())
    assert _busiest_10s(times) <= 300, _busiest_10s(times)


def test_reaper_sends_stuck_rows_to_reconciliation_and_sandbox_resolves_them():
    c = _campaign(4)
    campaign_transition(campaign_id=c.pk, to=Campaign.Status.RUNNING)
    campaign_materialize(campaign_id=c.pk)
    messages_claim(campaign_id=c.pk, limit=10, kind="zalo_zns")  # a worker claims, then dies
    Message.objects.filter(campaign=c).update(claimed_at=timezone.now() - timedelta(hours=1))
    assert messages_reap_stuck() == 4
    c.refresh_from_db()
    assert c.unknown_count == 4
    assert set(Message.objects.filter(campaign=c).values_list("status", flat=True)) == {"unknown"}
    # The sandbox answers status polls; nothing is sent twice.
    messages_reconcile()
    c.refresh_from_db()
    assert c.unknown_count == 0
    assert not Message.objects.filter(campaign=c, status="unknown").exists()


def test_sql_and_python_materialization_freeze_the_same_data(monkeypatch):
    mapping = {
        "customer_name": {"source": "field", "value": "name"},
        "order_code": {"source": "attribute", "value": "order"},
        "shop": {"source": "constant", "value": " Loa "},
        "missing": {"source": "attribute", "value": "nope"},
    }
    a = _campaign(
        5,
        param_mapping=mapping,
        template__params=["customer_name", "order_code", "shop", "missing"],
    )
    b = CampaignFactory(
        channel=a.channel, template=a.template, lists=list(a.lists.all()), param_mapping=mapping
    )
    campaign_materialize(campaign_id=a.pk)
    monkeypatch.setattr(materialize, "_materialize_sql", lambda campaign, audience, **kw: None)
    campaign_materialize(campaign_id=b.pk)
    da = {m.contact_id: m.template_data for m in Message.objects.filter(campaign=a)}
    db = {m.contact_id: m.template_data for m in Message.objects.filter(campaign=b)}
    assert da == db and len(da) == 5
    assert next(iter(da.values()))["shop"] == "Loa" and next(iter(da.values()))["missing"] == ""
    keys = list(Message.objects.filter(campaign=a).values_list("idempotency_key", "contact_id"))
    assert all(k == idempotency_key(a, cid) for k, cid in keys)


def test_materialization_is_idempotent():
    c = _campaign(7)
    assert campaign_materialize(campaign_id=c.pk) == 7
    assert campaign_materialize(campaign_id=c.pk) == 7


def test_unused_provider_stub_is_not_registered():
    assert "scripted" not in registry.PROVIDERS
    assert registry.PROVIDERS["sandbox"] is SandboxProvider
    _ = TemplateFactory  # factories import check


def test_messages_found_by_key_through_campaign_and_contact(admin_client):
    """The key has no index of its own: it is parsed into (campaign, contact), and the exact key
    must match too (a reused campaign id after a database reset has another stamp)."""
    c = _campaign(3)
    campaign_materialize(campaign_id=c.pk)
    msgs = list(Message.objects.filter(campaign=c).order_by("pk"))
    account_id = c.channel.account_id
    stale = msgs[1].idempotency_key.replace("t", "t0", 1)  # same ids, another stamp
    events = [
        StatusEvent(status=EventStatus.DELIVERED, idempotency_key=msgs[0].idempotency_key),
        StatusEvent(status=EventStatus.DELIVERED, idempotency_key=stale),
        StatusEvent(status=EventStatus.DELIVERED, idempotency_key="not-ours"),
        StatusEvent(status=EventStatus.DELIVERED, idempotency_key=f"loa{c.pk}t1c{'9' * 18}"),
    ]
    assert idempotency_key_parse(msgs[0].idempotency_key) == (c.pk, msgs[0].contact_id)
    assert idempotency_key_parse("loatest0a1b") is None
    assert idempotency_key_parse("loa" + "9" * 30 + "t1c1") is None  # no overflow
    found = messages_find(account_id=account_id, events=events)
    assert found == [msgs[0].pk, None, None, None]
    other = ProviderAccountFactory(kind="sandbox")
    assert messages_find(account_id=other.pk, events=events[:1]) == [None]
    assert (
        message_find(account_id=account_id, idempotency_key=msgs[2].idempotency_key) == msgs[2].pk
    )

    # The admin's search box finds a message by its key, by its phone in any format (through
    # the contact), and still by error code.
    def search(q):
        resp = admin_client.get("/admin/campaigns/message/", {"q": q})
        assert resp.status_code == 200
        return list(resp.context["cl"].result_list)

    assert search(msgs[2].idempotency_key) == [msgs[2]]
    local = "0" + msgs[1].phone[2:5] + " " + msgs[1].phone[5:8] + " " + msgs[1].phone[8:]
    assert search(local) == [msgs[1]] and search("+" + msgs[1].phone) == [msgs[1]]
    Message.objects.filter(pk=msgs[0].pk).update(error_code="-118")
    assert search("-118") == [msgs[0]]
    assert search("84999999999") == []


def test_a_batch_is_recorded_in_a_fixed_number_of_queries(scripted, django_assert_max_num_queries):
    """Claimed messages carry only the columns sending reads; recording every outcome class must
    not load the others row by row (40 messages, 5 outcomes: the same few statements)."""
    c = _campaign(40, kind="scripted")
    phones = list(c.lists.first().contacts.order_by("pk").values_list("phone", flat=True))
    outcomes = [
        None,
        SendResult.failed(ErrorClass.PERMANENT, -118, "Zalo account not existed"),
        SendResult.failed(ErrorClass.AMBIGUOUS, "read_timeout", "timeout"),
        SendResult.failed(ErrorClass.RETRYABLE, "connect_error", "refused"),
        quota_exceeded(),
    ]
    scripted.script = {p: outcomes[i % 5] for i, p in enumerate(phones) if outcomes[i % 5]}
    campaign_transition(campaign_id=c.pk, to=Campaign.Status.RUNNING)
    campaign_materialize(campaign_id=c.pk)
    provider = c.channel.account.get_provider()
    batch = messages_claim(campaign_id=c.pk, limit=40, kind="zalo_zns")
    # 13: one of them reads whether the chain's step 1 is the provider's own fallback (native).
    with django_assert_max_num_queries(13):
        out = messages_send_batch(campaign=c, provider=provider, messages=batch)
    assert (out.sent, out.failed, out.unknown, out.retry) == (8, 8, 8, 16)
    by_status = dict(
        Message.objects.filter(campaign=c).values_list("status").annotate(n=Count("id"))
    )
    assert by_status == {"sent": 8, "failed": 8, "unknown": 8, "pending": 16}


def test_a_deferred_message_waits_for_the_time_its_provider_gives(scripted):
    """Zalo's night window reopens at 06:00 local, its quotas reset at midnight (resumed at 00:05);
    a deferral the provider gives no time for waits the engine's default 15 minutes."""
    evening = timezone.localtime().replace(hour=23, minute=0, second=0, microsecond=0)
    night = evening.replace(hour=3)
    assert zalo.deferred_until("-133", evening) == (evening + timedelta(days=1)).replace(hour=6)
    assert zalo.deferred_until(-133, night) == night.replace(hour=6)
    for code in ("-144", "-147", "-160", "-1441"):
        assert zalo.deferred_until(code, night) == (night + timedelta(days=1)).replace(
            hour=0, minute=5
        )
    assert zalo.deferred_until("-118", night) is None
    assert zalo.deferred_until("resource_exhausted", night) is None

    c = _campaign(2, kind="scripted")
    for phone in c.lists.first().contacts.values_list("phone", flat=True):
        scripted.script[phone] = SendResult.failed(ErrorClass.DEFERRED, -126, "dev quota")
    before = timezone.now()
    campaign_send_now(campaign_id=c.pk)
    waits = set(Message.objects.filter(campaign=c).values_list("next_attempt_at", flat=True))
    assert len(waits) == 1
    wait = waits.pop() - before
    assert timedelta(minutes=15) <= wait < timedelta(minutes=16)
    c.refresh_from_db()
    assert c.status == Campaign.Status.RUNNING and "dev quota" in c.status_reason
