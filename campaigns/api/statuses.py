"""The API's public message statuses: the engine's Message.Status seen from outside.

One mapping, used by GET /api/v1/messages and the status callbacks, so both always agree. The
engine's internal steps (a claim in flight, an outcome being reconciled) are "queued" and
"sending" to a client: nothing final is known yet."""

from __future__ import annotations

from campaigns.models import Message

S = Message.Status

QUEUED = "queued"
SENDING = "sending"
SENT = "sent"
DELIVERED = "delivered"
READ = "read"
FAILED = "failed"
REJECTED = "rejected"  # never sent: opted out, capped, unreachable at send time (skipped)
CANCELLED = "cancelled"

PUBLIC_STATUSES = (QUEUED, SENDING, SENT, DELIVERED, READ, FAILED, REJECTED, CANCELLED)

_PUBLIC = {
    S.PENDING: QUEUED,
    S.SENDING: SENDING,
    # The provider call's outcome is not known yet (timeout): Loa reconciles it, so for the
    # client it is still on its way, not failed.
    S.UNKNOWN: SENDING,
    S.SENT: SENT,
    S.DELIVERED: DELIVERED,
    S.READ: READ,
    S.FAILED: FAILED,
    S.SKIPPED: REJECTED,
    S.CANCELLED: CANCELLED,
}


def public_status(status: str) -> str:
    """The API's name for an engine Message.Status value."""
    return _PUBLIC.get(status, QUEUED)


def is_final(status: str) -> bool:
    """No later status can follow (read may still follow delivered: not final)."""
    return public_status(status) in (READ, FAILED, REJECTED, CANCELLED)
