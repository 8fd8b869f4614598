"""Webhook intake: store raw first, parse with the provider module, apply through campaigns.

Answers: 200 for accepted, duplicate, unmatched or unsupported events (so providers stop
retrying); 400 for a malformed body (413 too large, 411 a body of unknown length the server
cannot read to its end); 429 when an account's refused requests exceed their budget; 404 for an
unknown token. Never a 500 for bad input.

A refused request is kept for diagnosis, but only its first 4 KiB with the SHA-256 and length of
the whole (anyone holding a token could otherwise grow the table without bound: 300 refused
bodies of 253 KiB added 80.8 MB in 5 s), and refused requests are counted per account: beyond
LOA_WEBHOOK_REFUSED_LIMIT in LOA_WEBHOOK_REFUSED_WINDOW seconds they are answered 429 with
Retry-After and not stored. Accepted callbacks are never counted nor limited.

The applier (webhooks.applier) and the replies (webhooks.inbound) live in their own modules.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
from dataclasses import dataclass
from urllib.parse import parse_qsl

from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, transaction
from django.utils import timezone

from config.security import cache_call, cache_incr
from providers.base import WebhookRejected, WebhookRequest
from providers.models import ProviderAccount
from providers.sandbox.outbox import SandboxCallback
from webhooks import intake
from webhooks.models import WebhookEvent
from webhooks.parse import callback_parse

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
# What a refused request keeps of its body and of its query string (module docstring).
REFUSED_KEEP = 4096


@dataclass
class Answer:
    status: int
    outcome: str
    detail: str = ""
    retry_after: int = 0  # seconds, for a 429

    def payload(self) -> dict[str, str]:
        """The JSON body, the same from the view and from the WSGI fast path."""
        body = {"status": self.outcome}
        if self.status >= 400:
            body["error"] = self.detail
        return body

    def headers(self) -> list[tuple[str, str]]:
        return [("Retry-After", str(self.retry_after))] if self.retry_after else []


class BodyUnreadable(Exception):
    """A request body whose end cannot be found: no Content-Length, and a server that does not
    say it ends the input stream itself (wsgi.input_terminated)."""


def body_read(environ: dict, *, limit: int = MAX_BODY) -> bytes:
    """The request body from a WSGI environ, up to `limit` + 1 bytes (one more than allowed, so
    the caller sees that it is too large). A chunked body (Transfer-Encoding, no Content-Length)
    is read to its end when the server de-chunks and terminates the stream (gunicorn, granian:
    wsgi.input_terminated); otherwise BodyUnreadable (answered 411, so the provider retries with
    a length). Used by the fast path and by the Django view: Django reads no chunked body."""
    stream = environ["wsgi.input"]
    length = environ.get("CONTENT_LENGTH") or ""
    if length.isdigit():
        n = int(length)
        return stream.read(min(n, limit + 1)) if n else b""
    if not environ.get("HTTP_TRANSFER_ENCODING"):
        return b""
    if not environ.get("wsgi.input_terminated"):
        raise BodyUnreadable
    out = bytearray()
    while len(out) <= limit:
        chunk = stream.read(min(65536, limit + 1 - len(out)))
        if not chunk:
            break
        out += chunk
    return bytes(out)


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

    The request path does the least that keeps the promise: parse and check (pure Python, to
    refuse a malformed body with 400 and to get the dedupe key) and one row written through the
    group commit (webhooks.intake), which shares the INSERT and the COMMIT with concurrent
    callbacks. Duplicates are recognized by the unique (account, dedupe_key) and stored too,
    marked as such. `query_string` is the request's raw query string (as in the WSGI environ),
    stored as it came.
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
        return _refuse(raw, body, 413, f"Body larger than {MAX_BODY // 1024} KiB")
    # PostgreSQL text cannot hold NUL: keep a visible replacement instead of failing the insert.
    raw["body"] = _text(body)
    try:
        # Last value wins for a repeated name, as Django's request.GET.get does.
        query = dict(
            parse_qsl(query_string, keep_blank_values=True, errors="replace", max_num_fields=1000)
        )
    except ValueError:
        return _refuse(raw, body, 400, "Too many query parameters")
    request = WebhookRequest(method=method, query=query, body=body, headers=kept)
    try:
        parsed, _notes = callback_parse(account, request)
    except WebhookRejected as exc:
        return _refuse(raw, body, exc.status, str(exc))
    except Exception as exc:  # a parser bug must not become a 500 the provider retries forever
        logger.exception("webhook parser of %s crashed", account.kind)
        answer = _refuse(raw, body, 400, f"Parser error: {type(exc).__name__}")
        if answer.status == 429:
            return answer
        return Answer(400, OUT.REJECTED, "Could not parse the callback")

    _touch_account(account)
    raw["dedupe_key"] = (parsed.dedupe_key or "")[:120]
    if not intake.writer.store(raw):
        return Answer(200, OUT.DUPLICATE)
    _trigger_applier()
    return Answer(200, OUT.RECEIVED)


def _text(body: bytes) -> str:
    return body.decode("utf-8", errors="replace").replace("\x00", "\ufffd")


def _refuse(raw: dict, body: bytes, status: int, detail: str) -> Answer:
    """Keep a refused request too (the log shows what was wrong with it), capped, within the
    account's budget of refused requests (module docstring), and answer."""
    wait = _refused_over_budget(raw["account_id"])
    if wait:
        return Answer(429, "throttled", "Too many refused callbacks; retry later", retry_after=wait)
    if len(body) > REFUSED_KEEP or len(raw["query"]) > REFUSED_KEEP:
        digest = hashlib.sha256(body).hexdigest()
        raw["body"] = _text(body[:REFUSED_KEEP])
        raw["query"] = raw["query"][:REFUSED_KEEP]
        # A chunked body is read no further than one byte over the limit (body_read).
        size = f"{len(body):,} bytes"
        if len(body) == MAX_BODY + 1:
            size = f"more than {MAX_BODY:,} bytes (hashed: the first {len(body):,})"
        kept = f" [body: {size}, SHA-256 {digest}; the first {REFUSED_KEEP:,} bytes kept]"
        detail = detail[: 500 - len(kept)] + kept
    raw.update(outcome=OUT.REJECTED, outcome_detail=detail[:500], processed_at=timezone.now())
    intake.writer.store(raw)
    return Answer(status, OUT.REJECTED, detail)


def _refused_over_budget(account_id: int) -> int:
    """Count one refused request of this account; the seconds to wait if over the budget."""
    limit = int(getattr(settings, "LOA_WEBHOOK_REFUSED_LIMIT", 60))
    window = int(getattr(settings, "LOA_WEBHOOK_REFUSED_WINDOW", 600))
    if limit <= 0:
        return 0
    key = f"loa:wh-refused:{account_id}"
    cache_call(lambda: cache.add(f"{key}:until", time.time() + window, window), None)
    count = cache_call(lambda: cache_incr(key, window), 0)
    if count <= limit:
        return 0
    until = cache_call(lambda: cache.get(f"{key}:until"), None) or time.time() + window
    if count == limit + 1:
        logger.warning(
            "webhook account %s: %s refused callbacks within %s s; answering 429",
            account_id,
            count,
            window,
        )
    return max(1, int(float(until) - time.time() + 0.999))


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
