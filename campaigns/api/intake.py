"""The intake of API messages: a request writes one row (ApiIntake) in one statement, a worker
task makes the engine's records from the rows in batches.

Why: a message of the engine is a one-recipient campaign (its campaign, its history row, its
message, the ApiMessage, the driver's queue row): a dozen statements a request made POST
/api/v1/messages answer ~20 requests/s on two loaded cores. The request now checks everything
it can without a per-recipient query (the key, the template, the channel, the phone and its
reach, the parameters, and for promotions the quiet hours, consent and frequency caps), then
writes one row in one statement that also answers the opt-out and the Idempotency-Key
(PostgreSQL: one INSERT ... SELECT ... ON CONFLICT). Its 202 answers the row's id, which the
ApiMessage the worker makes takes as its own, so GET /api/v1/messages/{id} reads the same id
before and after.

The worker (api_intake_task) is kicked by the requests (through one thread per web process, at
most every KICK_EVERY seconds), and by an every-minute schedule for a lost kick. It makes a batch in one transaction;
if the batch fails, each row alone (a savepoint each), so one bad row is marked failed with its
error (GET shows it failed, code intake_failed) and never blocks the others. The engine then
sends each message as before (its driver, claims, send-time opt-out and cap checks, priority).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext_noop
from django_q.tasks import async_task

from campaigns.api.models import ApiApplication, ApiIntake, ApiMessage, IdempotencyRecord
from campaigns.engine.dispatch import campaign_requeue
from campaigns.engine.keys import idempotency_key
from campaigns.models import Campaign, CampaignEvent, Contact, Message, OptOut
from campaigns.notes import Note
from campaigns.notes import split as split_note
from providers.models import Channel
from templates_app.models import Template

logger = logging.getLogger("loa.api")

TASK = "campaigns.api.intake.api_intake_task"
BATCH = 500  # rows a worker transaction makes
KICK_EVERY = 0.2  # seconds between two kicks of the worker from one web process


# ---- the request's one statement ----------------------------------------------------------------


@dataclass
class IntakeRow:
    """What a checked request asks to send (campaigns.api.services made and checked it)."""

    application_id: int
    key_id: int
    channel_id: int
    channel_kind: str
    template_id: int | None
    phone: str
    template_data: dict
    content: str
    client_reference: str
    promotion: bool
    idempotency_key: str | None = None
    body_sha256: str = ""


@dataclass
class IntakeAnswer:
    """kind: "accepted" (a new row: id), "replay" (the key's row, same body: id), "conflict"
    (the key's row or record, another body), "record" (the key's remembered answer: status,
    body; status None while that request is still being answered), "opted_out"."""

    kind: str
    id: int | None = None
    status: int | None = None
    body: dict | None = None


def intake_insert(row: IntakeRow, *, window: timedelta) -> IntakeAnswer:
    """Write the row unless the phone opted out of the channel or the key already has an answer;
    say which. On PostgreSQL one statement; elsewhere (SQLite, which serializes writers) a few."""
    now = timezone.now()
    for _attempt in range(3):
        if connection.vendor == "postgresql":
            answer, existing_at = _insert_postgresql(row, now, window)
        else:
            answer, existing_at = _insert_generic(row, now, window)
        if answer.kind == "opted_out" and row.idempotency_key:
            # The opt-out check skipped the insert: the key may still have a first answer.
            existing = (
                ApiIntake.objects.filter(
                    application_id=row.application_id,
                    idempotency_key=row.idempotency_key,
                    created_at__gte=now - window,
                )
                .values_list("pk", "body_sha256")
                .first()
            )
            if existing:
                pk, digest = existing
                return IntakeAnswer("replay" if digest == row.body_sha256 else "conflict", id=pk)
        if existing_at is None or existing_at >= now - window:
            return answer
        # The key's row is older than the idempotency window: the key is new again (its old
        # message keeps its id, it just no longer answers to the key).
        if answer.id is not None:
            ApiIntake.objects.filter(pk=answer.id, created_at=existing_at).update(
                idempotency_key=None
            )
    raise RuntimeError("idempotency key kept changing")  # three races in a row: a bug


def _insert_postgresql(
    row: IntakeRow, now: datetime, window: timedelta
) -> tuple[IntakeAnswer, datetime | None]:
    sql = f"""
    WITH rec AS (
        SELECT body_sha256, response_status, response_body::text AS response_body
        FROM {IdempotencyRecord._meta.db_table}
        WHERE %(idem)s::varchar IS NOT NULL AND application_id = %(app)s AND key = %(idem)s
          AND created_at >= %(since)s
    ),
    blocked AS (
        SELECT 1 FROM {OptOut._meta.db_table} o
        JOIN {Contact._meta.db_table} c ON c.id = o.contact_id
        WHERE c.phone = %(phone)s AND o.channel_kind IN (%(kind)s, %(all)s)
        LIMIT 1
    ),
    ins AS (
        INSERT INTO {ApiIntake._meta.db_table} (
            application_id, key_id, idempotency_key, body_sha256, channel_id, template_id,
            phone, template_data, content, client_reference, promotion, state, error, created_at
        )
        SELECT %(app)s, %(key)s, %(idem)s, %(digest)s, %(channel)s, %(template)s, %(phone)s,
               %(data)s::jsonb, %(content)s, %(ref)s, %(promotion)s, 'pending', '', %(now)s
        WHERE NOT EXISTS (SELECT 1 FROM rec) AND NOT EXISTS (SELECT 1 FROM blocked)
        ON CONFLICT (application_id, idempotency_key) WHERE idempotency_key IS NOT NULL
        DO NOTHING
        RETURNING id
    )
    SELECT 'ins', id, NULL, NULL, NULL, NULL::int, NULL::text FROM ins
    UNION ALL SELECT 'rec', NULL, body_sha256, NULL, NULL, response_status, response_body FROM rec
    UNION ALL SELECT 'blocked', NULL, NULL, NULL, NULL, NULL, NULL FROM blocked
    """
    params = {
        "app": row.application_id,
        "key": row.key_id,
        "idem": row.idempotency_key,
        "digest": row.body_sha256,
        "channel": row.channel_id,
        "template": row.template_id,
        "phone": row.phone,
        "data": json.dumps(row.template_data, ensure_ascii=False),
        "content": row.content,
        "ref": row.client_reference,
        "promotion": row.promotion,
        "now": now,
        "since": now - window,
        "kind": row.channel_kind,
        "all": OptOut.ALL,
    }
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        results = cursor.fetchall()
    by_kind = {r[0]: r for r in results}
    if "rec" in by_kind:
        _k, _id, digest, _at, _ins, status, body = by_kind["rec"]
        if digest != row.body_sha256:
            return IntakeAnswer("conflict"), None
        return IntakeAnswer(
            "record", status=status, body=json.loads(body) if status is not None else None
        ), None
    if "ins" in by_kind:
        return IntakeAnswer("accepted", id=by_kind["ins"][1]), None
    if "blocked" in by_kind:
        return IntakeAnswer("opted_out"), None
    # Nothing inserted, nothing refused: the key has its row (ON CONFLICT DO NOTHING, which
    # waited for a parallel first request to commit). Read it without locking it (a lock
    # would make the worker's SKIP LOCKED pass it by).
    existing = (
        ApiIntake.objects.filter(
            application_id=row.application_id, idempotency_key=row.idempotency_key
        )
        .values_list("pk", "body_sha256", "created_at")
        .first()
    )
    if existing is None:  # its key was just cleared (past the window): try again
        return IntakeAnswer("retry"), now - 2 * window
    pk, digest, created_at = existing
    return IntakeAnswer("replay" if digest == row.body_sha256 else "conflict", id=pk), created_at


def _insert_generic(
    row: IntakeRow, now: datetime, window: timedelta
) -> tuple[IntakeAnswer, datetime | None]:
    with transaction.atomic():
        if row.idempotency_key:
            record = (
                IdempotencyRecord.objects.filter(
                    application_id=row.application_id,
                    key=row.idempotency_key,
                    created_at__gte=now - window,
                )
                .values_list("body_sha256", "response_status", "response_body")
                .first()
            )
            if record:
                if record[0] != row.body_sha256:
                    return IntakeAnswer("conflict"), None
                return IntakeAnswer("record", status=record[1], body=record[2]), None
            existing = (
                ApiIntake.objects.filter(
                    application_id=row.application_id, idempotency_key=row.idempotency_key
                )
                .values_list("pk", "body_sha256", "created_at")
                .first()
            )
            if existing:
                pk, digest, created_at = existing
                kind = "replay" if digest == row.body_sha256 else "conflict"
                return IntakeAnswer(kind, id=pk), created_at
        if OptOut.objects.filter(
            contact__phone=row.phone, channel_kind__in=[row.channel_kind, OptOut.ALL]
        ).exists():
            return IntakeAnswer("opted_out"), None
        intake = ApiIntake.objects.create(
            application_id=row.application_id,
            key_id=row.key_id,
            idempotency_key=row.idempotency_key,
            body_sha256=row.body_sha256,
            channel_id=row.channel_id,
            template_id=row.template_id,
            phone=row.phone,
            template_data=row.template_data,
            content=row.content,
            client_reference=row.client_reference,
            promotion=row.promotion,
            created_at=now,
        )
    return IntakeAnswer("accepted", id=intake.pk), None


# ---- waking the worker --------------------------------------------------------------------------

_wake = threading.Event()
_kicker: threading.Thread | None = None
_kicker_lock = threading.Lock()


def _sync() -> bool:
    return bool(settings.Q_CLUSTER.get("sync"))


def intake_kick() -> None:
    """Have the worker make what this request wrote (call it after the row is committed). The
    request only sets an event: one thread per process queues the worker's task, at most once
    per KICK_EVERY seconds, and always after the last request that set it — so no row is left
    behind, and a request costs no statement for it. With the synchronous queue (tests), the
    rows are made here and now."""
    global _kicker
    if _sync():
        intake_drain()
        return
    if _kicker is None or not _kicker.is_alive():
        with _kicker_lock:
            if _kicker is None or not _kicker.is_alive():
                _kicker = threading.Thread(target=_kick_loop, name="api-intake-kick", daemon=True)
                _kicker.start()
    # After the commit (a batch with an Idempotency-Key writes in a transaction): the task must
    # see the rows. Outside a transaction this runs at once.
    transaction.on_commit(_wake.set)


def _kick_loop() -> None:
    while True:
        _wake.wait()
        _wake.clear()  # before queueing: a row written from now on sets it again
        try:
            async_task(TASK, group="api-intake")
        except Exception:
            # The broker's connection broke (a database restart): a new one next time; the
            # every-minute schedule makes what this kick missed.
            logger.exception("API intake: could not queue the worker")
            connection.close()
        time.sleep(KICK_EVERY)


def api_intake_task() -> int:
    """The worker: batches until no pending row is left, then forgets made rows past the
    idempotency window."""
    handled = intake_drain()
    intake_purge()
    return handled


def intake_purge(*, limit: int = 5000) -> int:
    """Delete made rows older than LOA_API_IDEMPOTENCY_HOURS (their key no longer answers and
    their message is the ApiMessage's now); failed rows stay, for GET. At most `limit` a run."""
    cutoff = timezone.now() - timedelta(hours=float(settings.LOA.get("API_IDEMPOTENCY_HOURS", 24)))
    ids = list(
        ApiIntake.objects.filter(state=ApiIntake.State.MADE, created_at__lt=cutoff)
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    )
    if ids:
        ApiIntake.objects.filter(pk__in=ids).delete()
    return len(ids)


def intake_drain() -> int:
    handled = 0
    while n := intake_process():
        handled += n
    return handled


# ---- the worker ---------------------------------------------------------------------------------


def intake_process(*, limit: int = BATCH) -> int:
    """Make the messages of up to `limit` pending rows (oldest first; rows another worker holds
    are skipped). Returns how many rows were handled (made or failed)."""
    with transaction.atomic():
        qs = ApiIntake.objects.filter(state=ApiIntake.State.PENDING).order_by("id")
        if connection.features.has_select_for_update_skip_locked:
            qs = qs.select_for_update(skip_locked=True)
        rows = list(qs[:limit])
        if not rows:
            return 0
        try:
            with transaction.atomic():
                made = _make(rows)
        except Exception:
            logger.warning("API intake: a batch of %s failed; row by row", len(rows), exc_info=True)
            made = []
            for row in rows:
                try:
                    with transaction.atomic():
                        made += _make([row])
                except Exception as exc:
                    logger.exception("API intake row %s failed", row.pk)
                    ApiIntake.objects.filter(pk=row.pk).update(
                        state=ApiIntake.State.FAILED,
                        error=f"{type(exc).__name__}: {exc}"[:500],
                        processed_at=timezone.now(),
                    )
        for campaign_id in made:
            # The engine's own driver, once the rows it claims are committed.
            transaction.on_commit(partial(campaign_requeue, campaign_id=campaign_id))
    return len(rows)


class IntakeRowError(Exception):
    """A row the worker cannot make (its channel or template is gone)."""


def _make(rows: list[ApiIntake]) -> list[int]:
    """The one-recipient campaigns of `rows`, in bulk: contacts (new phones upserted), campaigns,
    their history rows, messages, ApiMessages (id = the row's id). Returns the campaign ids."""
    apps = dict(
        ApiApplication.objects.filter(pk__in={r.application_id for r in rows}).values_list(
            "pk", "name"
        )
    )
    channels = set(
        Channel.objects.filter(pk__in={r.channel_id for r in rows}).values_list("pk", flat=True)
    )
    templates = set(
        Template.objects.filter(pk__in={r.template_id for r in rows if r.template_id}).values_list(
            "pk", flat=True
        )
    )
    for r in rows:
        if r.channel_id not in channels:
            raise IntakeRowError(f"channel {r.channel_id} no longer exists")
        if r.template_id and r.template_id not in templates:
            raise IntakeRowError(f"template {r.template_id} no longer exists")
    phones = {r.phone for r in rows}
    contact_ids = dict(Contact.objects.filter(phone__in=phones).values_list("phone", "pk"))
    new = {r.phone: r for r in rows if r.phone not in contact_ids}
    if new:
        # One statement, safe against a parallel upsert of the same phone: INSERT ... ON
        # CONFLICT (phone) DO UPDATE (a no-op); then their ids.
        Contact.objects.bulk_create(
            [
                Contact(phone=p, source=f"api:{apps[r.application_id]}"[:255])
                for p, r in new.items()
            ],
            update_conflicts=True,
            unique_fields=["phone"],
            update_fields=["phone"],
        )
        contact_ids.update(Contact.objects.filter(phone__in=new).values_list("phone", "pk"))
    now = timezone.now()
    campaigns = [
        Campaign(
            name=f"API · {apps[r.application_id]} · {r.client_reference or r.phone}"[:200],
            origin=Campaign.Origin.API,
            channel_id=r.channel_id,
            template_id=r.template_id,
            content=r.content if r.template_id is None else "",
            status=Campaign.Status.RUNNING,
            requires_advertising_consent=r.promotion,
            total_count=1,
            started_at=now,
        )
        for r in rows
    ]
    Campaign.objects.bulk_create(campaigns)
    events = []
    for r, campaign in zip(rows, campaigns, strict=True):
        # The history row campaign_transition writes (draft -> running), without its
        # compare-and-set: the campaign is born running, nobody else can see it yet.
        text, stored = split_note(
            Note(
                gettext_noop("Sent through the API by {application}"),
                application=apps[r.application_id],
            )
        )
        events.append(
            CampaignEvent(
                campaign=campaign,
                from_status=Campaign.Status.DRAFT,
                to_status=Campaign.Status.RUNNING,
                note=text[:500],
                note_i18n=stored,
            )
        )
    CampaignEvent.objects.bulk_create(events)
    messages = [
        Message(
            campaign=campaign,
            contact_id=contact_ids[r.phone],
            phone=r.phone,
            template_data=r.template_data,
            idempotency_key=idempotency_key(campaign, contact_ids[r.phone]),
        )
        for r, campaign in zip(rows, campaigns, strict=True)
    ]
    Message.objects.bulk_create(messages)
    ApiMessage.objects.bulk_create(
        [
            ApiMessage(
                pk=r.pk,
                application_id=r.application_id,
                key_id=r.key_id,
                campaign=campaign,
                message=message,
                client_reference=r.client_reference,
                created_at=r.created_at,
            )
            for r, campaign, message in zip(rows, campaigns, messages, strict=True)
        ]
    )
    ApiIntake.objects.filter(pk__in=[r.pk for r in rows]).update(
        state=ApiIntake.State.MADE, processed_at=now
    )
    return [c.pk for c in campaigns]
