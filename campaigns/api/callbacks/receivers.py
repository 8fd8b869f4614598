"""The receiver of the engine's message_statuses_changed (campaigns.engine.signals): the engine
may not import this room, so it announces and campaigns.api listens. Connected by
ApiConfig.ready()."""

from __future__ import annotations

from campaigns.api.callbacks.services import callbacks_enqueue
from campaigns.engine.signals import message_statuses_changed


def _statuses_changed(sender, *, changes, **kwargs) -> None:
    callbacks_enqueue(changes=changes)


def receivers_connect() -> None:
    message_statuses_changed.connect(_statuses_changed, dispatch_uid="api.callbacks_enqueue")
