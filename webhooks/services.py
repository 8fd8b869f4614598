"""Webhook intake: store raw first, parse with the provider module, apply through campaigns.

Answers: 200 for accepted, duplicate, unmatched or unsupported events (so providers stop
retrying); 400 for a malformed body; 404 for an unknown token. Never a 500 for bad input.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import parse_qsl

from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from campaigns.bulk import rows_bulk_set
from campaigns.contacts.optout import contact_opt_out
from campaigns.engine.delivery import messages_apply_events, messages_find
from campaigns.models import Contact, OptOut
from providers.base import ParsedWebhook, WebhookRejected, WebhookRequest
from providers.models import Channel, ProviderAccount
from providers.sandbox.outbox import SandboxCallback
from providers.shared.phones import normalize_phone
from providers.shared.text import fold
from webhooks import intake
from webhooks.models import InboundMessage, WebhookEvent

logger = logging.getLogger("loa.webhooks")

OUT = WebhookEvent.Outcome
# Headers worth keeping for diagnosis; never cookies or authorization.
KEPT_HEADERS = (
    "content-type",
    "user-agent",
    "x-zevent-signature",
    "x-forwarded-for",
    "x-request-id",
)
MAX_BODY = 256 * 1024


@dataclass
class Answer:
    status: int
    outcome: str
    detail: str = ""

    def payload(self) -> dict[str, str]:
        """The JSON body, the same from the view and from the WSGI fast path."""
        body = {"status": self.outcome}
        if self.status >= 400:
            body["error"] = self.detail
        return body


def webhook_receive(
    *,
    account: ProviderAccount,
    method: str,
    query_string: str,
    body: bytes,
    headers: dict[str, str],
    remote_addr: str | None = None,
) -> Answer:
    """Store the raw request and answer; statuses are applied in batches right after.

    The request path does the least that keeps the promise: parse (pure Python, to refuse a
    malformed body with 400 and to get the dedupe key) and one row written through the group
    commit (webhooks.intake), which shares the INSERT and the COMMIT with concurrent callbacks.
    Duplicates are recognized by the unique (account, dedupe_key) and stored too, marked as such.
    `query_string` is the request's raw query string (as in the WSGI environ), stored as it came.
    """
    try:
        return _receive(account, method, query_string, body, headers, remote_addr)
    except DatabaseError:
        # A database that is down or refuses the row is not the caller's fault: 503, so the
        # provider retries later; never a 500 page.
        logger.exception("webhook intake could not store a callback")
        return Answer(503, "unavailable", "Could not store the callback; retry later")


def _receive(
    account: ProviderAccount,
    method: str,
    query_string: str,
    body: bytes,
    headers: dict[str, str],
    remote_addr: str | None,
) -> Answer:
    # WSGI hands the query string over as latin-1 text of the raw bytes; a provider that sends
    # UTF-8 unescaped means UTF-8 (Django's request.GET decodes it the same way).
    with contextlib.suppress(UnicodeError):
        query_string = query_string.encode("latin-1").decode("utf-8")
    kept = {
        k.lower(): v[:500].replace("\x00", "")
        for k, v in headers.items()
        if k.lower() in KEPT_HEADERS
    }
    raw = intake.event_row(
        account_id=account.pk,
        method=method[:8],
        query=query_string[:10000].replace("\x00", ""),
        headers=kept,
        remote_addr=remote_addr,
    )
    if len(body) > MAX_BODY:
        return _refuse(raw, 413, "Body too large")
    # PostgreSQL text cannot hold NUL: keep a visible replacement instead of failing the insert.
    raw["body"] = body.decode("utf-8", errors="replace").replace("\x00", "\ufffd")
    try:
        # Last value wins for a repeated name, as Django's request.GET.get does.
        query = dict(
            parse_qsl(query_string, keep_blank_values=True, errors="replace", max_num_fields=1000)
        )
    except ValueError:
        return _refuse(raw, 400, "Too many query parameters")
    request = WebhookRequest(method=method, query=query, body=body, headers=kept)
    try:
        parsed = _provider_for(account).parse_webhook(request)
    except WebhookRejected as exc:
        return _refuse(raw, exc.status, str(exc))
    except Exception as exc:  # a parser bug must not become a 500 the provider retries forever
        logger.exception("webhook parser of %s crashed", account.kind)
        _refuse(raw, 400, f"Parser error: {type(exc).__name__}")
        return Answer(400, OUT.REJECTED, "Could not parse the callback")

    _touch_account(account)
    raw["dedupe_key"] = (parsed.dedupe_key or "")[:120]
    if not intake.writer.store(raw):
        return Answer(200, OUT.DUPLICATE)
    _trigger_applier()
    return Answer(200, OUT.RECEIVED)


def _refuse(raw: dict, status: int, detail: str) -> Answer:
    """Keep a refused request too (the log shows what was wrong with it) and answer."""
    raw.update(outcome=OUT.REJECTED, outcome_detail=detail[:500], processed_at=timezone.now())
    intake.writer.store(raw)
    return Answer(status, OUT.REJECTED, detail)


_providers: dict[int, tuple[float, object, object]] = {}


def _provider_for(account: ProviderAccount):
    """Provider instances per account, reused for 30 s in this process: building one decrypts the
    credentials and reads the OA secrets, too much work to repeat on every callback."""
    now = time.monotonic()
    cached = _providers.get(account.pk)
    if cached and now - cached[0] < 30 and cached[1] == account.updated_at:
        return cached[2]
    provider = account.get_provider()
    _providers[account.pk] = (now, account.updated_at, provider)
    return provider


_last_touch: dict[int, float] = {}
_last_trigger = [0.0]


def _touch_account(account: ProviderAccount) -> None:
    """Webhook health for the dashboard, written at most every 5 s per account and process (a
    write per callback would make the account row the hottest row in the database)."""
    now = time.monotonic()
    if now - _last_touch.get(account.pk, 0) > 5:
        _last_touch[account.pk] = now
        ProviderAccount.objects.filter(pk=account.pk).update(last_callback_at=timezone.now())


APPLY_PENDING_KEY = "loa:webhook-apply-pending"


def _trigger_applier() -> None:
    """Ask a worker to apply received events: at most every 0.5 s per process, and only if no
    applier task is already waiting in the queue (a cache flag the task clears when it starts).
    The applier takes everything waiting, so one queued task is enough; without the flag, a
    sustained burst queued tasks faster than one worker ran them, and campaign drivers waited
    behind hundreds of them. The flag expires after 30 s in case a queued task is lost; the
    every-minute tick is the backstop."""
    now = time.monotonic()
    sync = settings.Q_CLUSTER.get("sync")
    if now - _last_trigger[0] < 0.5 and not sync:
        return
    _last_trigger[0] = now
    if not sync:
        try:
            if not cache.add(APPLY_PENDING_KEY, 1, timeout=30):
                return
        except Exception:  # a cache outage must not stop the applier: enqueue anyway
            logger.warning("webhook applier flag unavailable; enqueueing", exc_info=True)
    from django_q.tasks import async_task

    transaction.on_commit(
        lambda: async_task("webhooks.tasks.webhook_apply_task", group="webhook-apply")
    )


def webhook_events_apply(
    *, limit: int = 1000, outcomes: tuple[str, ...] = (OUT.RECEIVED,), ids: list[int] | None = None
) -> dict[str, int]:
    """Apply stored events in one batch: parse, find their messages in bulk, fold the statuses,
    write each message and each campaign's counters once. Returns counts per outcome."""
    done: Counter = Counter()
    with transaction.atomic():
        qs = WebhookEvent.objects.filter(outcome__in=outcomes).order_by("pk")
        if ids is not None:
            qs = qs.filter(pk__in=ids)
        if connection.features.has_select_for_update_skip_locked:
            qs = qs.select_for_update(skip_locked=True, of=("self",))
        events = list(qs[:limit])
        if not events:
            return {}
        # Each account once, not joined onto every event row.
        accounts = ProviderAccount.objects.in_bulk({ev.account_id for ev in events})
        parsed_by_event: dict[int, ParsedWebhook | None] = {}
        for ev in events:
            try:
                provider = _provider_for(accounts[ev.account_id])
                parsed_by_event[ev.pk] = provider.parse_webhook(_request_of(ev))
            except (
                Exception
            ) as exc:  # stored events were parsed once; a change of parser may refuse them
                parsed_by_event[ev.pk] = None
                ev.outcome, ev.outcome_detail = OUT.REJECTED, str(exc)[:500]
        # messages, per account, in two queries each
        by_account: dict[int, list] = {}
        for ev in events:
            p = parsed_by_event[ev.pk]
            if p is not None:
                by_account.setdefault(ev.account_id, []).extend((ev, st) for st in p.statuses)
        items = []
        unmatched: set[int] = set()
        linked: dict[int, int] = {}
        for account_id, pairs in by_account.items():
            found = messages_find(account_id=account_id, events=[st for _ev, st in pairs])
            for (ev, st), mid in zip(pairs, found, strict=True):
                if mid is None:
                    unmatched.add(ev.pk)
                else:
                    items.append((mid, st))
                    linked[ev.pk] = mid
        changes = messages_apply_events(items=items)
        now = timezone.now()
        for ev in events:
            p = parsed_by_event[ev.pk]
            if p is not None:
                for inbound in p.inbound:
                    inbound_store(account=accounts[ev.account_id], event=ev, inbound=inbound)
                if ev.pk in unmatched:
                    ev.outcome, ev.outcome_detail = (
                        OUT.UNMATCHED,
                        "A status for a message not recorded (yet)",
                    )
                elif not p.statuses and not p.inbound:
                    ev.outcome = OUT.IGNORED
                    ev.outcome_detail = p.ignored_reason or "No status or message in this event"
                else:
                    ev.outcome = OUT.APPLIED
                    ev.outcome_detail = (
                        f"{len(p.statuses)} status(es)"
                        if p.statuses
                        else f"{len(p.inbound)} inbound message(s)"
                    )
            ev.message_id = linked.get(ev.pk)
            ev.processed_at = now
            ev.attempts += 1
            done[ev.outcome] += 1
        rows_bulk_set(
            WebhookEvent,
            events,
            ["outcome", "outcome_detail", "message", "processed_at", "attempts"],
        )
    done["changes"] = changes
    return dict(done)


def _request_of(event: WebhookEvent) -> WebhookRequest:
    query = dict(parse_qsl(event.query, keep_blank_values=True))
    return WebhookRequest(
        method=event.method, query=query, body=event.body.encode(), headers=event.headers
    )


OPT_OUT_KEYWORDS_DEFAULT = ("TU CHOI", "TUCHOI", "HUY", "STOP", "UNSUBSCRIBE")


def inbound_store(
    *, account: ProviderAccount, event: WebhookEvent | None, inbound
) -> InboundMessage:
    phone = normalize_phone(inbound.phone).phone if inbound.phone else None
    contact = Contact.objects.filter(phone=phone).first() if phone else None
    channel = None
    if inbound.channel_external_id:
        channel = Channel.objects.filter(
            account=account, external_id=inbound.channel_external_id
        ).first()
    keywords = settings.LOA.get("OPT_OUT_KEYWORDS") or OPT_OUT_KEYWORDS_DEFAULT
    normalized = fold(inbound.text).upper().strip(" .!")
    opted = normalized in {fold(k).upper() for k in keywords}
    msg = InboundMessage.objects.create(
        account=account,
        channel=channel,
        contact=contact,
        sender=inbound.sender[:100],
        sender_name=inbound.name[:200],
        phone=phone or "",
        text=inbound.text,
        provider_message_id=inbound.provider_message_id[:100],
        opted_out=opted,
        event=event,
    )
    if opted and phone:
        # One service for every opt-out source (admin, file, reply): it keeps the first reason
        # and time as evidence, and creates the contact if the number is not one yet.
        opt_out = contact_opt_out(
            phone=phone,
            channel_kind=channel.kind if channel else OptOut.ALL,
            reason=inbound.text[:300],
            source=OptOut.Source.REPLY,
        )
        if msg.contact_id is None:  # the number became a contact just now
            InboundMessage.objects.filter(pk=msg.pk).update(contact=opt_out.contact)
            msg.contact = opt_out.contact
    return msg


def webhook_event_reprocess(*, event_id: int) -> str:
    """Apply one stored event again (admin "re-apply"); returns its new outcome."""
    WebhookEvent.objects.filter(pk=event_id).exclude(outcome=OUT.DUPLICATE).update(
        outcome=OUT.RECEIVED
    )
    webhook_events_apply(limit=1)
    return WebhookEvent.objects.filter(pk=event_id).values_list("outcome", flat=True).first() or ""


def webhook_events_reapply(*, limit: int = 2000) -> int:
    """Unmatched events are tried again; those older than the retention window are marked
    expired (visible in the admin), never silently dropped. Events left in `received` (a worker
    died mid-batch) are applied too."""
    window = timedelta(hours=settings.LOA.get("UNMATCHED_RETENTION_HOURS", 72))
    WebhookEvent.objects.filter(
        outcome=OUT.UNMATCHED, received_at__lt=timezone.now() - window
    ).update(
        outcome=OUT.EXPIRED,
        outcome_detail="No matching message appeared within the retention window",
    )
    applied = 0
    while True:
        done = webhook_events_apply(limit=limit, outcomes=(OUT.RECEIVED, OUT.UNMATCHED))
        applied += done.get(OUT.APPLIED, 0)
        # stop when a batch was not full or nothing but unmatched events remain
        if sum(v for k, v in done.items() if k != "changes") < limit or not done.get(OUT.APPLIED):
            return applied


# ---- the sandbox provider's callbacks ----------------------------------------------------------


def sandbox_callbacks_waiting() -> bool:
    return SandboxCallback.objects.exists()


def sandbox_callbacks_deliver(*, limit: int = 1000) -> int:
    """Deliver due sandbox callbacks as if the provider had POSTed them to our webhook URL."""
    delivered = 0
    due = list(
        SandboxCallback.objects.filter(due_at__lte=timezone.now())
        .select_related("account")
        .order_by("due_at")[:limit]
    )
    for cb in due:
        # Claim by deleting: two pumps never deliver the same callback.
        if not SandboxCallback.objects.filter(pk=cb.pk).delete()[0]:
            continue
        webhook_receive(
            account=cb.account,
            method="POST",
            query_string="",
            body=json.dumps(cb.payload).encode(),
            headers={"Content-Type": "application/json", "User-Agent": "Loa-Sandbox"},
            remote_addr="127.0.0.1",
        )
        delivered += 1
    return delivered
