"""The engine's one announcement to the rooms beside it, which it may not import.

message_statuses_changed: messages of API campaigns (Campaign.origin == "api") changed status or
learned their fee. Sent with sender=None and the keyword argument `changes` (a list of
StatusChange), INSIDE the transaction that wrote the statuses: a receiver's writes (campaigns.api
inserts one outbox row per change, in one statement) commit or roll back with the statuses, so a
committed status change has its client callback queued, and no callback is queued for a change
that was rolled back (at-least-once delivery starts here). Receivers must be quick (one or two
statements, no HTTP): they run on the engine's hot path; and they must not fail the engine's
batch (campaigns.api's runs in a savepoint and logs its own failure). Campaign messages (origin
"campaign") never send it: the send path passes the origin, and the status applier pays one
primary-key lookup per batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.dispatch import Signal

from campaigns.models import Campaign

message_statuses_changed = Signal()


@dataclass(frozen=True)
class StatusChange:
    """One message's new status (a Message.Status value; "" when only the fee became known), when
    it happened, and its fee when known."""

    message_id: int
    status: str
    at: datetime
    fee: Decimal | None = None


def _api_campaigns(campaign_ids: set[int]) -> set[int]:
    return set(
        Campaign.objects.filter(pk__in=campaign_ids, origin=Campaign.Origin.API).values_list(
            "pk", flat=True
        )
    )


def statuses_changed_announce(*, changes: list[tuple[int, StatusChange]]) -> None:
    """Send message_statuses_changed for the (campaign id, change) pairs of API campaigns. Call it
    inside the transaction that wrote the statuses."""
    if not changes or not message_statuses_changed.has_listeners():
        return
    api = _api_campaigns({c for c, _ch in changes})
    mine = [ch for c, ch in changes if c in api]
    if mine:
        message_statuses_changed.send(sender=None, changes=mine)
