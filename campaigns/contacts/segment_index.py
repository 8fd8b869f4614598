"""The segment index (PostgreSQL): exact segment counts at millions of contacts.

An attribute rule reads every contact's JSON: 2.1-2.7 s for one count at 10,000,000 contacts,
whatever index exists (docs/ARCHITECTURE.md, "The segment index"). The index is one narrow row a
contact (table campaigns_segmentindex, migration 0026): its tags, the ids of its lists and, in
slots, the values rules compare (loa_fold, loa_number or loa_date of one attribute each), so a
count reads narrow typed columns and a list rule is a filter of the same scan.

- Coverage: the index holds the contacts up to an id (SegmentIndexState.covered_upto); a count
  is the index's count for those plus the contacts' own query for the newer ones, so it is exact
  while the index catches up, and an import's new contacts cost their insert nothing here.
- Slots: each attribute a saved segment reads gets one (segment_index_claim, from the build).
  12 text, 6 number and 6 date slots; when every slot of a kind is taken by attributes saved
  segments read, a new segment on another attribute counts on the contacts, as before.
- Upkeep below the mark: statement-level triggers on contacts and memberships (migration 0026).
- Build (segment_index_build: the "loa: segment index" schedule every minute, the admin after a
  save, an import when it ends): moves the mark up over the newer contacts, and refills the rows
  below it when a slot got a new attribute, in id slices, each under a short SHARE lock of both
  tables (writers wait one slice, readers never), resumable. A slot is read by counts only once
  a refill that started after it was assigned finished.
- Counting (campaigns.contacts.segments.indexed_matching): the same Q as the contacts' query (campaigns.contacts.segments builds
  both), over the slots' columns instead of expressions on the JSON; None when the index cannot
  answer (SQLite, a slot missing), and the caller counts the contacts.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from django.db import DatabaseError, OperationalError, connection, transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from campaigns.models import (
    SEGMENT_INDEX_SLOTS,
    Contact,
    Segment,
    SegmentIndex,
    SegmentIndexSlot,
)
from campaigns.models import SegmentIndexState as State
from campaigns.segment_rules import attribute_reads

logger = logging.getLogger("loa.segments")

SLICE = 20_000  # contacts a build step writes in one transaction (about 0.1-0.2 s of locks)
LOCK_KEY = 0x5E6_1D  # the advisory lock: one build at a time
READERS = {"text": "loa_fold", "number": "loa_number", "date": "loa_date"}
SLOT_COLUMNS = [col for col, _ in SEGMENT_INDEX_SLOTS]
# Beside each date slot dN, mN: its month * 100 + day, what birthday rules compare.
MONTHDAY_OF = {col: f"m{col[1:]}" for col, kind in SEGMENT_INDEX_SLOTS if kind == "date"}
COLUMNS = SLOT_COLUMNS + list(MONTHDAY_OF.values())


def _postgres() -> bool:
    return connection.vendor == "postgresql"


def indexable(key: str) -> bool:
    """Django reads an integer-like JSON key as an array index (attributes -> 0), the triggers
    as a key: such an attribute is counted on the contacts, where both agree."""
    try:
        int(key)
    except ValueError:
        return True
    return False


# ---- slots -------------------------------------------------------------------------------------


def saved_reads() -> set[tuple[str, str]]:
    """(kind, attribute) of every saved segment's rules."""
    reads: set[tuple[str, str]] = set()
    for rules in Segment.objects.values_list("rules", flat=True):
        reads |= attribute_reads(rules)
    return reads


def segment_index_claim(reads: set[tuple[str, str]]) -> list[str]:
    """Slots for the (kind, attribute) pairs in `reads` that have none yet; the columns newly
    assigned, which a build fills before counts read them. A slot whose attribute no saved
    segment reads any more is reused; with none left, that attribute is counted on the contacts."""
    if not _postgres():
        return []
    wanted = {(kind, key) for kind, key in reads if indexable(key)}
    if not wanted:
        return []
    assigned = []
    with transaction.atomic():
        # The state row first, as a build's slice takes it: a slice either wrote its rows with
        # the new attribute or wrote them before the mark recorded here (and a refill redoes them).
        mark = State.objects.select_for_update().get(pk=1).covered_upto
        slots = sorted(
            SegmentIndexSlot.objects.select_for_update().order_by("col"),
            key=lambda s: (s.kind, int(s.col[1:])),  # t1, t2, ... t10: the lowest free first
        )
        held = {(s.kind, s.key) for s in slots if s.key is not None}
        missing = sorted(wanted - held)
        if not missing:
            return []
        in_use = saved_reads() | wanted
        for kind, key in missing:
            free = [s for s in slots if s.kind == kind and s.key is None] or [
                s for s in slots if s.kind == kind and (s.kind, s.key) not in in_use
            ]
            if not free:
                logger.info("segment index: no %s slot left for %r", kind, key)
                continue
            slot = free[0]
            slot.key, slot.ready, slot.assigned_at = key, False, timezone.now()
            slot.covered_at_assign = mark
            slot.save(update_fields=["key", "ready", "assigned_at", "covered_at_assign"])
            held.add((kind, key))
            assigned.append(slot.col)
    return assigned


# ---- counting ----------------------------------------------------------------------------------


def ready_columns(rules) -> dict[tuple[str, str], str] | None:
    """{(kind, attribute): column} for what `rules` read, when the index can count them."""
    if not _postgres():
        return None
    reads = attribute_reads(rules)
    if any(not indexable(key) for _, key in reads):
        return None
    columns = {
        (kind, key): col
        for col, kind, key in SegmentIndexSlot.objects.filter(ready=True, key__isnull=False)
        .values_list("col", "kind", "key")
        .iterator()
    }
    if not reads <= columns.keys():
        return None
    return columns


def covered_upto() -> int:
    """The highest contact id the index covers (0: none)."""
    if not _postgres():
        return 0
    return State.objects.filter(pk=1).values_list("covered_upto", flat=True).first() or 0


def index_base(list_ids: list[int] | None) -> QuerySet:
    """Every indexed contact, or the members of any of `list_ids`."""
    qs = SegmentIndex.objects.all()
    if list_ids:
        qs = qs.filter(lists__overlap=list(list_ids))
    return qs


def column_value(columns: dict[tuple[str, str], str]):
    """What campaigns.contacts.segments' rules compare, read from the slots' columns (a date's
    day of the year from the number column beside its slot)."""

    def value_of(kind: str, key: str):
        if kind == "monthday":
            return F(MONTHDAY_OF[columns[("date", key)]])
        return F(columns[(kind, key)])

    return value_of


# ---- the build ---------------------------------------------------------------------------------


@dataclass
class BuildReport:
    done: bool = False
    busy: bool = False
    rows: int = 0
    slices: int = 0
    covered_upto: int = 0
    refills_finished: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def _newest_contact() -> int:
    """The highest contact id (0: none), from the primary key's index."""
    return Contact.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def _keys() -> dict[str, str]:
    return dict(
        SegmentIndexSlot.objects.filter(key__isnull=False).values_list("col", "key").iterator()
    )


def _build_slice_sql() -> str:
    values = ", ".join(
        [
            f"{READERS[kind]}(c.attributes ->> %(k_{col})s::text)"
            for col, kind in SEGMENT_INDEX_SLOTS
        ]
        + [
            f"replace(substr(loa_date(c.attributes ->> %(k_{col})s::text), 6, 5), '-', '')::int"
            for col in MONTHDAY_OF
        ]
    )
    cols = ", ".join(COLUMNS)
    changed = ", ".join(f"f.{col}" for col in ["tags", "lists", *COLUMNS])
    fresh = ", ".join(f"excluded.{col}" for col in ["tags", "lists", *COLUMNS])
    sets = ", ".join(f"{col} = excluded.{col}" for col in ["tags", "lists", *COLUMNS])
    return (
        f"INSERT INTO campaigns_segmentindex AS f (contact_id, tags, lists, {cols})"
        f" SELECT c.id, c.tags, coalesce(m.ids, '{{}}'), {values}"
        " FROM campaigns_contact c LEFT JOIN (SELECT contact_id, array_agg(contact_list_id) AS ids"
        "  FROM campaigns_contactlistmembership"
        "  WHERE contact_id > %(after)s AND contact_id <= %(upto)s GROUP BY contact_id) m"
        "  ON m.contact_id = c.id"
        " WHERE c.id > %(after)s AND c.id <= %(upto)s ORDER BY c.id"
        f" ON CONFLICT (contact_id) DO UPDATE SET {sets}"
        f" WHERE ({changed}) IS DISTINCT FROM ({fresh})"
    )


# One statement for every slice (the slots' keys are its parameters).
_SLICE_SQL = _build_slice_sql()

# Rows of contacts gone (a membership added for a contact id that no longer exists leaves one).
_ORPHANS = (
    "DELETE FROM campaigns_segmentindex f WHERE f.contact_id > %(after)s"
    " AND f.contact_id <= %(upto)s"
    " AND NOT EXISTS (SELECT 1 FROM campaigns_contact c WHERE c.id = f.contact_id)"
)


def _write_slice(cur, after: int, limit: int | None, size: int) -> tuple[int, int | None]:
    """Write the exact rows of the `size` contacts after id `after` (not beyond `limit`): (rows,
    last id), last id None when there is none. The caller holds the tables' SHARE locks."""
    bound = "" if limit is None else " AND id <= %s"
    cur.execute(
        "SELECT max(id), count(*) FROM (SELECT id FROM campaigns_contact WHERE id > %s"
        f"{bound} ORDER BY id LIMIT %s) s",
        [after, *([] if limit is None else [limit]), size],
    )
    upto, n = cur.fetchone()
    if upto is None:
        return 0, None
    params = {"after": after, "upto": upto}
    keys = _keys()
    params.update({f"k_{col}": keys.get(col) for col in SLOT_COLUMNS})
    cur.execute(_SLICE_SQL, params)
    cur.execute(_ORPHANS, params)
    return n, upto


def _locked(cur) -> None:
    """Both tables SHARE-locked for one slice: no write lands between reading a contact (and its
    memberships) and writing its row; the triggers take over after. Shorter than
    deadlock_timeout (1 s): against a writer holding the tables the build gives way, never the
    import or the edit."""
    cur.execute("SET LOCAL lock_timeout = '500ms'")
    cur.execute("LOCK TABLE campaigns_contact, campaigns_contactlistmembership IN SHARE MODE")


def _advance(size: int) -> tuple[int, int | None]:
    """Cover the next `size` contacts above the mark; (rows, new mark or None when caught up)."""
    with transaction.atomic(), connection.cursor() as cur:
        _locked(cur)
        state = State.objects.select_for_update().get(pk=1)
        n, upto = _write_slice(cur, state.covered_upto, None, size)
        if upto is not None:
            State.objects.filter(pk=1).update(covered_upto=upto, updated_at=timezone.now())
    return n, upto


def _refill(size: int) -> tuple[int, bool]:
    """One slice of a refill (slots assigned new attributes: the rows written before, up to the
    mark when they were assigned, rewritten); (rows, finished). A refill starts by recording the
    slots' keys; when it is through, the slots whose key has not changed since are ready."""
    with transaction.atomic(), connection.cursor() as cur:
        _locked(cur)
        state = State.objects.select_for_update().get(pk=1)
        if state.refill_cursor is None:
            pending = SegmentIndexSlot.objects.filter(key__isnull=False, ready=False)
            State.objects.filter(pk=1).update(
                refill_cursor=0,
                refill_upto=max((s.covered_at_assign for s in pending), default=0),
                refill_keys=_keys(),
                refill_started_at=timezone.now(),
                updated_at=timezone.now(),
            )
            return 0, False
        n, upto = _write_slice(cur, state.refill_cursor, state.refill_upto or 0, size)
        if upto is not None:
            State.objects.filter(pk=1).update(refill_cursor=upto, updated_at=timezone.now())
            return n, False
        started_with = state.refill_keys or {}
        for slot in SegmentIndexSlot.objects.select_for_update().filter(key__isnull=False):
            if started_with.get(slot.col) == slot.key and not slot.ready:
                slot.ready = True
                slot.save(update_fields=["ready"])
        State.objects.filter(pk=1).update(
            refill_cursor=None, refill_upto=None, refill_keys=None, updated_at=timezone.now()
        )
        return 0, True


def segment_index_build(*, seconds: float = 240.0, size: int = SLICE) -> BuildReport:
    """Bring the index up to date for `seconds` at most (the next run goes on from there): cover
    the contacts above the mark, then refill the rows below it for slots given an attribute.
    One build at a time (an advisory lock); a slice that cannot get its locks waits its turn."""
    report = BuildReport()
    if not _postgres():
        report.done = True
        return report
    started = time.monotonic()
    # Every saved segment's attributes get their slots here (whoever saved it: the admin, the
    # shell, a fixture); the admin runs this right after a save.
    segment_index_claim(saved_reads())
    with connection.cursor() as cur:
        cur.execute("SELECT pg_try_advisory_lock(%s)", [LOCK_KEY])
        if not cur.fetchone()[0]:
            report.busy = True
            return report
    try:
        steps = 0
        # At least one step, however short the time given.
        while not steps or time.monotonic() - started < seconds:
            steps += 1
            try:
                # Nothing newer than the mark (the usual minute): no table lock asked for, so
                # writers never queue behind a build with nothing to do.
                n, upto = _advance(size) if _newest_contact() > covered_upto() else (0, None)
                if upto is None:
                    pending = SegmentIndexSlot.objects.filter(key__isnull=False, ready=False)
                    if not pending.exists():
                        report.done = True
                        break
                    n, finished = _refill(size)
                    report.refills_finished += finished
            except OperationalError as exc:  # lock_timeout: a writer holds the tables
                logger.info("segment index: a slice waits for a writer: %s", exc)
                time.sleep(0.5)
                continue
            report.slices += 1
            report.rows += n
    finally:
        try:
            with connection.cursor() as cur:
                cur.execute("SELECT pg_advisory_unlock(%s)", [LOCK_KEY])
        except DatabaseError:  # the connection is gone, and the lock with it
            pass
    report.covered_upto = covered_upto()
    report.seconds = round(time.monotonic() - started, 2)
    return report


def segment_index_reset() -> None:
    """Empty the index and cover nothing (the next build covers every contact again): for a
    database whose contacts were written with its triggers off (a load with
    session_replication_role = replica, a partial restore). What the contacts' TRUNCATE trigger
    does by itself."""
    if not _postgres():
        return
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("TRUNCATE campaigns_segmentindex")
        State.objects.filter(pk=1).update(
            covered_upto=0,
            refill_cursor=None,
            refill_upto=None,
            refill_keys=None,
            updated_at=timezone.now(),
        )


@dataclass
class IndexStatus:
    available: bool  # PostgreSQL
    covered_upto: int = 0
    newest_contact: int = 0
    refilling: bool = False
    slots: list[dict] | None = None


def segment_index_status() -> IndexStatus:
    """What the index holds, for the operator (manage.py segment_index)."""
    if not _postgres():
        return IndexStatus(available=False)
    state = State.objects.get(pk=1)
    slots = list(
        SegmentIndexSlot.objects.filter(key__isnull=False)
        .order_by("col")
        .values("col", "kind", "key", "ready")
    )
    return IndexStatus(
        available=True,
        covered_upto=state.covered_upto,
        newest_contact=_newest_contact(),
        refilling=state.refill_cursor is not None,
        slots=slots,
    )
