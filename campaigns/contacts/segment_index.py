"""The segment index (PostgreSQL): exact segment counts at millions of contacts.

An attribute rule reads every contact's JSON: 2.1-2.7 s for one count at 10,000,000 contacts,
whatever index exists (docs/ARCHITECTURE.md, "The segment index"). The index is one narrow row a
contact (table campaigns_segmentindex, migration 0026): its tags, the ids of its lists and, in
slots, the values rules compare (loa_fold, loa_number or loa_date of one attribute each), so a
count reads narrow typed columns and a list rule is a filter of the same scan.

- Slots: each attribute a saved segment reads gets one (segment_index_claim, from the build). 12 text,
  6 number and 6 date slots; when every slot of a kind is taken by attributes a saved segment
  reads, a new segment on another attribute counts on the contacts, as before.
- Upkeep: statement-level triggers on contacts and memberships (migration 0026), whatever writes.
- Build (segment_index_build, the "loa: segment index" schedule every minute, and after a claim):
  fills every row in id slices, each under a short SHARE lock of both tables (writers wait one
  slice, readers never), resumable; a slot is read by counts only once a build that started
  after it was assigned finished, and the table only once a first build did.
- Counting (index_queryset): the same Q as the contacts' query (campaigns.contacts.segments
  builds both), over the slots' columns instead of expressions on the JSON; None when the index
  cannot answer (SQLite, not built yet, a slot missing), and the caller counts the contacts.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from django.db import DatabaseError, OperationalError, connection, transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from campaigns.models import SEGMENT_INDEX_SLOTS, Segment, SegmentIndex, SegmentIndexSlot
from campaigns.models import SegmentIndexState as State
from campaigns.segment_rules import attribute_reads

logger = logging.getLogger("loa.segments")

BUILD_TASK = "campaigns.tasks.segment_index_build_task"
SLICE = 20_000  # contacts a build step writes in one transaction (about 0.1-0.2 s of locks)
LOCK_KEY = 0x5E6_1D  # the advisory lock: one build at a time
READERS = {"text": "loa_fold", "number": "loa_number", "date": "loa_date"}
COLUMNS = [col for col, _ in SEGMENT_INDEX_SLOTS]


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
            slot.save(update_fields=["key", "ready", "assigned_at"])
            held.add((kind, key))
            assigned.append(slot.col)
    return assigned


# ---- counting ----------------------------------------------------------------------------------


def ready_columns(rules) -> dict[tuple[str, str], str] | None:
    """{(kind, attribute): column} for what `rules` read, when the index can count them."""
    if not _postgres():
        return None
    state = State.objects.filter(pk=1).values_list("rows_ready", flat=True).first()
    if not state:
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


def index_base(list_ids: list[int] | None) -> QuerySet:
    """Every indexed contact, or the members of any of `list_ids`."""
    qs = SegmentIndex.objects.all()
    if list_ids:
        qs = qs.filter(lists__overlap=list(list_ids))
    return qs


def column_value(columns: dict[tuple[str, str], str]):
    """What campaigns.contacts.segments' rules compare, read from the slots' columns."""
    return lambda kind, key: F(columns[(kind, key)])


# ---- the build ---------------------------------------------------------------------------------


@dataclass
class BuildReport:
    done: bool = False
    busy: bool = False
    rows: int = 0
    slices: int = 0
    passes_finished: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def _keys() -> dict[str, str]:
    return dict(
        SegmentIndexSlot.objects.filter(key__isnull=False).values_list("col", "key").iterator()
    )


def _needs_build(state: State) -> bool:
    if state.pass_cursor is not None or not state.rows_ready:
        return True
    return SegmentIndexSlot.objects.filter(key__isnull=False, ready=False).exists()


def _slice_sql() -> str:
    values = ", ".join(
        f"{READERS[kind]}(c.attributes ->> %(k_{col})s::text)" for col, kind in SEGMENT_INDEX_SLOTS
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
        " WHERE c.id > %(after)s AND c.id <= %(upto)s"
        f" ON CONFLICT (contact_id) DO UPDATE SET {sets}"
        f" WHERE ({changed}) IS DISTINCT FROM ({fresh})"
    )


# Rows of contacts gone (a membership added for a contact id that no longer exists leaves one).
_ORPHANS = (
    "DELETE FROM campaigns_segmentindex f WHERE f.contact_id > %(after)s"
    " AND (%(upto)s IS NULL OR f.contact_id <= %(upto)s)"
    " AND NOT EXISTS (SELECT 1 FROM campaigns_contact c WHERE c.id = f.contact_id)"
)


def _build_slice(after: int, size: int) -> tuple[int, int | None]:
    """Index the `size` contacts after id `after`, exactly: both tables are SHARE-locked for the
    slice (no write can land between reading a contact and writing its row; the triggers take
    over after). Returns (rows, last id), last id None when no contact is left."""
    keys = _keys()
    with transaction.atomic(), connection.cursor() as cur:
        # Shorter than deadlock_timeout (1 s): against a writer holding rows this slice needs,
        # the build gives way, never the import or the edit.
        cur.execute("SET LOCAL lock_timeout = '500ms'")
        cur.execute("LOCK TABLE campaigns_contact, campaigns_contactlistmembership IN SHARE MODE")
        cur.execute(
            "SELECT max(id), count(*) FROM (SELECT id FROM campaigns_contact WHERE id > %s"
            " ORDER BY id LIMIT %s) s",
            [after, size],
        )
        upto, n = cur.fetchone()
        params = {"after": after, "upto": upto}
        params.update({f"k_{col}": keys.get(col) for col in COLUMNS})
        if upto is not None:
            cur.execute(_slice_sql(), params)
        cur.execute(_ORPHANS, params)
        State.objects.filter(pk=1).update(
            pass_cursor=upto if upto is not None else after, updated_at=timezone.now()
        )
    return n, upto


def _start_pass() -> None:
    State.objects.filter(pk=1).update(
        pass_cursor=0, pass_keys=_keys(), pass_started_at=timezone.now(), updated_at=timezone.now()
    )


def _finish_pass(state: State) -> None:
    """A pass reached the last contact: every row exists, and every slot whose attribute has not
    changed since the pass started holds its values."""
    started_with = state.pass_keys or {}
    with transaction.atomic():
        for slot in SegmentIndexSlot.objects.select_for_update().filter(key__isnull=False):
            if started_with.get(slot.col) == slot.key and not slot.ready:
                slot.ready = True
                slot.save(update_fields=["ready"])
        State.objects.filter(pk=1).update(
            rows_ready=True,
            pass_cursor=None,
            pass_keys=None,
            built_at=timezone.now(),
            updated_at=timezone.now(),
        )


def segment_index_build(*, seconds: float = 240.0, size: int = SLICE) -> BuildReport:
    """Bring the index up to date: passes over every contact until every row and every assigned
    slot is there, for `seconds` at most (the next run goes on from where this one stopped).
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
            state = State.objects.get(pk=1)
            if state.pass_cursor is None:
                if not _needs_build(state):
                    report.done = True
                    break
                _start_pass()
                continue
            try:
                n, upto = _build_slice(state.pass_cursor, size)
            except OperationalError as exc:  # lock_timeout: a writer holds the tables
                logger.info("segment index: slice after %s waits: %s", state.pass_cursor, exc)
                time.sleep(0.5)
                continue
            report.slices += 1
            report.rows += n
            if upto is None:
                _finish_pass(state)
                report.passes_finished += 1
    finally:
        try:
            with connection.cursor() as cur:
                cur.execute("SELECT pg_advisory_unlock(%s)", [LOCK_KEY])
        except DatabaseError:  # the connection is gone, and the lock with it
            pass
    report.seconds = round(time.monotonic() - started, 2)
    return report


@dataclass
class IndexStatus:
    available: bool  # PostgreSQL
    rows_ready: bool = False
    building: bool = False
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
        rows_ready=state.rows_ready,
        building=state.pass_cursor is not None,
        slots=slots,
    )
