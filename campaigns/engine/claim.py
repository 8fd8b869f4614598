"""Claiming: due pending messages become `sending`, and the claim is committed before any HTTP
call (a message is never sent by two drivers). Opt-outs and the promotion frequency cap are
checked here, at send time, not only when the campaign was built; so are the template, the
channel and the provider account, once per batch (campaign_send_blocker). Each claimed message
gets its MessageAttempt row, in flight, in the same commit: a worker killed during the call
leaves a visible trace of a call that may have happened."""

from __future__ import annotations

import json
from datetime import datetime

from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from campaigns.bulk import bulk_execute, rows_insert
from campaigns.engine.fallback import messages_skip_reached_earlier
from campaigns.engine.policy import contacts_frequency_capped
from campaigns.engine.signals import StatusChange, statuses_changed_announce
from campaigns.models import Campaign, Message, MessageAttempt, OptOut
from campaigns.notes import Note
from campaigns.privacy.selectors import advertising_consent_q
from templates_app.models import Template

S = Message.Status
# The statuses in which drivers send: running, and settling (resending what reconciliation proved
# never arrived, without reopening the campaign).
SENDING_STATUSES = (Campaign.Status.RUNNING, Campaign.Status.SETTLING)
_ATTEMPT_FIELDS = [f for f in MessageAttempt._meta.concrete_fields if not f.primary_key]


class ClaimedMessage:
    """A claimed message as the send path reads and writes it: the columns sending reads (from
    the claim's own UPDATE ... RETURNING), and the ones recording its result writes
    (campaigns.engine.results, through campaigns.bulk, which reads attributes by attname).
    Plain attributes, no model instance: building 400 Message instances a batch, and Django's
    field machinery behind them, was a tenth of a driver's CPU."""

    __slots__ = (
        "id",
        "campaign_id",
        "contact_id",
        "phone",
        "template_data",
        "idempotency_key",
        "status",
        "attempts",
        "sent_at",
        "attempt_id",
        "error_class",
        "error_code",
        "error_message",
        "provider_message_id",
        "fee",
        "failed_at",
        "next_attempt_at",
    )

    def __init__(
        self, id, campaign_id, contact_id, phone, template_data, idempotency_key, attempts
    ):
        self.id = id
        self.campaign_id = campaign_id
        self.contact_id = contact_id
        self.phone = phone
        self.template_data = template_data
        self.idempotency_key = idempotency_key
        self.status = S.SENDING
        self.attempts = attempts
        self.sent_at = None  # set when the request leaves (campaigns.engine.send)
        self.attempt_id = None
        self.error_class = self.error_code = self.error_message = ""
        self.provider_message_id = ""
        self.fee = self.failed_at = self.next_attempt_at = None

    @property
    def pk(self) -> int:
        return self.id


def campaign_send_blocker(*, campaign_id: int) -> tuple[str | None, Note | None]:
    """(the campaign's status, why it may not send now or None), in one query: a template that
    is no longer approved (disabled, deleted, rejected, back in review), a deactivated channel
    or provider account stops the sending at the next batch."""
    row = (
        Campaign.objects.filter(pk=campaign_id)
        .values(
            "status",
            "template_id",
            "template__status",
            "template__name",
            "channel__is_active",
            "channel__name",
            "channel__account__is_active",
            "channel__account__name",
        )
        .first()
    )
    if row is None:
        return None, None
    if row["template_id"] is not None and row["template__status"] != Template.Status.APPROVED:
        why = {
            Template.Status.DISABLED: gettext_noop(
                "Paused: the template “{name}” was disabled; nothing more is sent with it."
            ),
            Template.Status.DELETED: gettext_noop(
                "Paused: the template “{name}” was deleted; nothing more is sent with it."
            ),
        }.get(
            row["template__status"],
            gettext_noop(
                "Paused: the template “{name}” is no longer approved; nothing more is sent with it."
            ),
        )
        return row["status"], Note(why, name=row["template__name"])
    if not row["channel__is_active"]:
        return row["status"], Note(
            gettext_noop("Paused: the channel “{name}” was deactivated."),
            name=row["channel__name"],
        )
    if not row["channel__account__is_active"]:
        return row["status"], Note(
            gettext_noop("Paused: the provider account “{name}” was deactivated."),
            name=row["channel__account__name"],
        )
    return row["status"], None


def messages_claim(
    *,
    campaign_id: int,
    limit: int,
    kind: str,
    promotion: bool = False,
    record_attempts: bool = False,
    step: int = 0,
    requires_consent: bool = False,
) -> list[Message]:
    """Claim up to `limit` due pending messages (pending -> sending) and commit the claim, with
    an in-flight MessageAttempt row for each when `record_attempts` (providers that make HTTP
    calls); each returned message carries its row's id as `attempt_id`.

    PostgreSQL: SELECT ... FOR UPDATE SKIP LOCKED lets several drivers claim disjoint batches.
    SQLite: the settings open every transaction with BEGIN IMMEDIATE, so the select+update below
    runs under the database's single write lock, which is the same guarantee.
    Opt-outs are re-checked here, at send time: a contact who opted out after the campaign was
    built is skipped, not sent. `step` is the fallback step claimed (campaigns.engine.fallback),
    `kind` that step's channel kind: the opt-out checked is the step's own channel's. So is
    advertising consent with `requires_consent` (the campaign's setting, for the step's
    channel): a consent withdrawn since the build is honoured.
    """
    now = timezone.now()
    with transaction.atomic():
        qs = Message.objects.filter(campaign_id=campaign_id, status=S.PENDING, step=step).filter(
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
            _skip(campaign_id, opted, "opted_out", _("The contact opted out of this channel."), now)
        claim = [i for i in ids if i not in opted]
        if requires_consent and claim:
            unconsented = set(
                Message.objects.filter(pk__in=claim)
                .exclude(advertising_consent_q(channel_kind=kind, field="contact_id"))
                .values_list("id", flat=True)
            )
            if unconsented:
                _skip(
                    campaign_id,
                    unconsented,
                    "no_consent",
                    _("The contact has no advertising consent for this channel."),
                    now,
                )
                claim = [i for i in claim if i not in unconsented]
        if step and claim:
            # A fallback whose earlier step was delivered after all (a late receipt): not sent.
            reached = messages_skip_reached_earlier(message_ids=claim, step=step, now=now)
            if reached:
                Campaign.objects.filter(pk=campaign_id).update(
                    skipped_count=F("skipped_count") + len(reached)
                )
                claim = [i for i in claim if i not in reached]
        if promotion and claim:
            capped = _frequency_capped(campaign_id, claim, now)
            if capped:
                _skip(
                    campaign_id,
                    capped,
                    "frequency_cap",
                    _("The contact already got the most promotion messages allowed."),
                    now,
                )
                claim = [i for i in claim if i not in capped]
        if not claim:
            return []
        claimed = _mark_sending(claim, now)
        if record_attempts:
            attempt_of = _attempts_in_flight(claim, now)
            for msg in claimed:
                msg.attempt_id = attempt_of.get(msg.id)
    return claimed


def _mark_sending(ids: list[int], now: datetime) -> list[ClaimedMessage]:
    """pending -> sending for the rows locked above, in one statement that also returns what
    sending reads of them (no second SELECT). On PostgreSQL the ids travel as one array
    parameter (`= ANY(%s)`): the statement text is the same for every batch, so it is prepared
    once per connection instead of parsing 400 placeholders each time."""
    qn = connection.ops.quote_name
    table = qn(Message._meta.db_table)
    if connection.vendor == "postgresql":
        where, id_params = "id = ANY(%s)", [ids]
    else:
        where, id_params = f"id IN ({', '.join(['%s'] * len(ids))})", list(ids)
    sql = (
        f"UPDATE {table} SET status = %s, claimed_at = %s, attempts = attempts + 1, "
        f"updated_at = %s WHERE {where} RETURNING id, campaign_id, contact_id, phone, "
        "template_data, idempotency_key, attempts"
    )
    rows, _n = bulk_execute(connection, sql, [S.SENDING.value, now, now, *id_params], fetch=True)
    claimed = []
    for mid, campaign_id, contact_id, phone, data, key, attempts in rows:
        if isinstance(data, str | bytes):  # jsonb and SQLite's JSON arrive as text
            data = json.loads(data)
        claimed.append(
            ClaimedMessage(mid, campaign_id, contact_id, phone, data or {}, key, attempts)
        )
    claimed.sort(key=lambda m: m.id)
    return claimed


def _attempts_in_flight(message_ids: list[int], now: datetime) -> dict[int, int]:
    """One in-flight attempt row per claimed message, in one statement: {message id: row id}."""
    rows = [
        {
            "message_id": mid,
            "status_code": None,
            "duration_ms": 0,
            "request_body": "",
            "response_body": "",
            "error_class": "",
            "error": "",
            "in_flight": True,
            "created_at": now,
        }
        for mid in message_ids
    ]
    inserted = rows_insert(MessageAttempt, rows, _ATTEMPT_FIELDS, returning=("message_id", "id"))
    return dict(inserted)


def _frequency_capped(campaign_id: int, message_ids: list[int], now: datetime) -> set[int]:
    """The messages among `message_ids` whose contact reached a promotion cap (across campaigns,
    checked when sending, not only when building)."""
    contact_of = dict(Message.objects.filter(pk__in=message_ids).values_list("pk", "contact_id"))
    capped_contacts = contacts_frequency_capped(
        contact_ids=list(contact_of.values()), campaign_id=campaign_id, now=now
    )
    return {i for i in message_ids if contact_of[i] in capped_contacts}


def _skip(campaign_id: int, ids: set[int], code: str, why: str, now: datetime) -> None:
    """Pending messages that will not be sent to this contact: skipped, with the reason."""
    n = Message.objects.filter(pk__in=ids, status=S.PENDING).update(
        status=S.SKIPPED, error_code=code, error_message=why, updated_at=now
    )
    Campaign.objects.filter(pk=campaign_id).update(skipped_count=F("skipped_count") + n)
    statuses_changed_announce(
        changes=[(campaign_id, StatusChange(i, S.SKIPPED, now)) for i in sorted(ids)]
    )
