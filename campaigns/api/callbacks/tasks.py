"""Thin django-q2 tasks for status callbacks (services.py does the work)."""

from __future__ import annotations

from campaigns.api.callbacks.services import callbacks_pump


def callbacks_pump_task() -> dict:
    """Woken after each commit that queued callbacks, and every minute by the schedule
    (migration 0002_callbacks): sends what is due, retries included."""
    report = callbacks_pump()
    return {"delivered": report.delivered, "failed": report.failed, "given_up": report.given_up}
