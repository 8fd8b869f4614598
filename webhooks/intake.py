"""Group commit for webhook intake: concurrent callbacks share one INSERT and one COMMIT.

Providers call back in bursts (a campaign of 100,000 messages brings 100,000 delivery reports
and as many read receipts within minutes). Each request must be stored before it is answered,
and a commit per request is what limited intake: a round trip for the INSERT, one for the
COMMIT, and a WAL flush each. Here the first request thread to arrive writes every row that is
queued in its process (the leader), the others wait for it (followers) and answer when their
row is committed; rows that arrive during a write go out together in the next one. Nothing is
delayed on purpose: a lone request is written at once, in its own thread, on its own connection
(so inside a test's transaction too), and batches form only when requests really overlap.

Duplicates are decided by the database, not by a read first: one
`INSERT … ON CONFLICT DO NOTHING RETURNING` tells which keys were new; the others are stored as
`duplicate` rows (every request is kept) by a second statement, before any of them is answered.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from django.db import DatabaseError, connection
from django.utils import timezone

from campaigns.bulk import rows_insert
from webhooks.models import WebhookEvent

logger = logging.getLogger("loa.webhooks")

# Rows per statement: well under SQLite's 32,766 bound parameters (11 columns a row).
MAX_BATCH = 500


def event_row(*, account_id: int, **values) -> dict:
    """A WebhookEvent row to store, as a dict keyed by column (attname): the request path does
    not pay for a model instance it would only take apart again."""
    return {
        "account_id": account_id,
        "method": "",
        "query": "",
        "body": "",
        "headers": {},
        "remote_addr": None,
        "received_at": None,
        "dedupe_key": "",
        "outcome": WebhookEvent.Outcome.RECEIVED,
        "outcome_detail": "",
        "message_id": None,
        "processed_at": None,
        "attempts": 0,
        **values,
    }


@dataclass(eq=False)
class _Slot:
    event: dict
    wake: threading.Event
    done: bool = False
    written: bool = False
    new: bool = False
    error: BaseException | None = None


class GroupCommit:
    """Leader/follower writer of WebhookEvent rows for one process (see the module docstring).

    Each waiting request sleeps on its own Event: the leader wakes exactly the requests it
    wrote, and hands the lead to the first one still queued, instead of waking every thread of
    the worker to find out who is next."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: list[_Slot] = []
        self._writing = False

    def store(self, event: dict) -> bool:
        """Store `event` (an event_row) and return True if its dedupe key was new. A keyed event
        whose key is already stored for the account is stored with outcome `duplicate` instead,
        and False is returned. Raises the database's error if the row could not be written."""
        slot = _Slot(event, threading.Event())
        if connection.in_atomic_block:
            # The caller's transaction is not ours to commit others' rows in: they would be
            # answered as stored and then rolled back with it.
            _write([slot])
            return _result(slot)
        with self._lock:
            self._queue.append(slot)
            lead = not self._writing
            self._writing = True
        if not lead:
            slot.wake.wait()
            if slot.done:
                return _result(slot)
            # Not written yet: the previous leader handed the lead to this request.
        with self._lock:
            batch, self._queue = self._queue, []
        try:
            _write(batch)
        except BaseException as exc:
            # Not a database error (those are per row, below): a bug. No request of this batch
            # may be answered as stored unless its row was.
            logger.exception("webhook group commit failed")
            for s in batch:
                if not s.written and s.error is None:
                    s.error = exc
        finally:
            with self._lock:
                for s in batch:
                    s.done = True
                successor = self._queue[0] if self._queue else None
                self._writing = successor is not None
            for s in batch:
                if s is not slot:
                    s.wake.set()
            if successor is not None:
                successor.wake.set()
        return _result(slot)


def _result(slot: _Slot) -> bool:
    if slot.error is not None:
        raise slot.error
    return slot.new


_FIELDS = [f for f in WebhookEvent._meta.concrete_fields if not f.primary_key]


def _write(batch: list[_Slot]) -> None:
    for i in range(0, len(batch), MAX_BATCH):
        _write_chunk(batch[i : i + MAX_BATCH])


def _write_chunk(batch: list[_Slot]) -> None:
    """Write a batch: the new rows in one statement, then the duplicates in another. Each runs
    in autocommit (one round trip, no BEGIN/COMMIT): nothing is answered before both are done,
    so a crash between them loses nothing a provider will not send again. If a statement fails,
    its rows are written one by one, so that a row the database refuses (or a connection lost
    mid-batch) fails only its own request."""
    now = timezone.now()
    first: dict[tuple[int, str], _Slot] = {}
    candidates: list[_Slot] = []
    later: list[_Slot] = []
    for slot in batch:
        ev = slot.event
        ev["received_at"] = now
        if ev["dedupe_key"]:
            k = (ev["account_id"], ev["dedupe_key"])
            if k in first:
                later.append(slot)  # the same callback twice in one batch
                continue
            first[k] = slot
        candidates.append(slot)
    inserted = _each(candidates, returning=True)
    dupes = later + [s for k, s in first.items() if s.error is None and k not in inserted]
    for slot in candidates:
        ev = slot.event
        slot.new = slot.error is None and (
            not ev["dedupe_key"] or (ev["account_id"], ev["dedupe_key"]) in inserted
        )
    for slot in dupes:
        slot.event.update(
            outcome=WebhookEvent.Outcome.DUPLICATE,
            outcome_detail=slot.event["dedupe_key"][:500],
            dedupe_key="",
            processed_at=now,
        )
    _each(dupes, returning=False)


def _each(slots: list[_Slot], *, returning: bool) -> set[tuple[int, str]]:
    """Insert the slots' rows in one statement, or one by one if that fails."""
    if not slots:
        return set()
    try:
        inserted = _insert_rows([s.event for s in slots], returning=returning)
    except DatabaseError as exc:
        if len(slots) == 1:
            slots[0].error = exc
            return set()
        logger.warning("webhook batch of %s failed (%s); writing rows one by one", len(slots), exc)
    else:
        for slot in slots:
            slot.written = True
        return inserted
    inserted = set()
    for slot in slots:
        try:
            inserted |= _insert_rows([slot.event], returning=returning)
            slot.written = True
        except DatabaseError as exc:
            slot.error = exc
    return inserted


def _insert_rows(events: list[dict], *, returning: bool) -> set[tuple[int, str]]:
    rows = rows_insert(
        WebhookEvent,
        events,
        _FIELDS,
        ignore_conflicts=returning,
        returning=("account_id", "dedupe_key") if returning else (),
    )
    return {(a, k) for a, k in rows}


writer = GroupCommit()
