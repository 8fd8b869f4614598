"""Status callbacks: the outbox insert on the engine's hot path, and the pump that sends them.

Delivery is at least once: the outbox row commits with the status change (the engine sends
message_statuses_changed inside its transaction), a row leaves the queue only when the client
answered 2xx, and a row being sent is pushed IN_FLIGHT_GRACE ahead first, so a worker killed
mid-send leaves it due again rather than lost. A client may therefore see a callback twice (the
X-Loa-Delivery header repeats): it deduplicates on that id, and orders a message's callbacks by
their status rank (docs/API.md), never by arrival.
"""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

import requests
from django.conf import settings
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from campaigns.api import statuses
from campaigns.api.callbacks.signing import DELIVERY_HEADER, EVENT_HEADER, signature_headers
from campaigns.api.models import ApiApplication, ApiMessage, CallbackDelivery
from campaigns.bulk import rows_bulk_set
from campaigns.engine.delivery import RANK
from campaigns.engine.leases import lease_acquire, lease_release, lease_renew
from campaigns.engine.signals import StatusChange
from campaigns.models import Message
from providers.base import url_may_carry_secrets
from providers.errors import explain

logger = logging.getLogger("loa.api.callbacks")

S = Message.Status
RETRY_FOR = timedelta(hours=24)
# The wait after the n-th failed attempt: 30 s, 1, 2, 4, 8, 16, 32 min, then every hour.
FIRST_RETRY_SECONDS = 30
MAX_RETRY_SECONDS = 3600
TIMEOUT = (3.05, 10)  # connect, read (seconds): a slow client is a failed attempt, retried
BATCH = 100
CONCURRENCY = 8
# A row being sent is due again this long after the pump took it, should the pump die: longer
# than a batch of clients that all answer at the last second (13 rounds of 8 x ~13 s).
IN_FLIGHT_GRACE = timedelta(seconds=-(-BATCH // CONCURRENCY) * sum(TIMEOUT) + 30)
PUMP_LEASE = "api-callbacks"
PUMP_BUDGET_SECONDS = 50  # one pump run, well under the task timeout; the tick starts the next

# What a client orders a message's callbacks by (docs/API.md): the highest rank is the truth.
# failed, rejected and cancelled are final; the engine never lets failed follow delivered or read.
PUBLIC_RANK = {
    statuses.QUEUED: 0,
    statuses.SENDING: 1,
    statuses.SENT: 2,
    statuses.DELIVERED: 3,
    statuses.READ: 4,
}


def retry_delay(attempts: int) -> timedelta:
    """The wait after `attempts` failed attempts (1 -> 30 s, doubling, at most an hour)."""
    return timedelta(
        seconds=min(MAX_RETRY_SECONDS, FIRST_RETRY_SECONDS * 2 ** max(0, attempts - 1))
    )


# ---- the outbox insert (the engine's hot path) ------------------------------------------------


def _still_true(change: StatusChange, current: str) -> bool:
    """Whether the row (read in the engine's transaction) reached the change's status: the engine
    announces what a batch wrote, and its writes skip rows a callback already moved."""
    if not change.status:  # only the fee became known
        return True
    if change.status in RANK:
        return current in RANK and RANK[current] >= RANK[change.status]
    return current == change.status


def _payload(api_msg: dict, change: StatusChange) -> dict:
    """The callback's body: the GET /api/v1/messages/{id} words and shapes (status, fee as a
    number, error with code, meaning and the provider's text), plus when the change happened."""
    engine_status = change.status or api_msg["message__status"]
    status = statuses.public_status(engine_status)
    error = None
    code = api_msg["message__error_code"]
    if status in (statuses.FAILED, statuses.REJECTED, statuses.CANCELLED) and code:
        # No request to take a language from: Loa's default one, the same for every attempt.
        with translation.override(settings.LANGUAGE_CODE):
            meaning = explain(code) or api_msg["message__error_message"]
        error = {
            "code": code,
            "meaning": str(meaning),
            "provider_message": api_msg["message__error_message"],
        }
    return {
        "event": CallbackDelivery.Event.STATUS if change.status else CallbackDelivery.Event.FEE,
        "message_id": api_msg["pk"],
        "client_reference": api_msg["client_reference"] or None,
        "phone": api_msg["message__phone"],
        "status": status,
        "status_rank": PUBLIC_RANK.get(status),
        "final": statuses.is_final(engine_status),
        "occurred_at": change.at.isoformat(),
        "fee": float(change.fee) if change.fee is not None else None,
        "currency": "VND",
        "error": error,
    }


def callbacks_enqueue(*, changes: list[StatusChange]) -> int:
    """One outbox row per change of a message whose application has a callback URL, in one
    INSERT (after one SELECT); the pump is woken once the engine's transaction commits.
    Returns rows queued."""
    if not changes:
        return 0
    api_msgs = {
        r["message_id"]: r
        for r in ApiMessage.objects.filter(message_id__in={c.message_id for c in changes})
        .exclude(application__callback_url="")
        .values(
            "pk",
            "message_id",
            "application_id",
            "client_reference",
            "message__status",
            "message__error_code",
            "message__error_message",
            "message__phone",
        )
    }
    if not api_msgs:
        return 0
    now = timezone.now()
    rows = []
    for change in changes:
        m = api_msgs.get(change.message_id)
        if m is None or not _still_true(change, m["message__status"]):
            continue
        payload = _payload(m, change)
        rows.append(
            CallbackDelivery(
                application_id=m["application_id"],
                api_message_id=m["pk"],
                event=payload["event"],
                status=payload["status"],
                payload=payload,
                next_attempt_at=now,
                retry_until=now + RETRY_FOR,
                created_at=now,
            )
        )
    if rows:
        CallbackDelivery.objects.bulk_create(rows)
        transaction.on_commit(callbacks_wake)
    return len(rows)


def callbacks_wake() -> None:
    """Queue one pump run (it drains what is due under a lease; extra runs return at once)."""
    from django_q.tasks import async_task  # noqa: PLC0415 (kept off the engine's import path)

    async_task("campaigns.api.callbacks.tasks.callbacks_pump_task", group="api-callbacks")


# ---- sending ----------------------------------------------------------------------------------


@dataclass
class SendReport:
    delivered: int = 0
    failed: int = 0
    given_up: int = 0


@dataclass
class _Attempt:
    row: CallbackDelivery
    status_code: int | None = None
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _body(payload: dict) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def _post(session: requests.Session, row: CallbackDelivery, secret: str) -> _Attempt:
    app = row.application
    attempt = _Attempt(row)
    url = app.callback_url
    if not url:
        attempt.error = _("The application has no callback URL any more.")
        return attempt
    if not url_may_carry_secrets(url):
        attempt.error = _("The callback URL must use https.")
        return attempt
    if not secret:
        attempt.error = _("The application has no callback secret to sign with.")
        return attempt
    body = _body(row.payload)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Loa-Callbacks/1",
        DELIVERY_HEADER: str(row.pk),
        EVENT_HEADER: row.event,
        **signature_headers(secret=secret, body=body),
    }
    try:
        resp = session.post(url, data=body, headers=headers, timeout=TIMEOUT, allow_redirects=False)
    except requests.Timeout:
        attempt.error = _("No answer within {seconds} seconds.").format(seconds=TIMEOUT[1])
    except requests.RequestException as exc:
        attempt.error = _("Could not connect ({error}).").format(error=type(exc).__name__)
    else:
        attempt.status_code = resp.status_code
        if not attempt.ok:
            attempt.error = _("The client answered HTTP {code}.").format(code=resp.status_code)
        resp.close()
    return attempt


def _due(now: datetime, limit: int) -> list[CallbackDelivery]:
    return list(
        CallbackDelivery.objects.filter(
            delivered_at__isnull=True, given_up_at__isnull=True, next_attempt_at__lte=now
        )
        .select_related("application")
        .order_by("next_attempt_at", "id")[:limit]
    )


def callbacks_send_due(*, now: datetime | None = None, limit: int = BATCH) -> SendReport:
    """Send one batch of due callbacks, concurrently, and record each outcome: delivered on a
    2xx; otherwise the next attempt after retry_delay, or given up once past retry_until."""
    given_now = now
    now = now or timezone.now()
    rows = _due(now, limit)
    report = SendReport()
    if not rows:
        return report
    # Taken: due again only after the grace, should this worker die before recording.
    CallbackDelivery.objects.filter(pk__in=[r.pk for r in rows]).update(
        next_attempt_at=now + IN_FLIGHT_GRACE
    )
    secrets: dict[int, str] = {}
    for r in rows:
        if r.application_id not in secrets:
            secrets[r.application_id] = _secret(r.application)
    with requests.Session() as session, ThreadPoolExecutor(CONCURRENCY) as pool:
        attempts = list(pool.map(lambda r: _post(session, r, secrets[r.application_id]), rows))
    done = given_now or timezone.now()  # a test's clock, or the time the answers came
    updates = []
    for a in attempts:
        r = a.row
        r.attempts += 1
        r.last_attempt_at = done
        r.last_status_code = a.status_code
        r.last_error = a.error[:300]
        if a.ok:
            r.delivered_at, r.next_attempt_at = done, None
            report.delivered += 1
        else:
            nxt = done + retry_delay(r.attempts)
            if nxt > r.retry_until:
                r.given_up_at, r.next_attempt_at = done, None
                report.given_up += 1
            else:
                r.next_attempt_at = nxt
                report.failed += 1
        updates.append(r)
    rows_bulk_set(
        CallbackDelivery,
        updates,
        [
            "attempts",
            "last_attempt_at",
            "last_status_code",
            "last_error",
            "delivered_at",
            "given_up_at",
            "next_attempt_at",
        ],
    )
    return report


def _secret(app: ApiApplication) -> str:
    try:
        return app.callback_secret
    except Exception:  # a secret that cannot be decrypted (a rotated key): the attempt says so
        logger.exception("callback secret of application %s cannot be read", app.pk)
        return ""


def callbacks_pump(*, budget: float = PUMP_BUDGET_SECONDS) -> SendReport:
    """Send what is due, batch after batch, for at most `budget` seconds, one pump at a time."""
    total = SendReport()
    # The lease outlives a batch started just before the budget ran out (IN_FLIGHT_GRACE).
    hold = budget + IN_FLIGHT_GRACE.total_seconds()
    holder = lease_acquire(PUMP_LEASE, hold)
    if holder is None:
        return total  # another pump is sending; it picks up these rows too
    started = time.monotonic()
    try:
        while time.monotonic() - started < budget:
            report = callbacks_send_due()
            total.delivered += report.delivered
            total.failed += report.failed
            total.given_up += report.given_up
            if not (report.delivered or report.failed or report.given_up):
                break
            if not lease_renew(PUMP_LEASE, holder, hold):
                break
    finally:
        lease_release(PUMP_LEASE, holder)
    return total


# ---- the admin's resend -----------------------------------------------------------------------


@dataclass
class ResendReport:
    queued: int = 0
    no_url: int = 0


def callbacks_resend(*, delivery_ids: list[int]) -> ResendReport:
    """Queue the chosen callbacks again, now, with a fresh 24-hour retry window (delivered ones
    too: the client gets them once more, with the same X-Loa-Delivery id). Those whose application
    has no callback URL any more are left as they are."""
    now = timezone.now()
    qs = CallbackDelivery.objects.filter(pk__in=delivery_ids)
    no_url = qs.filter(application__callback_url="").count()
    queued = qs.exclude(application__callback_url="").update(
        attempts=0,
        next_attempt_at=now,
        retry_until=now + RETRY_FOR,
        delivered_at=None,
        given_up_at=None,
    )
    if queued:
        transaction.on_commit(callbacks_wake)
    return ResendReport(queued=queued, no_url=no_url)
