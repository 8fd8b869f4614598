"""Delete what is past its retention window, in small batches that never lock a table.

- MessageAttempt rows older than LOA_RETENTION_ATTEMPT_DAYS;
- WebhookEvent rows older than LOA_RETENTION_WEBHOOK_DAYS (their InboundMessage rows stay, the
  link is cleared);
- the raw body, query and headers of WebhookEvent rows older than LOA_WEBHOOK_BODY_RETENTION_DAYS
  (shorter: they hold phones and reply texts; the row with its outcome and message link stays),
  except events still waiting to be applied (received, unmatched, failed: they need the body);
- uploaded import files and their error reports older than LOA_IMPORT_FILE_RETENTION_DAYS
  (campaigns.privacy.retention; the import row and its counts stay);
- InboundMessage rows (replies: a person's words and phone) older than
  LOA_RETENTION_INBOUND_DAYS, except opt-out requests still waiting for a person to match them
  (the opt-outs they applied are OptOut rows, which stay);
- Message rows of campaigns that ended (completed or cancelled) more than
  LOA_RETENTION_MESSAGE_DAYS ago (their attempts go with them, webhook events keep the event and
  lose the link). The campaign itself and its counters stay: reports still add up.

Each batch selects at most N ids through an index and deletes exactly those rows in its own short
transaction (DELETE ... WHERE id IN (...)): row locks on N rows for milliseconds, never a table
lock, so sending and callbacks go on while it runs. Messages, the big table, go by slices of
consecutive ids of one campaign instead (messages_purge: LOA_RETENTION_MESSAGE_SLICE ids a
transaction, one range DELETE, no id list). A window of 0 keeps that kind forever.

A daily django-q2 schedule runs it (`--install-schedule`; a normal run also installs it when it is
missing), at 03:00 local time when traffic is lowest.

It lives in webhooks, the top room, because it purges rows of campaigns and of webhooks alike.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.db.models import (
    CASCADE,
    PROTECT,
    RESTRICT,
    SET_NULL,
    ProtectedError,
    Q,
    RestrictedError,
)
from django.db.models.signals import post_delete, pre_delete
from django.utils import timezone

from campaigns.models import Campaign, Message, MessageAttempt
from campaigns.privacy.retention import import_files_purge
from campaigns.selectors.campaign import campaign_id_range
from webhooks.models import InboundMessage, WebhookEvent

logger = logging.getLogger("loa.retention")

SCHEDULE_NAME = "loa: purge old data"
SCHEDULE_FUNC = "webhooks.management.commands.purge_old_data.scheduled_purge"
FINISHED = (Campaign.Status.COMPLETED, Campaign.Status.CANCELLED)


def _delete_in_batches(qs, *, batch_size: int, pause: float) -> dict[str, int]:
    """Delete the rows of `qs` by batches of ids; returns rows deleted per model label.

    Django's delete() on a batch handles the relations in the same short transaction (CASCADE
    rows deleted, SET_NULL links cleared); only("pk") keeps it from loading bodies and payloads.
    """
    model = qs.model
    counts: dict[str, int] = {}
    while True:
        ids = list(qs.order_by("pk").values_list("pk", flat=True)[:batch_size])
        if not ids:
            return counts
        with transaction.atomic():
            _n, per_model = model.objects.filter(pk__in=ids).only("pk").delete()
        for label, n in per_model.items():
            counts[label] = counts.get(label, 0) + n
        if len(ids) < batch_size:
            return counts
        if pause:
            time.sleep(pause)  # let replicas and the send engine breathe between batches


def messages_purge(*, campaign_id: int, width: int, pause: float = 0.0) -> dict[str, int]:
    """Delete a campaign's messages by slices of `width` consecutive ids, each slice in its own
    short transaction: first the rows that cascade from them (attempts, API records: the ORM's
    collector, one statement per relation), then the messages with one DELETE over an id range
    of the primary key. A campaign's messages are built in runs of consecutive ids, so a slice
    holds up to `width` of its rows and no other campaign's; no id list goes back and forth and
    no model instance is made. Measured at 50M messages: docs/BENCHMARKS.md ("10M tenant").

    Raises ProtectedError / RestrictedError (nothing deleted in that slice) when a relation
    protects them."""
    # Two probes of the claim index a status (a plain MIN/MAX would read all the campaign's rows).
    span = campaign_id_range(campaign=Campaign(pk=campaign_id))
    if span is None:
        return {}
    # Message receivers would be skipped by the raw DELETE: with any, the ORM deletes the slice.
    signalled = pre_delete.has_listeners(Message) or post_delete.has_listeners(Message)
    counts: dict[str, int] = {}
    width = max(1, width)
    for start in range(span[0], span[1] + 1, width):
        with transaction.atomic():
            _commit_without_waiting()
            rows = Message.objects.filter(
                campaign_id=campaign_id, pk__gte=start, pk__lt=start + width
            )
            if signalled:
                _n, per_model = rows.delete()
            else:
                per_model = _related_delete(rows)
                per_model[Message._meta.label] = rows._raw_delete(rows.db)
        for label, n in per_model.items():
            if n:
                counts[label] = counts.get(label, 0) + n
        if pause:
            time.sleep(pause)
    return counts


def _commit_without_waiting() -> None:
    """PostgreSQL: this transaction's COMMIT does not wait for its WAL to reach the disk.

    A slice's DELETE writes megabytes of WAL (a record per row, and every page first touched
    since a checkpoint written whole); not waiting for each slice's flush took a month of
    3,000,000 messages from 3.5 s to 2.8 s (docs/BENCHMARKS.md, "10M tenant"). A crash can then
    forget the last slices' deletions (never half of one: the database stays consistent); the
    rows are still old and the next purge deletes them. Nothing is sent or recorded here, so
    nothing a person relies on can be lost."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute("SET LOCAL synchronous_commit TO OFF")


def _related_delete(rows) -> dict[str, int]:
    """What Message's relations do when `rows` go: cascade (through the ORM's collector), set
    null, or refuse (ProtectedError / RestrictedError, raised before anything is deleted)."""
    counts: dict[str, int] = {}
    ids = rows.values("pk")
    # As Django's collector finds them: hidden relations (related_name "+") included.
    for rel in Message._meta.get_fields(include_hidden=True):
        if not (rel.auto_created and not rel.concrete and (rel.one_to_many or rel.one_to_one)):
            continue
        related = rel.related_model._base_manager.filter(**{f"{rel.field.name}__in": ids})
        if rel.on_delete in (PROTECT, RESTRICT):
            if related.exists():
                error = ProtectedError if rel.on_delete is PROTECT else RestrictedError
                raise error(f"{rel.related_model._meta.label} rows refer to them", set())
        elif rel.on_delete is SET_NULL:
            related.update(**{rel.field.name: None})
        elif rel.on_delete is CASCADE:
            _n, per_model = related.delete()
            for label, n in per_model.items():
                counts[label] = counts.get(label, 0) + n
        # DO_NOTHING, SET_DEFAULT, SET(...): none on Message today; left to the database.
    return counts


def data_purge(
    *,
    now: datetime | None = None,
    attempt_days: int | None = None,
    webhook_days: int | None = None,
    message_days: int | None = None,
    batch_size: int | None = None,
    dry_run: bool = False,
    pause: float = 0.0,
    body_days: int | None = None,
    inbound_days: int | None = None,
    file_days: int | None = None,
) -> dict[str, int]:
    """Rows deleted (or, with dry_run, that would be deleted) per kind; "webhook_bodies" and
    "import_files" count bodies blanked and files removed."""
    # Rows first: a body is not blanked in a row about to be deleted.
    rows = _rows_purge(
        now=now,
        attempt_days=attempt_days,
        webhook_days=webhook_days,
        message_days=message_days,
        inbound_days=inbound_days,
        batch_size=batch_size,
        dry_run=dry_run,
        pause=pause,
    )
    return {
        **rows,
        "webhook_bodies": webhook_bodies_purge(
            now=now, days=body_days, batch_size=batch_size, dry_run=dry_run, pause=pause
        ),
        "import_files": import_files_purge(now=now, days=file_days, dry_run=dry_run),
    }


# Events whose body is still needed: not applied yet, or left for a person to re-apply.
WAITING = (
    WebhookEvent.Outcome.RECEIVED,
    WebhookEvent.Outcome.UNMATCHED,
    WebhookEvent.Outcome.FAILED,
)


def webhook_bodies_purge(
    *,
    now: datetime | None = None,
    days: int | None = None,
    batch_size: int | None = None,
    dry_run: bool = False,
    pause: float = 0.0,
) -> int:
    """Blank body, query and headers of webhook events older than `days` (default
    LOA_WEBHOOK_BODY_RETENTION_DAYS; 0 keeps them), by batches of ids; returns the events
    blanked. The row (outcome, detail, message link, times) stays for its own retention."""
    days = settings.LOA_WEBHOOK_BODY_RETENTION_DAYS if days is None else days
    if days <= 0:
        return 0
    batch = max(1, batch_size or settings.LOA_RETENTION_BATCH_SIZE)
    old = (
        WebhookEvent.objects.filter(received_at__lt=(now or timezone.now()) - timedelta(days=days))
        .exclude(outcome__in=WAITING)
        .exclude(body="", query="", headers={})
    )
    if dry_run:
        return old.count()
    done = 0
    while True:
        ids = list(old.order_by("pk").values_list("pk", flat=True)[:batch])
        if not ids:
            return done
        done += WebhookEvent.objects.filter(pk__in=ids).update(body="", query="", headers={})
        if len(ids) < batch:
            return done
        if pause:
            time.sleep(pause)


def _rows_purge(
    *,
    now: datetime | None,
    attempt_days: int | None,
    webhook_days: int | None,
    message_days: int | None,
    inbound_days: int | None,
    batch_size: int | None,
    dry_run: bool,
    pause: float,
) -> dict[str, int]:
    now = now or timezone.now()
    attempt_days = settings.LOA_RETENTION_ATTEMPT_DAYS if attempt_days is None else attempt_days
    webhook_days = settings.LOA_RETENTION_WEBHOOK_DAYS if webhook_days is None else webhook_days
    message_days = settings.LOA_RETENTION_MESSAGE_DAYS if message_days is None else message_days
    inbound_days = settings.LOA_RETENTION_INBOUND_DAYS if inbound_days is None else inbound_days
    batch = max(1, batch_size or settings.LOA_RETENTION_BATCH_SIZE)

    ended_ids: list[int] = []
    if message_days > 0:
        ended_ids = list(
            Campaign.objects.filter(
                status__in=FINISHED, finished_at__lt=now - timedelta(days=message_days)
            ).values_list("pk", flat=True)
        )
    attempts_q = Q(pk__in=[])
    if ended_ids:
        attempts_q |= Q(message__campaign_id__in=ended_ids)
    if attempt_days > 0:
        attempts_q |= Q(created_at__lt=now - timedelta(days=attempt_days))
    events = (
        WebhookEvent.objects.filter(received_at__lt=now - timedelta(days=webhook_days))
        if webhook_days > 0
        else WebhookEvent.objects.none()
    )
    # An opt-out request no contact could be tied to waits for a person, however old.
    replies = (
        InboundMessage.objects.filter(received_at__lt=now - timedelta(days=inbound_days)).exclude(
            opt_out_state=InboundMessage.OptOutState.NOT_MATCHED
        )
        if inbound_days > 0
        else InboundMessage.objects.none()
    )

    if dry_run:
        return {
            "messages": Message.objects.filter(campaign_id__in=ended_ids).count()
            if ended_ids
            else 0,
            "attempts": MessageAttempt.objects.filter(attempts_q).count(),
            "webhook_events": events.count(),
            "inbound_messages": replies.count(),
        }

    done: dict[str, int] = {}

    def add(counts: dict[str, int]) -> None:
        for label, n in counts.items():
            done[label] = done.get(label, 0) + n

    # One campaign at a time, by slices of its id range (messages_purge).
    for campaign_id in ended_ids:
        try:
            add(
                messages_purge(
                    campaign_id=campaign_id,
                    width=batch_size or settings.LOA_RETENTION_MESSAGE_SLICE,
                    pause=pause,
                )
            )
        except (ProtectedError, RestrictedError) as exc:
            # Something protects these messages (a newer relation): keep them, say so, go on.
            logger.warning("purge: messages of campaign %s kept: %s", campaign_id, exc)
    if attempt_days > 0:
        add(
            _delete_in_batches(
                MessageAttempt.objects.filter(created_at__lt=now - timedelta(days=attempt_days)),
                batch_size=batch,
                pause=pause,
            )
        )
    add(_delete_in_batches(events, batch_size=batch, pause=pause))
    add(_delete_in_batches(replies, batch_size=batch, pause=pause))
    return {
        "messages": done.get(Message._meta.label, 0),
        "attempts": done.get(MessageAttempt._meta.label, 0),
        "webhook_events": done.get(WebhookEvent._meta.label, 0),
        "inbound_messages": done.get(InboundMessage._meta.label, 0),
    }


def _next_local(hour: int, minute: int, now: datetime | None = None) -> datetime:
    local = timezone.localtime(now or timezone.now())
    at = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    return at if at > local else at + timedelta(days=1)


def schedule_install(*, hour: int = 3, minute: int = 0, update: bool = True) -> tuple[bool, str]:
    """Create (or move) the daily schedule. Returns (created, when)."""
    from django_q.models import Schedule

    next_run = _next_local(hour, minute)
    existing = Schedule.objects.filter(name=SCHEDULE_NAME).first()
    if existing and not update:
        return False, timezone.localtime(existing.next_run).strftime("%H:%M")
    Schedule.objects.update_or_create(
        name=SCHEDULE_NAME,
        defaults={
            "func": SCHEDULE_FUNC,
            "schedule_type": Schedule.DAILY,
            "repeats": -1,
            "next_run": next_run,
        },
    )
    return existing is None, next_run.strftime("%H:%M")


def scheduled_purge() -> dict[str, int]:
    """The daily task (django-q2 stores the returned counts as the task's result)."""
    return data_purge(pause=0.05)


class Command(BaseCommand):
    help = (
        "Delete message attempts, webhook events, replies and messages of ended campaigns older "
        "than the LOA_RETENTION_*_DAYS windows, in batches; prints counts."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would go; delete nothing."
        )
        parser.add_argument("--batch-size", type=int, default=None)
        parser.add_argument("--attempt-days", type=int, default=None)
        parser.add_argument("--webhook-days", type=int, default=None)
        parser.add_argument("--message-days", type=int, default=None)
        parser.add_argument("--inbound-days", type=int, default=None)
        parser.add_argument(
            "--pause", type=float, default=0.0, help="Seconds to sleep between batches."
        )
        parser.add_argument(
            "--install-schedule",
            action="store_true",
            help="Only create or move the daily schedule (see --at), then exit.",
        )
        parser.add_argument("--at", default="03:00", help="Local time of the daily run (HH:MM).")
        parser.add_argument(
            "--no-schedule",
            action="store_true",
            help="Do not install the daily schedule when it is missing.",
        )

    def handle(self, *args, **opts):
        try:
            hour, minute = (int(x) for x in opts["at"].split(":"))
            if not (0 <= hour < 24 and 0 <= minute < 60):
                raise ValueError
        except ValueError as exc:
            raise CommandError("--at takes a local time as HH:MM, e.g. 03:00") from exc
        if opts["install_schedule"]:
            created, when = schedule_install(hour=hour, minute=minute)
            self.stdout.write(
                f"Schedule '{SCHEDULE_NAME}' {'created' if created else 'updated'}: daily at "
                f"{when} ({settings.TIME_ZONE})."
            )
            return
        for name in ("batch_size", "attempt_days", "webhook_days", "message_days", "inbound_days"):
            if opts[name] is not None and opts[name] < 0:
                raise CommandError(f"--{name.replace('_', '-')} cannot be negative")
        report = data_purge(
            attempt_days=opts["attempt_days"],
            webhook_days=opts["webhook_days"],
            message_days=opts["message_days"],
            inbound_days=opts["inbound_days"],
            batch_size=opts["batch_size"],
            dry_run=opts["dry_run"],
            pause=opts["pause"],
        )
        verb = "would delete" if opts["dry_run"] else "deleted"
        self.stdout.write(
            f"{verb}: {report['messages']} messages, {report['attempts']} message attempts, "
            f"{report['webhook_events']} webhook events, {report['inbound_messages']} replies"
        )
        self.stdout.write(
            f"{'would blank' if opts['dry_run'] else 'blanked'}: {report['webhook_bodies']} "
            f"webhook bodies; {verb}: {report['import_files']} import files"
        )
        if not opts["dry_run"] and not opts["no_schedule"]:
            created, when = schedule_install(hour=hour, minute=minute, update=False)
            if created:
                self.stdout.write(f"Installed the daily schedule '{SCHEDULE_NAME}' at {when}.")
