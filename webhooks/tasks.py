"""webhooks' django-q2 tasks: the applier, the sandbox pump and the every-minute tick.

Queued by path: webhook_apply_task by webhooks.services after a callback is stored,
sandbox_pump_task by webhooks.receivers when the sandbox provider queues callbacks, webhooks_tick
by the schedule webhooks' migration 0004 creates.
"""

import logging
import time

from django.conf import settings
from django.core.cache import cache

from campaigns.engine.leases import lease_acquire, lease_release
from webhooks.applier import webhook_events_apply, webhook_events_reapply
from webhooks.models import WebhookEvent
from webhooks.services import (
    APPLY_PENDING_KEY,
    sandbox_callbacks_deliver,
    sandbox_callbacks_waiting,
)

logger = logging.getLogger("loa.tasks")


def sandbox_pump_task(max_seconds: float = 50.0) -> int:
    """Deliver the sandbox provider's due callbacks through the webhook path until none remain
    (or the time is up: the every-minute tick starts another)."""
    started = time.monotonic()
    delivered = 0
    # One pump at a time: with two workers, a second pump would starve the campaign drivers.
    while sandbox_callbacks_waiting() and time.monotonic() - started < max_seconds:
        holder = lease_acquire("sandbox-pump", max_seconds + 10)
        if holder is None:
            return delivered  # another pump is running; it re-checks before it stops
        try:
            while time.monotonic() - started < max_seconds:
                delivered += sandbox_callbacks_deliver()
                if not sandbox_callbacks_waiting():
                    break
                time.sleep(0.5)
        finally:
            lease_release("sandbox-pump", holder)
    return delivered


def webhooks_tick() -> dict:
    return {"sandbox": sandbox_callbacks_deliver(), "reapplied": webhook_events_reapply()}


def webhook_apply_task() -> dict:
    """Apply everything received so far, in batches, until none is waiting.

    Triggers are throttled to one per 0.5 s per web process, so events stored just after a
    trigger may not bring another one: after the queue looks empty this task waits past the
    throttle window and looks once more before it ends (the every-minute tick is the backstop)."""
    # Running now: a callback stored from here on may queue one more applier behind this one.
    try:
        cache.delete(APPLY_PENDING_KEY)
    except Exception:  # the flag only saves queue slots; its expiry (30 s) covers an outage
        logger.warning("webhook applier flag unavailable", exc_info=True)
    total: dict = {}
    last_look = False
    for _ in range(200):  # bounded: the next trigger or the every-minute tick continues
        done = webhook_events_apply(limit=1000)
        for k, v in done.items():
            total[k] = total.get(k, 0) + v
        if WebhookEvent.objects.filter(outcome=WebhookEvent.Outcome.RECEIVED).exists():
            last_look = False
            continue
        if last_look or settings.Q_CLUSTER.get("sync"):
            break
        last_look = True
        time.sleep(0.6)
    return total
