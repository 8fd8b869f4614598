"""The receiver of the engine's message_statuses_changed (campaigns.engine.signals): the engine
may not import this room, so it announces and campaigns.api listens. Connected by
ApiConfig.ready()."""

from __future__ import annotations

import logging

from django.db import transaction

from campaigns.api.callbacks.services import callbacks_enqueue
from campaigns.engine.signals import message_statuses_changed

logger = logging.getLogger("loa.api.callbacks")


def _statuses_changed(sender, *, changes, **kwargs) -> None:
    # In a savepoint: should queueing the callbacks fail, the statuses are still applied (the
    # engine's batch must not fail for the API room's sake); the failure is logged with the ids.
    try:
        with transaction.atomic():
            callbacks_enqueue(changes=changes)
    except Exception:
        logger.exception(
            "status callbacks not queued for messages %s",
            ",".join(str(c.message_id) for c in changes[:50]),
        )


def receivers_connect() -> None:
    message_statuses_changed.connect(_statuses_changed, dispatch_uid="api.callbacks_enqueue")
