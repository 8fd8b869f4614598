"""Campaign services: lifecycle transitions, materialization, the send driver, status application.

Correctness never comes from the queue (django-q2 redelivers tasks): it comes from each message's
own state. A message is claimed (pending -> sending) and the claim committed before any HTTP call;
results are written back only onto rows still in `sending`; statuses only move forward; counters
move with F() expressions in the same transaction as the row they count.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from campaigns.bulk import rows_bulk_set, rows_insert
from campaigns.models import (
    Campaign,
    CampaignEvent,
    Contact,
    ContactListMembership,
    Message,
    MessageAttempt,
    OptOut,
)
from campaigns.notes import Note
from campaigns.notes import split as split_note
from providers.base import (
    BaseProvider,
    ErrorClass,
    EventStatus,
    OutboundMessage,
    SendOutcome,
    SendResult,
    StatusEvent,
)
from providers.redact import redact_text
from templates_app.rendering import ContactData, render_params

logger = logging.getLogger("loa.engine")

S = Message.Status
# Forward order of the delivery path; failed/skipped/cancelled are terminal beside it.
RANK = {S.PENDING: 0, S.SENDING: 1, S.UNKNOWN: 2, S.SENT: 3, S.DELIVERED: 4, S.READ: 5}
TERMINAL = {S.FAILED, S.SKIPPED, S.CANCELLED, S.READ}
# Counters are "reached" counts: a read message counts as sent, delivered and read.
REACHED = [(S.SENT, "sent_count"), (S.DELIVERED, "delivered_count"), (S.READ, "read_count")]
MAX_RETRIES = 5


# ---- lifecycle ---------------------------------------------------------------------------------

ALLOWED = {
    Campaign.Status.DRAFT: {
        Campaign.Status.SCHEDULED,
        Campaign.Status.RUNNING,
        Campaign.Status.CANCELLED,
    },
    Campaign.Status.SCHEDULED: {
        Campaign.Status.RUNNING,
        Campaign.Status.DRAFT,
        Campaign.Status.CANCELLED,
    },
    Campaign.Status.RUNNING: {
        Campaign.Status.PAUSED,
        Campaign.Status.COMPLETED,
        Campaign.Status.CANCELLED,
        Campaign.Status.FAILED,
    },
    Campaign.Status.PAUSED: {Campaign.Status.RUNNING, Campaign.Status.CANCELLED},
    # only reconciliation reopens a finished campaign (to resend rows a provider dedupes)
    Campaign.Status.COMPLETED: {Campaign.Status.RUNNING},
    Campaign.Status.CANCELLED: set(),
    Campaign.Status.FAILED: {Campaign.Status.RUNNING, Campaign.Status.CANCELLED},
}


def campaign_transition(
    *, campaign_id: int, to: str, user=None, note: str | Note = "", expect: set | None = None
) -> bool:
    """Move a campaign to `to` if its current status allows it (compare-and-set); log history.
    A Note is stored so that each reader sees it in their language; a plain string (what a
    person typed) as it is."""
    text, stored = split_note(note)
    with transaction.atomic():
        current = Campaign.objects.filter(pk=campaign_id).values_list("status", flat=True).first()
        if current is None or to not in ALLOWED.get(current, set()):
            return False
        if expect is not None and current not in expect:
            return False
        fields = {"status": to, "updated_at": timezone.now()}
        if to == Campaign.Status.RUNNING:
            fields["status_reason"], fields["status_reason_i18n"] = "", {}
        if to in (Campaign.Status.COMPLETED, Campaign.Status.CANCELLED, Campaign.Status.FAILED):
            fields["finished_at"] = timezone.now()
        if to == Campaign.Status.PAUSED or to == Campaign.Status.FAILED:
            fields["status_reason"], fields["status_reason_i18n"] = text, stored
        if not Campaign.objects.filter(pk=campaign_id, status=current).update(**fields):
            return False
        CampaignEvent.objects.create(
            campaign_id=campaign_id,
            from_status=current,
            to_status=to,
            note=text,
            note_i18n=stored,
            user=user if getattr(user, "pk", None) else None,
        )
    return True


def campaign_check_sendable(campaign: Campaign) -> list[str]:
    """What stops this campaign from being sent, in words for the marketer."""
    from templates_app.models import Template
    from templates_app.rendering import validate_mapping

    errors = []
    if not campaign.channel.is_active or not campaign.channel.account.is_active:
        errors.append(_("The channel or its provider account is inactive."))
    if campaign.template_id is None and not campaign.content:
        errors.append(_("Choose a template (or write the content for free-text channels)."))
    if campaign.template_id is not None:
        if campaign.template.status != Template.Status.APPROVED:
            errors.append(_("The template is not approved."))
        errors += validate_mapping(
            campaign.param_mapping or {}, list(campaign.template.ordered_param_names())
        )
    if not campaign.lists.exists() and not campaign.segments.exists():
        errors.append(_("Choose at least one contact list or segment."))
    return errors


def campaign_send_now(*, campaign_id: int, user=None) -> int:
    """Draft/scheduled -> running: materialize messages, start the drivers. Returns recipients."""
    campaign = Campaign.objects.select_related("channel__account", "template").get(pk=campaign_id)
    errors = campaign_check_sendable(campaign)
    if errors:
        raise ValidationError(errors)
    if not campaign_transition(
        campaign_id=campaign_id,
        to=Campaign.Status.RUNNING,
        user=user,
        expect={Campaign.Status.DRAFT, Campaign.Status.SCHEDULED},
        note=Note(gettext_noop("Send started")),
    ):
        raise ValidationError(
            _("This campaign cannot be sent from its current status ({status}).").format(
                status=campaign.get_status_display()
            )
        )
    Campaign.objects.filter(pk=campaign_id, started_at__isnull=True).update(
        started_at=timezone.now()
    )
    total = campaign_materialize(campaign_id=campaign_id)
    campaign_start_drivers(campaign_id=campaign_id)
    return total


def campaign_schedule(*, campaign_id: int, when: datetime, user=None) -> None:
    campaign = Campaign.objects.select_related("channel__account", "template").get(pk=campaign_id)
    errors = campaign_check_sendable(campaign)
    if errors:
        raise ValidationError(errors)
    Campaign.objects.filter(pk=campaign_id).update(scheduled_at=when)
    if not campaign_transition(
        campaign_id=campaign_id,
        to=Campaign.Status.SCHEDULED,
        user=user,
        note=Note(
            gettext_noop("Scheduled for {when}"),
            when=timezone.localtime(when).strftime("%d/%m/%Y %H:%M"),
        ),
    ):
        raise ValidationError(_("This campaign cannot be scheduled from its current status."))


def campaign_pause(*, campaign_id: int, user=None, reason: str = "") -> bool:
    return campaign_transition(
        campaign_id=campaign_id,
        to=Campaign.Status.PAUSED,
        user=user,
        note=reason or Note(gettext_noop("Paused by a user")),
    )


def campaign_resume(*, campaign_id: int, user=None) -> bool:
    ok = campaign_transition(
        campaign_id=campaign_id,
        to=Campaign.Status.RUNNING,
        user=user,
        note=Note(gettext_noop("Resumed")),
        expect={Campaign.Status.PAUSED, Campaign.Status.FAILED},
    )
    if ok:
        campaign_start_drivers(campaign_id=campaign_id)
    return ok


def campaign_cancel(*, campaign_id: int, user=None) -> int:
    """End a campaign: every message not yet handed to the provider is cancelled."""
    if not campaign_transition(
        campaign_id=campaign_id,
        to=Campaign.Status.CANCELLED,
        user=user,
        note=Note(gettext_noop("Cancelled")),
    ):
        return -1
    return Message.objects.filter(campaign_id=campaign_id, status=S.PENDING).update(
        status=S.CANCELLED, updated_at=timezone.now()
    )


# ---- materialization ---------------------------------------------------------------------------


def idempotency_key(campaign: Campaign, contact_id: int) -> str:
    """Deterministic per (campaign, contact), alphanumeric (Zalo tracking_id: <=48 chars, no special
    characters), and unique across database resets thanks to the campaign's creation time."""
    stamp = int(campaign.created_at.timestamp())
    return f"loa{campaign.pk}t{_b36(stamp)}c{contact_id}"


# At most 18 digits an id: whatever a callback quotes, the ids fit a bigint (no overflow error).
_KEY_RE = re.compile(r"loa([0-9]{1,18})t[0-9a-z]{1,13}c([0-9]{1,18})")


def idempotency_key_parse(key: str) -> tuple[int, int] | None:
    """(campaign id, contact id) from a key made by idempotency_key(), else None.

    The key has no index of its own: it is unique because (campaign, contact) is, and a lookup by
    key goes through that unique index (one btree less to fill for each materialized message)."""
    m = _KEY_RE.fullmatch(key or "")
    return (int(m[1]), int(m[2])) if m else None


def _b36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while n:
        n, r = divmod(n, 36)
        out = digits[r] + out
    return out or "0"


def audience_queryset(campaign: Campaign):
    """Contacts in the campaign's lists or segments, minus those opted out of its channel kind
    (or of all channels). Built from pk__in subqueries, so no DISTINCT is needed."""
    from campaigns.contacts import segment_queryset
    from campaigns.models import ContactListMembership

    kind = campaign.channel.kind
    opted = OptOut.objects.filter(channel_kind__in=[kind, OptOut.ALL]).values("contact_id")
    who = Q(
        pk__in=ContactListMembership.objects.filter(contact_list__campaigns=campaign).values(
            "contact_id"
        )
    )
    for segment in campaign.segments.all():
        who |= Q(pk__in=segment_queryset(segment).values("pk"))
    return Contact.objects.filter(who).exclude(pk__in=opted)


def audience_all_queryset(campaign: Campaign):
    """Everyone the campaign targets, opted out or not (for the pre-flight's "excluded")."""
    from campaigns.contacts import segment_queryset
    from campaigns.models import ContactListMembership

    who = Q(
        pk__in=ContactListMembership.objects.filter(contact_list__campaigns=campaign).values(
            "contact_id"
        )
    )
    for segment in campaign.segments.all():
        who |= Q(pk__in=segment_queryset(segment).values("pk"))
    return Contact.objects.filter(who)


# Formats the database can apply itself; any other format renders in Python.
_SQL_FORMATS = {"", None, "upper"}


def _sql_expression(spec: dict):
    """The SQL twin of templates_app.rendering.resolve for simple specs, or None."""
    from django.db.models import CharField, Value
    from django.db.models.fields.json import KeyTextTransform
    from django.db.models.functions import Cast, Coalesce, Trim, Upper

    source, value, fmt = spec.get("source"), spec.get("value", ""), spec.get("format", "")
    if fmt not in _SQL_FORMATS:
        return None
    if source == "field" and value in ("name", "phone"):
        expr = Trim(F(value))
    elif source == "attribute" and isinstance(value, str) and value:
        expr = Trim(Coalesce(Cast(KeyTextTransform(value, "attributes"), CharField()), Value("")))
    elif source == "constant":
        expr = Value(str(value if value is not None else "").strip())
    else:
        return None
    return Upper(expr) if fmt == "upper" else expr


def _materialize_sql(campaign: Campaign, audience, *, first_build: bool = False) -> int | None:
    """INSERT ... SELECT in one statement when every parameter maps to plain SQL."""
    from django.db.models import CharField, DateTimeField, IntegerField, Value
    from django.db.models.functions import Cast, Concat, JSONObject

    mapping = campaign.param_mapping or {}
    exprs = {}
    for name, spec in mapping.items():
        expr = _sql_expression(spec or {})
        if expr is None:
            return None
        exprs[name] = expr
    now = timezone.now()
    prefix = idempotency_key(campaign, 0)[:-1]  # "loa{id}t{stamp}c"
    data = JSONObject(**exprs) if exprs else Value("{}")
    select = (
        audience.order_by()
        .annotate(
            _cid=Value(campaign.pk, output_field=IntegerField()),
            _key=Concat(Value(prefix), Cast("pk", CharField()), output_field=CharField()),
            _data=data,
            _status=Value(S.PENDING),
            _blank=Value(""),
            _zero=Value(0, output_field=IntegerField()),
            _now=Value(now, output_field=DateTimeField()),
        )
        .values_list(
            "_cid",
            "pk",
            "phone",
            "_key",
            "_data",
            "_status",
            "_blank",
            "_blank",
            "_blank",
            "_blank",
            "_zero",
            "_now",
            "_now",
        )
    )
    sql, params = select.query.sql_with_params()
    table = Message._meta.db_table
    cols = (
        "campaign_id, contact_id, phone, idempotency_key, template_data, status, provider_message_id, "
        "error_class, error_code, error_message, attempts, created_at, updated_at"
    )
    # The first build of a campaign inserts plainly (ON CONFLICT's speculative insertion costs a
    # third more per row); a re-run keeps only what is missing. "WHERE true" keeps SQLite's parser
    # from reading ON CONFLICT as part of a join.
    if not first_build:
        where = "" if " WHERE " in sql else " WHERE true"
        sql = f"{sql}{where} ON CONFLICT DO NOTHING"
    with connection.cursor() as cur:
        cur.execute(f"INSERT INTO {table} ({cols}) {sql}", params)
        return cur.rowcount


def _prepare_bulk_read() -> None:
    """PostgreSQL: plan the audience query on fresh statistics, and give it memory.

    Right after a big import the planner still believes the contact and membership tables are
    small (autovacuum analyzes them a minute later), and chose a million index probes instead of
    one hash join: measured at 1,000,000 recipients, 47 s with stale statistics and the default
    4 MB work_mem (the de-duplication spilled to disk), 21 s after this. ANALYZE samples a few
    thousand pages, so it runs only when a tenth of a table changed since the last one."""
    if connection.vendor != "postgresql":
        return
    tables = [m._meta.db_table for m in (Contact, ContactListMembership)]
    with connection.cursor() as cur:
        cur.execute(
            "SELECT relname FROM pg_stat_user_tables WHERE relname = ANY(%s) "
            "AND (last_analyze IS NULL AND last_autoanalyze IS NULL "
            "OR n_mod_since_analyze > 0.1 * GREATEST(n_live_tup, 1000))",
            [tables],
        )
        for (table,) in cur.fetchall():
            cur.execute(f"ANALYZE {connection.ops.quote_name(table)}")
        mem = str(settings.LOA.get("MATERIALIZE_WORK_MEM") or "256MB")
        cur.execute("SELECT set_config('work_mem', %s, true)", [mem])


def campaign_materialize(*, campaign_id: int, chunk: int = 5000) -> int:
    """One Message per recipient, template data frozen now. Idempotent: re-running adds nothing
    that exists (unique (campaign, contact); ON CONFLICT DO NOTHING / ignore_conflicts).

    Set-based (one INSERT ... SELECT) when the mapping is plain fields/attributes/constants;
    otherwise rendered in Python in chunks with the same rules."""
    campaign = Campaign.objects.select_related("channel", "template").get(pk=campaign_id)
    audience = audience_queryset(campaign)
    with transaction.atomic():
        first_build = not Message.objects.filter(campaign_id=campaign_id).exists()
        _prepare_bulk_read()
        inserted = _materialize_sql(campaign, audience, first_build=first_build)
        if inserted is None:
            _materialize_python(campaign, audience, chunk)
        # A first set-based build inserted every row it reports (no conflict clause); a re-run
        # or the Python path counts what is there (a million rows: a second more).
        if first_build and inserted is not None:
            total = inserted
        else:
            total = Message.objects.filter(campaign_id=campaign_id).count()
        # Nobody opted out of this channel: nobody was left out, no second pass over the lists.
        kinds = [campaign.channel.kind, OptOut.ALL]
        if OptOut.objects.filter(channel_kind__in=kinds).exists():
            everyone = audience_all_queryset(campaign).count()
        else:
            everyone = total
    excluded = {"opted_out": max(0, everyone - total)}
    Campaign.objects.filter(pk=campaign_id).update(total_count=total, excluded=excluded)
    return total


def _materialize_python(campaign: Campaign, audience, chunk: int) -> None:
    mapping = campaign.param_mapping or {}
    qs = audience.order_by("pk").values_list("pk", "phone", "name", "attributes")
    batch: list[Message] = []
    for pk, phone, name, attributes in qs.iterator(chunk_size=chunk):
        data = render_params(
            mapping, ContactData(phone=phone, name=name, attributes=attributes or {})
        )
        batch.append(
            Message(
                campaign_id=campaign.pk,
                contact_id=pk,
                phone=phone,
                template_data=data,
                idempotency_key=idempotency_key(campaign, pk),
            )
        )
        if len(batch) >= chunk:
            Message.objects.bulk_create(batch, ignore_conflicts=True)
            batch = []
    if batch:
        Message.objects.bulk_create(batch, ignore_conflicts=True)


# ---- leases ------------------------------------------------------------------------------------


def lease_acquire(name: str, seconds: float) -> str | None:
    """Take a named lock for `seconds` if it is free or expired; returns a holder token."""
    import uuid

    from campaigns.models import Lease

    holder = uuid.uuid4().hex
    now = timezone.now()
    Lease.objects.get_or_create(name=name, defaults={"until": now - timedelta(seconds=1)})
    got = Lease.objects.filter(name=name, until__lt=now).update(
        holder=holder, until=now + timedelta(seconds=seconds)
    )
    return holder if got else None


def lease_renew(name: str, holder: str, seconds: float) -> bool:
    from campaigns.models import Lease

    return bool(
        Lease.objects.filter(name=name, holder=holder).update(
            until=timezone.now() + timedelta(seconds=seconds)
        )
    )


def lease_release(name: str, holder: str) -> None:
    from campaigns.models import Lease

    Lease.objects.filter(name=name, holder=holder).update(
        until=timezone.now() - timedelta(seconds=1)
    )


# ---- quiet hours and frequency cap -------------------------------------------------------------


def _is_promotion(campaign: Campaign) -> bool:
    from templates_app.models import Template

    return bool(campaign.template_id and campaign.template.tag == Template.Tag.PROMOTION)


def quiet_window() -> tuple[int, int]:
    """Allowed local hours for promotion messages, e.g. "07:00-22:00" (Decree 91/2020)."""
    text = settings.LOA.get("QUIET_HOURS", "07:00-22:00")
    start, end = text.split("-")
    return int(start.split(":")[0]) * 60 + int(start.split(":")[1]), int(
        end.split(":")[0]
    ) * 60 + int(end.split(":")[1])


def promotion_allowed_at(now: datetime | None = None) -> tuple[bool, datetime]:
    """Is a promotion message allowed now, and if not, when does the window open?"""
    local = timezone.localtime(now or timezone.now())
    start, end = quiet_window()
    minute = local.hour * 60 + local.minute
    if start <= minute < end:
        return True, local
    opens = local.replace(hour=start // 60, minute=start % 60, second=0, microsecond=0)
    if minute >= end:
        opens += timedelta(days=1)
    return False, opens


def _frequency_capped(contact_ids: list[int], campaign_id: int, now: datetime) -> set[int]:
    """Contacts who already got the maximum promotion messages today / this week (Decree 91)."""
    from django.db.models import Count

    from templates_app.models import Template

    caps = [
        (settings.LOA.get("FREQUENCY_CAP_DAY", 0), timedelta(days=1)),
        (settings.LOA.get("FREQUENCY_CAP_WEEK", 0), timedelta(days=7)),
    ]
    capped: set[int] = set()
    for cap, window in caps:
        if not cap:
            continue
        rows = (
            Message.objects.filter(
                contact_id__in=contact_ids,
                sent_at__gte=now - window,
                campaign__template__tag=Template.Tag.PROMOTION,
            )
            .exclude(campaign_id=campaign_id)
            .values("contact_id")
            .annotate(n=Count("id"))
            .filter(n__gte=cap)
        )
        capped |= {r["contact_id"] for r in rows}
    return capped


# ---- the driver --------------------------------------------------------------------------------


def _driver_count(campaign: Campaign) -> int:
    """Unlimited campaigns run several drivers; a rate-limited one runs exactly one (held by a
    lease), which paces every send itself, so the rate is exact and never exceeded."""
    if campaign.rate_limit or campaign.channel.account.rate_limit:
        return 1
    return max(1, int(settings.LOA["DRIVERS_PER_CAMPAIGN"]))


def campaign_start_drivers(*, campaign_id: int) -> None:
    from django_q.tasks import async_task

    campaign = Campaign.objects.select_related("channel__account").get(pk=campaign_id)
    for _i in range(_driver_count(campaign)):
        # on_commit: a driver must never start before the rows it will claim are visible.
        transaction.on_commit(
            lambda: async_task(
                "campaigns.tasks.campaign_drive_task", campaign_id, group=f"campaign-{campaign_id}"
            )
        )


def messages_claim(
    *, campaign_id: int, limit: int, kind: str, promotion: bool = False
) -> list[Message]:
    """Claim up to `limit` due pending messages (pending -> sending) and commit the claim.

    PostgreSQL: SELECT ... FOR UPDATE SKIP LOCKED lets several drivers claim disjoint batches.
    SQLite: the settings open every transaction with BEGIN IMMEDIATE, so the select+update below
    runs under the database's single write lock, which is the same guarantee.
    Opt-outs are re-checked here, at send time: a contact who opted out after the campaign was
    built is skipped, not sent.
    """
    now = timezone.now()
    with transaction.atomic():
        qs = Message.objects.filter(campaign_id=campaign_id, status=S.PENDING).filter(
            Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
        )
        if connection.features.has_select_for_update_skip_locked:
            qs = qs.select_for_update(skip_locked=True)
        ids = list(qs.order_by("id").values_list("id", flat=True)[:limit])
        if not ids:
            return []
        opted = set(
            Message.objects.filter(
                pk__in=ids,
                contact__opt_outs__channel_kind__in=[kind, OptOut.ALL],
            ).values_list("id", flat=True)
        )
        if opted:
            n = Message.objects.filter(pk__in=opted, status=S.PENDING).update(
                status=S.SKIPPED,
                error_code="opted_out",
                error_message=_("The contact opted out of this channel."),
                updated_at=now,
            )
            Campaign.objects.filter(pk=campaign_id).update(skipped_count=F("skipped_count") + n)
        claim = [i for i in ids if i not in opted]
        if promotion and claim:
            # Frequency cap across campaigns, checked when sending (not only when building).
            contact_of = dict(Message.objects.filter(pk__in=claim).values_list("pk", "contact_id"))
            capped_contacts = _frequency_capped(list(contact_of.values()), campaign_id, now)
            capped = [i for i in claim if contact_of[i] in capped_contacts]
            if capped:
                n = Message.objects.filter(pk__in=capped, status=S.PENDING).update(
                    status=S.SKIPPED,
                    error_code="frequency_cap",
                    error_message=_("The contact already got the most promotion messages allowed."),
                    updated_at=now,
                )
                Campaign.objects.filter(pk=campaign_id).update(skipped_count=F("skipped_count") + n)
                claim = [i for i in claim if i not in set(capped)]
        if claim:
            Message.objects.filter(pk__in=claim).update(
                status=S.SENDING, claimed_at=now, attempts=F("attempts") + 1, updated_at=now
            )
    if not claim:
        return []
    return list(Message.objects.filter(pk__in=claim, status=S.SENDING).only(*_CLAIMED_FIELDS))


# What sending reads of a claimed message (the rest is written, never read: loading all 23
# columns into model instances was a tenth of a driver's CPU).
_CLAIMED_FIELDS = (
    "id",
    "campaign_id",
    "contact_id",
    "phone",
    "template_data",
    "idempotency_key",
    "status",
    "attempts",
    "sent_at",
)


@dataclass
class BatchOutcome:
    sent: int = 0
    failed: int = 0
    unknown: int = 0
    retry: int = 0
    config_error: str = ""
    deferred_until: datetime | None = None
    deferred_reason: str = ""


class RatePacer:
    """Paces one driver's send starts at `rate`: the k-th send is due at t0 + k/rate. Sends that
    fell behind that schedule (batch writes between rounds, a driver restart) catch up at up to
    1.25 x rate, and no 10-second window ever holds more than 10 x rate sends (the promise).
    Thread-safe: the send pool's threads share it. `recent` are the wall-clock times of this
    campaign's sends in the last window, so a restarted driver continues the same schedule."""

    WINDOW = 10.0
    CATCH_UP = 1.25

    def __init__(self, rate: float | None, recent: list[float] | tuple = ()):
        self.rate = rate if rate and rate > 0 else 0.0
        self.cap = max(1, int(self.rate * self.WINDOW))
        self.gap = 1.0 / (self.rate * self.CATCH_UP) if self.rate else 0.0
        self.sent: deque[float] = deque(sorted(recent)[-self.cap :], maxlen=self.cap)
        now = time.time()
        # as if the recent sends had been on schedule, ending now
        self.t0 = now - len(self.sent) / self.rate if self.rate else now
        self.count = len(self.sent)
        self.next_at = now
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self.rate:
            return
        with self._lock:
            now = time.time()
            slot = max(now, self.next_at, self.t0 + self.count / self.rate)
            if len(self.sent) >= self.cap:
                # the cap-th most recent send must be a full window older than this one (plus
                # a margin: a thread may start a little after its slot, never before)
                slot = max(slot, self.sent[0] + self.WINDOW + 0.05)
            self.sent.append(slot)
            self.count += 1
            self.next_at = slot + self.gap
        if slot > now:
            time.sleep(slot - now)


def _outbound(
    campaign: Campaign, message: Message, param_order: tuple[str, ...]
) -> OutboundMessage:
    channel = campaign.channel
    content, subject = campaign.content, ""
    if content:
        # Free-content channels (SMS, Viber, email): placeholders filled per recipient from the
        # same frozen data; email HTML sanitized (templates_app.content).
        from templates_app.content import render_content

        template = campaign.template
        rendered = render_content(
            channel_kind=channel.kind,
            body=content,
            data=message.template_data or {},
            subject=getattr(template, "subject", "") if template else "",
            strip_diacritics=bool(getattr(template, "strip_diacritics", False))
            if template
            else False,
        )
        content, subject = (
            (rendered.html or rendered.text) if channel.kind == "email" else rendered.text,
            rendered.subject,
        )
    return OutboundMessage(
        idempotency_key=message.idempotency_key,
        phone=message.phone,
        template_id=campaign.template.provider_template_id if campaign.template_id else "",
        template_data=message.template_data or {},
        param_order=param_order,
        channel_kind=channel.kind,
        oa_id=channel.official_account.oa_id if channel.official_account_id else "",
        channel_external_id=channel.external_id,
        test_mode=campaign.test_mode,
        content=content,
        subject=subject,
    )


def messages_send_batch(
    *,
    campaign: Campaign,
    provider: BaseProvider,
    messages: list[Message],
    pacer: RatePacer | None = None,
    pool: ThreadPoolExecutor | None = None,
) -> BatchOutcome:
    """Send claimed messages concurrently, then write every result in bulk. A driver passes its
    own `pool`, kept for all its batches (starting and joining 40 threads per batch of 400 was
    a twentieth of its CPU)."""
    param_order = campaign.template.ordered_param_names() if campaign.template_id else ()

    secrets = provider.secret_values()

    def one(msg: Message) -> tuple[Message, SendResult, object]:
        if pacer:
            pacer.wait()
        msg.sent_at = timezone.now()  # when the request left, for rate accounting and the charts
        try:
            result = provider.send(_outbound(campaign, msg, param_order))
        except Exception as exc:  # a bug in an adapter must not lose the claim: reconcile it
            logger.exception("provider %s crashed on message %s", provider.kind, msg.pk)
            result = SendResult.failed(ErrorClass.AMBIGUOUS, "adapter_error", str(exc)[:300])
        if result.error_message:
            # A provider may echo our credentials in its error text; it is stored and shown.
            result.error_message = redact_text(result.error_message, secrets)
        return msg, result, provider.pop_last_call()

    workers = max(1, int(settings.LOA["SEND_CONCURRENCY"]))
    if len(messages) == 1 or workers == 1:
        results = [one(m) for m in messages]
    elif pool is not None:
        results = list(pool.map(one, messages))
    else:
        with ThreadPoolExecutor(max_workers=min(workers, len(messages))) as own:
            results = list(own.map(one, messages))
    outcome = messages_record_results(campaign_id=campaign.pk, results=results)
    provider.after_batch()
    return outcome


def messages_record_results(
    *, campaign_id: int, results: list[tuple[Message, SendResult, object]]
) -> BatchOutcome:
    now = timezone.now()
    out = BatchOutcome()
    accepted, failed, unknown, retry = [], [], [], []
    attempts = []
    for msg, res, call in results:
        if call is not None:
            attempts.append(
                {
                    "message_id": msg.pk,
                    "status_code": call.status,
                    "duration_ms": call.duration_ms,
                    "request_body": call.request_body,
                    "response_body": call.response_body,
                    "error_class": str(res.error_class or ""),
                    "error": (call.error or res.error_message)[:300],
                    "created_at": now,
                }
            )
        msg.error_class = str(res.error_class or "")
        msg.error_code = res.error_code
        msg.error_message = res.error_message[:500]
        if res.outcome == SendOutcome.ACCEPTED:
            msg.provider_message_id = res.provider_message_id
            msg.fee = res.fee
            msg.sent_at = msg.sent_at or now
            msg.error_class = msg.error_code = msg.error_message = ""
            accepted.append(msg)
        elif res.error_class == ErrorClass.PERMANENT:
            msg.failed_at = now
            failed.append(msg)
        elif res.error_class == ErrorClass.AMBIGUOUS:
            unknown.append(msg)
        else:  # retryable, deferred, configuration: back to pending, later
            if res.error_class == ErrorClass.CONFIGURATION:
                out.config_error = out.config_error or f"{res.error_code}: {res.error_message}"
                msg.next_attempt_at = None
            elif res.error_class == ErrorClass.DEFERRED:
                msg.next_attempt_at = _next_allowed_time(res.error_code, now)
                if out.deferred_until is None or msg.next_attempt_at > out.deferred_until:
                    out.deferred_until = msg.next_attempt_at
                    out.deferred_reason = res.error_message or res.error_code
            else:
                if msg.attempts >= MAX_RETRIES:
                    msg.failed_at = now
                    failed.append(msg)
                    continue
                backoff = res.retry_after or min(300, 2**msg.attempts * 5)
                msg.next_attempt_at = now + timedelta(seconds=backoff)
            retry.append(msg)

    with transaction.atomic():
        fees = Decimal(0)
        if accepted:
            # A callback may have overtaken us (sending -> delivered): only rows still in
            # `sending` become `sent`, and only those are counted here.
            out.sent = messages_bulk_set(
                [_with(m, status=S.SENT) for m in accepted],
                [
                    "status",
                    "provider_message_id",
                    "fee",
                    "sent_at",
                    "error_class",
                    "error_code",
                    "error_message",
                ],
                only_status=S.SENDING,
            )
            # Rows a callback already moved still need their provider id for later callbacks.
            if out.sent < len(accepted):
                messages_bulk_set(
                    accepted, ["provider_message_id"], only_blank="provider_message_id"
                )
            fees = sum((m.fee for m in accepted if m.fee), Decimal(0))
        if failed:
            out.failed = messages_bulk_set(
                [_with(m, status=S.FAILED) for m in failed],
                ["status", "error_class", "error_code", "error_message", "failed_at"],
                only_status=S.SENDING,
            )
        if unknown:
            out.unknown = messages_bulk_set(
                [_with(m, status=S.UNKNOWN) for m in unknown],
                ["status", "error_class", "error_code", "error_message"],
                only_status=S.SENDING,
            )
        if retry:
            out.retry = messages_bulk_set(
                [_with(m, status=S.PENDING) for m in retry],
                ["status", "error_class", "error_code", "error_message", "next_attempt_at"],
                only_status=S.SENDING,
            )
        if out.sent or out.failed or out.unknown or fees:
            Campaign.objects.filter(pk=campaign_id).update(
                sent_count=F("sent_count") + out.sent,
                failed_count=F("failed_count") + out.failed,
                unknown_count=F("unknown_count") + out.unknown,
                cost=F("cost") + fees,
                updated_at=now,
            )
        if attempts:
            rows_insert(MessageAttempt, attempts, _ATTEMPT_FIELDS)
    return out


_ATTEMPT_FIELDS = [f for f in MessageAttempt._meta.concrete_fields if not f.primary_key]


def messages_bulk_set(
    messages: list[Message],
    fields: list[str],
    *,
    only_status: str | None = None,
    only_blank: str | None = None,
) -> int:
    """Write per-row values of `fields` for many messages (campaigns.bulk.rows_bulk_set),
    guarded by the row's current status and/or a blank column."""
    table = connection.ops.quote_name(Message._meta.db_table)
    guard = ""
    guard_params: list = []
    if only_status is not None:
        guard += f" AND {table}.status = %s"
        guard_params.append(only_status)
    if only_blank is not None:
        guard += f" AND {table}.{connection.ops.quote_name(only_blank)} = ''"
    return rows_bulk_set(Message, messages, fields, guard=guard, guard_params=guard_params)


def _with(msg: Message, **fields) -> Message:
    for k, v in fields.items():
        setattr(msg, k, v)
    return msg


def _next_allowed_time(code: str, now: datetime) -> datetime:
    """Deferred errors: Zalo's night window (-133) reopens at 06:00 local; daily quotas (-144,
    -147, -160) reset at midnight local (we resume at 00:05 to be safe)."""
    local = timezone.localtime(now)
    if code == "-133":
        target = local.replace(hour=6, minute=0, second=0, microsecond=0)
        if target <= local:
            target += timedelta(days=1)
        return target
    if code in ("-144", "-147", "-160", "-1441"):
        return (local + timedelta(days=1)).replace(hour=0, minute=5, second=0, microsecond=0)
    return now + timedelta(minutes=15)


def campaign_drive(*, campaign_id: int, time_budget: float | None = None) -> str:
    """One driver run: claim, send, record, repeat until nothing is due or the budget is spent.
    Returns why it stopped: "done", "paused", "budget", "waiting", "quiet_hours", "deferred",
    "config_error", "failure_rate", "busy" (another driver holds the rate-limited campaign)."""
    budget = time_budget if time_budget is not None else settings.LOA["DRIVER_TIME_BUDGET"]
    started = time.monotonic()
    campaign = Campaign.objects.select_related(
        "channel__account", "channel__official_account", "template"
    ).get(pk=campaign_id)
    rates = [r for r in (campaign.rate_limit, campaign.channel.account.rate_limit) if r]
    lease_name = f"campaign-{campaign_id}"
    holder = None
    if rates:
        holder = lease_acquire(lease_name, budget + 30)
        if holder is None:
            return "busy"
    pacer = None
    if rates:
        recent = Message.objects.filter(
            campaign_id=campaign_id,
            sent_at__gte=timezone.now() - timedelta(seconds=RatePacer.WINDOW),
        ).values_list("sent_at", flat=True)
        pacer = RatePacer(min(rates), recent=[t.timestamp() for t in recent])
    batch_size = int(settings.LOA["SEND_BATCH_SIZE"])
    if pacer:  # a paced batch must finish well inside the budget
        batch_size = max(1, min(batch_size, int(min(rates) * 5) or 1))
    promotion = _is_promotion(campaign)
    provider = campaign.channel.account.get_provider()
    pool = ThreadPoolExecutor(max_workers=max(1, int(settings.LOA["SEND_CONCURRENCY"])))
    try:
        while True:
            status = (
                Campaign.objects.filter(pk=campaign_id).values_list("status", flat=True).first()
            )
            if status != Campaign.Status.RUNNING:
                return "paused"
            if promotion and not promotion_allowed_at()[0]:
                return "quiet_hours"  # the every-minute tick restarts it when the window opens
            if time.monotonic() - started > budget:
                if holder:
                    lease_release(lease_name, holder)
                    holder = None
                _requeue(campaign_id)
                return "budget"
            batch = messages_claim(
                campaign_id=campaign_id,
                limit=batch_size,
                kind=campaign.channel.kind,
                promotion=promotion,
            )
            if not batch:
                return "done" if campaign_maybe_complete(campaign_id=campaign_id) else "waiting"
            out = messages_send_batch(
                campaign=campaign, provider=provider, messages=batch, pacer=pacer, pool=pool
            )
            if out.config_error:
                campaign_transition(
                    campaign_id=campaign_id,
                    to=Campaign.Status.PAUSED,
                    note=Note(
                        gettext_noop("Paused: the provider refused the configuration ({error})."),
                        error=out.config_error,
                    ),
                )
                return "config_error"
            if out.deferred_until:
                # Quota or night window: every pending message waits, not just this batch's.
                Message.objects.filter(campaign_id=campaign_id, status=S.PENDING).filter(
                    Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lt=out.deferred_until)
                ).update(next_attempt_at=out.deferred_until)
                _set_reason(
                    campaign_id,
                    Note(
                        gettext_noop("Waiting until {when}: {why}"),
                        when=timezone.localtime(out.deferred_until).strftime("%d/%m/%Y %H:%M"),
                        why=out.deferred_reason,
                    ),
                )
                return "deferred"
            if campaign_check_failure_rate(campaign_id=campaign_id):
                return "failure_rate"
            if holder:
                lease_renew(lease_name, holder, budget + 30)
    finally:
        pool.shutdown(wait=True)
        provider.close()
        if holder:
            lease_release(lease_name, holder)


def campaign_check_failure_rate(*, campaign_id: int) -> bool:
    """Auto-pause early when too many messages fail (a wrong template or mapping burns quota)."""
    threshold = float(settings.LOA.get("FAILURE_PAUSE_RATE", 0.5))
    minimum = int(settings.LOA.get("FAILURE_PAUSE_MIN", 50))
    c = Campaign.objects.filter(pk=campaign_id).values("sent_count", "failed_count").first()
    handled = c["sent_count"] + c["failed_count"]
    if threshold <= 0 or handled < minimum or c["failed_count"] / handled < threshold:
        return False
    return campaign_transition(
        campaign_id=campaign_id,
        to=Campaign.Status.PAUSED,
        note=Note(
            gettext_noop(
                "Paused automatically: {failed} of {handled} messages failed (over {pct}%). "
                "Check the failures, then resume."
            ),
            failed=c["failed_count"],
            handled=handled,
            pct=int(threshold * 100),
        ),
    )


def _set_reason(campaign_id: int, note: str | Note) -> None:
    """Say why a campaign waits, without a transition (campaigns.notes for the language)."""
    text, stored = split_note(note)
    Campaign.objects.filter(pk=campaign_id).update(status_reason=text, status_reason_i18n=stored)


def _requeue(campaign_id: int) -> None:
    from django_q.tasks import async_task

    async_task("campaigns.tasks.campaign_drive_task", campaign_id, group=f"campaign-{campaign_id}")


def campaign_maybe_complete(*, campaign_id: int) -> bool:
    """Running -> completed once no message is pending or sending."""
    busy = Message.objects.filter(
        campaign_id=campaign_id, status__in=[S.PENDING, S.SENDING]
    ).exists()
    if busy:
        return False
    return campaign_transition(
        campaign_id=campaign_id,
        to=Campaign.Status.COMPLETED,
        note=Note(gettext_noop("Every message was handed to the provider")),
        expect={Campaign.Status.RUNNING},
    )


# ---- status application (webhooks and reconciliation) -----------------------------------------


def _decide(old: str, new: str) -> str | None:
    """The status a message moves to, or None if the event changes nothing."""
    if old in TERMINAL:
        return None
    if new == EventStatus.FAILED:
        # failed is final but never overwrites delivered or read
        return S.FAILED if old in (S.PENDING, S.SENDING, S.UNKNOWN, S.SENT) else None
    if new in (EventStatus.SENT, EventStatus.DELIVERED, EventStatus.READ):
        return new if RANK[new] > RANK.get(old, 99) else None
    return None


def _transition(
    old: str, event: StatusEvent, current_fee
) -> tuple[str | None, dict, dict, Decimal | None]:
    """What one event does to a message in status `old`: (new status or None, row fields,
    counter deltas, fee to record)."""
    new = _decide(old, event.status)
    fee = event.fee if (event.fee is not None and current_fee is None) else None
    fields: dict = {}
    counters: dict = {}
    if new is not None:
        at = event.occurred_at or timezone.now()
        fields["status"] = new
        if new == S.FAILED:
            fields.update(
                failed_at=at,
                error_code=event.error_code[:40],
                error_message=event.error_message[:500],
                error_class=ErrorClass.PERMANENT,
            )
            counters["failed_count"] = 1
        else:
            for level, counter in REACHED:
                if RANK[old] < RANK[level] <= RANK[new]:
                    counters[counter] = 1
                    fields[f"{level}_at"] = at
        if old == S.UNKNOWN:
            counters["unknown_count"] = -1
        if event.provider_message_id:
            fields["provider_message_id"] = event.provider_message_id[:100]
    if fee is not None:
        fields["fee"] = fee
    return new, fields, counters, fee


def messages_apply_events(*, items: list[tuple[int, StatusEvent]]) -> int:
    """Apply many (message id, event) pairs in one transaction; returns status changes made.

    The rows are locked first (FOR UPDATE on PostgreSQL, in id order so two appliers never
    deadlock each other; SQLite's BEGIN IMMEDIATE is a database lock), events are folded in
    arrival order in memory, then each changed row is written once and each campaign's counters
    move once, by F() expressions, in the same transaction. Monotonic by construction: a late or
    duplicate event decides nothing.
    """
    if not items:
        return 0
    ids = sorted({mid for mid, _e in items})
    changed = 0
    with transaction.atomic():
        qs = Message.objects.filter(pk__in=ids).order_by("pk")
        if connection.features.has_select_for_update:
            qs = qs.select_for_update()
        rows = {r["pk"]: r for r in qs.values("pk", "status", "fee", "campaign_id")}
        updates: dict[int, dict] = {}
        deltas: dict[int, dict] = {}
        for mid, event in items:
            row = rows.get(mid)
            if row is None:
                continue
            new, fields, counters, fee = _transition(row["status"], event, row["fee"])
            if not fields:
                continue
            if new is not None:
                row["status"] = new
                changed += 1
            if fee is not None:
                row["fee"] = fee
                counters = {**counters, "cost": fee}
            updates.setdefault(mid, {}).update(fields)
            d = deltas.setdefault(row["campaign_id"], {})
            for k, v in counters.items():
                d[k] = d.get(k, 0) + v
        now = timezone.now()
        # One statement per shape of change (delivered, read, failed, fee only, ...), not one
        # per message: a burst of receipts is a few statements.
        shapes: dict[tuple[str, ...], list[dict]] = {}
        for mid, fields in updates.items():
            shapes.setdefault(tuple(sorted(fields)), []).append(
                {"pk": mid, **fields, "updated_at": now}
            )
        for shape, objs in shapes.items():
            rows_bulk_set(Message, objs, [*shape, "updated_at"])
        for campaign_id, d in deltas.items():
            Campaign.objects.filter(pk=campaign_id).update(
                **{k: F(k) + v for k, v in d.items() if v}
            )
    return changed


def message_apply_event(*, message_id: int, event: StatusEvent) -> bool:
    """Apply one normalized status to one message, monotonically and exactly once."""
    return messages_apply_events(items=[(message_id, event)]) > 0


def messages_find(*, account_id: int, events: list[StatusEvent]) -> list[int | None]:
    """The message each event is about, within one provider account, in two queries."""
    keys = {e.idempotency_key for e in events if e.idempotency_key}
    pids = {e.provider_message_id for e in events if e.provider_message_id}
    scope = Message.objects.filter(campaign__channel__account_id=account_id)
    by_key = _messages_by_key(scope, keys)
    by_pid = (
        dict(scope.filter(provider_message_id__in=pids).values_list("provider_message_id", "id"))
        if pids
        else {}
    )
    return [by_key.get(e.idempotency_key) or by_pid.get(e.provider_message_id) for e in events]


def _messages_by_key(scope, keys: set[str]) -> dict[str, int]:
    """{key: message id} for the keys that are ours, through the (campaign, contact) index; the
    exact key is compared too (a campaign id reused after a database reset has another stamp)."""
    pairs = [p for p in map(idempotency_key_parse, keys) if p]
    if not pairs:
        return {}
    rows = scope.filter(
        campaign_id__in={c for c, _k in pairs}, contact_id__in={k for _c, k in pairs}
    ).values_list("idempotency_key", "id")
    return {key: mid for key, mid in rows if key in keys}


def message_find(
    *, account_id: int, provider_message_id: str = "", idempotency_key: str = ""
) -> int | None:
    """The message an event is about, within one provider account."""
    event = StatusEvent(
        status=EventStatus.UNKNOWN,
        provider_message_id=provider_message_id,
        idempotency_key=idempotency_key,
    )
    return messages_find(account_id=account_id, events=[event])[0]


# ---- housekeeping ------------------------------------------------------------------------------


def messages_reap_stuck(*, older_than: int | None = None) -> int:
    """Rows left in `sending` by a killed worker go to `unknown` (reconciliation), never back to
    pending: the provider may have received them."""
    seconds = older_than if older_than is not None else settings.LOA["STUCK_SENDING_SECONDS"]
    cutoff = timezone.now() - timedelta(seconds=seconds)
    total = 0
    stuck = (
        Message.objects.filter(status=S.SENDING, claimed_at__lt=cutoff)
        .values("campaign_id")
        .distinct()
        .values_list("campaign_id", flat=True)
    )
    for campaign_id in list(stuck):
        with transaction.atomic():
            n = Message.objects.filter(
                campaign_id=campaign_id, status=S.SENDING, claimed_at__lt=cutoff
            ).update(
                status=S.UNKNOWN,
                error_class=ErrorClass.AMBIGUOUS,
                error_code="stuck",
                error_message=_("A worker stopped while sending; checking with the provider."),
            )
            Campaign.objects.filter(pk=campaign_id).update(unknown_count=F("unknown_count") + n)
        total += n
    return total


def messages_reconcile(*, limit: int = 200) -> int:
    """Ask providers about messages whose outcome we do not know: every `unknown` one, and `sent`
    ones with no receipt after RECONCILE_AFTER_MINUTES (a callback may have been lost), each at
    most once per that interval. A provider that dedupes our idempotency key may simply be sent
    again; otherwise only the provider's answer moves the message."""
    now = timezone.now()
    after = timedelta(minutes=settings.LOA.get("RECONCILE_AFTER_MINUTES", 30))
    stale_sent = Q(status=S.SENT, sent_at__lt=now - after) & (
        Q(last_polled_at__isnull=True) | Q(last_polled_at__lt=now - after)
    )
    unknown = Q(status=S.UNKNOWN) & (
        Q(last_polled_at__isnull=True) | Q(last_polled_at__lt=now - timedelta(minutes=1))
    )
    rows = list(
        Message.objects.filter(unknown | stale_sent)
        .select_related("campaign__channel__account", "campaign__channel__official_account")
        .order_by("last_polled_at", "pk")[:limit]
    )
    if not rows:
        return 0
    Message.objects.filter(pk__in=[m.pk for m in rows]).update(last_polled_at=now)
    moved = 0
    providers: dict[int, BaseProvider] = {}
    resend_campaigns: set[int] = set()
    for msg in rows:
        account = msg.campaign.channel.account
        provider = providers.get(account.pk) or providers.setdefault(
            account.pk, account.get_provider()
        )
        channel = msg.campaign.channel
        try:
            event = provider.fetch_status(
                provider_message_id=msg.provider_message_id,
                idempotency_key=msg.idempotency_key,
                oa_id=channel.official_account.oa_id if channel.official_account_id else "",
            )
        except Exception as exc:  # reconciliation must go on with the next message
            logger.warning("status poll failed for message %s: %s", msg.pk, exc)
            event = None
        if event is not None and event.status != EventStatus.UNKNOWN:
            moved += int(message_apply_event(message_id=msg.pk, event=event))
        elif msg.status == S.UNKNOWN and _safe_to_resend(provider, msg, event, now):
            # Safe: the provider dedupes the key (eSMS 124) within its window, or it positively
            # has no record of the message (never arrived).
            with transaction.atomic():
                n = Message.objects.filter(pk=msg.pk, status=S.UNKNOWN).update(
                    status=S.PENDING, next_attempt_at=None
                )
                if n:
                    Campaign.objects.filter(pk=msg.campaign_id).update(
                        unknown_count=F("unknown_count") - 1
                    )
            moved += n
            resend_campaigns.add(msg.campaign_id)
    for p in providers.values():
        p.close()
    for campaign_id in resend_campaigns:
        # A finished campaign runs again just long enough to resend these rows.
        campaign_transition(
            campaign_id=campaign_id,
            to=Campaign.Status.RUNNING,
            expect={Campaign.Status.COMPLETED},
            note=Note(gettext_noop("Resending messages whose outcome was unknown")),
        )
        campaign_start_drivers(campaign_id=campaign_id)
    return moved


def _safe_to_resend(
    provider: BaseProvider, msg: Message, event: StatusEvent | None, now: datetime
) -> bool:
    first_try = msg.claimed_at or msg.created_at
    if (
        provider.dedupes_idempotency_key
        and (now - first_try).total_seconds() < provider.dedupe_window_seconds
    ):
        return True
    # "not_found" from the provider's status API, some minutes after the attempt: it never
    # arrived (a connect-level failure reported as a timeout, a request lost in a proxy).
    not_found_after = timedelta(minutes=settings.LOA.get("RESEND_NOT_FOUND_AFTER_MINUTES", 10))
    return bool(
        event is not None and event.error_code == "not_found" and now - first_try > not_found_after
    )


def campaigns_start_due(*, now: datetime | None = None) -> list[int]:
    """Start scheduled campaigns whose time has come; leave stale ones waiting for a human."""
    now = now or timezone.now()
    grace = timedelta(seconds=settings.LOA.get("SCHEDULE_GRACE_SECONDS", 3600))
    started = []
    for c in Campaign.objects.filter(status=Campaign.Status.SCHEDULED, scheduled_at__lte=now):
        if c.scheduled_at < now - grace:
            if not c.status_reason:
                _set_reason(
                    c.pk,
                    Note(
                        gettext_noop(
                            "The scheduled time passed more than the grace window ago; confirm to "
                            "send it now."
                        )
                    ),
                )
            continue
        try:
            campaign_send_now(campaign_id=c.pk)
            started.append(c.pk)
        except ValidationError as exc:
            _set_reason(c.pk, "; ".join(exc.messages))
    return started


def campaigns_kick_running(*, idle_seconds: float | None = None) -> int:
    """Restart drivers for running campaigns with due pending rows (after a restart or a deferral).

    Only campaigns whose drivers have been quiet for a while (every batch touches the campaign
    row's updated_at): a live driver re-enqueues itself, and kicking a busy campaign every minute
    would pile driver tasks in front of everything else in the queue. Extra drivers would still be
    harmless for correctness: claims are exclusive."""
    now = timezone.now()
    if idle_seconds is None:
        idle_seconds = settings.LOA["DRIVER_TIME_BUDGET"] + 30
    ids = list(
        Campaign.objects.filter(
            status=Campaign.Status.RUNNING, updated_at__lte=now - timedelta(seconds=idle_seconds)
        ).values_list("pk", flat=True)
    )
    kicked = 0
    for cid in ids:
        due = (
            Message.objects.filter(campaign_id=cid, status=S.PENDING)
            .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
            .exists()
        )
        if due:
            _requeue(cid)
            kicked += 1
        else:
            campaign_maybe_complete(campaign_id=cid)
    return kicked


# ---- contacts ----------------------------------------------------------------------------------


def contact_search_key(contact: Contact) -> str:
    """The folded name (phones are searched on the phone column, see importing)."""
    from campaigns.importing import contact_search_text

    return contact_search_text(contact.name)


def contact_import_enqueue(*, import_id: int) -> None:
    from django_q.tasks import async_task

    transaction.on_commit(
        lambda: async_task("campaigns.tasks.contact_import_task", import_id, group="imports")
    )
