"""Receivers of the signals lower rooms send to webhooks (they may not import it).

sandbox_callbacks_queued (providers.signals): the sandbox provider stored simulated callbacks;
queue the pump that delivers them through the webhook path (webhooks.tasks.sandbox_pump_task).
Connected by WebhooksConfig.ready().
"""

from __future__ import annotations

from django_q.tasks import async_task

from providers.signals import sandbox_callbacks_queued


def sandbox_pump_enqueue(sender, **kwargs) -> None:
    """One pump task per batch is plenty: the task drains every due callback, under a lease."""
    async_task("webhooks.tasks.sandbox_pump_task", group="sandbox-pump")


def receivers_connect() -> None:
    sandbox_callbacks_queued.connect(sandbox_pump_enqueue, dispatch_uid="webhooks.sandbox_pump")
