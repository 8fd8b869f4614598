"""Fallback chains (issue 19): steps of the engine, not a second engine.

A campaign may have one or two FallbackSteps after its own channel (step 0). Each step's
messages are ordinary Message rows (`step` 1 or 2) with their own idempotency key
(campaigns.engine.keys), claimed, sent, recorded, reconciled and receipted by the same code as
step 0; the driver sends each step through that step's channel (campaigns.engine.driver).

A step's message is created only when the message of the step before it reached an outcome that
falls back, decided here and nowhere else:
- a permanent failure whose code the provider marks as "this channel cannot reach this person"
  (providers.fallback.cannot_reach: the engine never names a code), when the step falls back on
  that (FallbackStep.on_unreachable); or
- no delivery receipt `receipt_minutes` after it was sent (status still `sent`), for a channel
  that sends receipts (providers.fallback.sends_receipts).
Never on a retryable or deferred answer (the row is pending again, not failed), an unknown
outcome (reconciled first), a refusal of our configuration, or a message delivered or read.

Exactly once: the next step's rows are built with INSERT ... SELECT ... ON CONFLICT DO NOTHING
against the unique (campaign, contact, step), in the same transaction that locks the campaign row
and reads its status: a cancelled or finished campaign builds nothing, and a cancel waiting on the
lock then ends the new rows with the other pending ones. The decision runs after each sent batch
that had failures (the driver: prompt for failures in the send answer) and in the every-minute
tick (failures reported by callbacks, and receipt deadlines): both are the same idempotent sweep.

The new rows' data is materialized from the contact with the step's own mapping, as step 0's was
(campaigns.engine.materialize.messages_build); the step's reach and template rules skip what
cannot be sent, with the reason; opt-outs of the step's channel kind, the frequency cap and the
quiet hours are checked when the step is claimed, as for step 0. A step whose row is still
pending when the previous step's message is delivered after all (a late receipt) is skipped
(error code `reached_earlier`); a late receipt after the fallback was sent changes only the
earlier step's own row.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from campaigns.bulk import rows_bulk_set
from campaigns.engine.invalid_by_value import messages_holding_failing_values
from campaigns.engine.materialize import messages_build
from campaigns.engine.reach import messages_skip_unreachable
from campaigns.engine.validation import campaign_params
from campaigns.models import Campaign, Contact, FallbackStep, Message
from campaigns.notes import Note
from providers.fallback import sends_receipts, unreachable_codes
from templates_app.models import Template
from templates_app.validation import validate_data

S = Message.Status
# Campaigns whose decisions are still taken: a paused campaign builds its fallbacks (they wait,
# pending, for the resume); a cancelled, completed or failed one builds none.
_DECIDING = (Campaign.Status.RUNNING, Campaign.Status.SETTLING, Campaign.Status.PAUSED)
# Why a fallback row was not sent: the earlier step was delivered after all.
REACHED_EARLIER = "reached_earlier"


def campaign_chain(campaign_id: int, *, native: bool = False) -> list[FallbackStep]:
    """The campaign's fallback steps in order (empty: no chain), with what sending needs. Loa's
    own steps only, unless `native`: a step in provider mode (campaigns.engine.native) is sent
    with step 0's request, so the driver has no lane for it and this sweep never builds it;
    the funnel, the export and the checks read every step (native=True)."""
    qs = FallbackStep.objects.filter(campaign_id=campaign_id)
    if not native:
        qs = qs.exclude(mode=FallbackStep.Mode.PROVIDER)
    return list(
        qs.select_related("channel__account", "channel__official_account", "template").order_by(
            "position"
        )
    )


def campaign_step_view(campaign: Campaign, step: FallbackStep | None) -> Campaign:
    """The campaign as one step sends it: a copy (same id) with the step's channel, template,
    mapping and text. Every service that builds, checks or sends a campaign's messages takes
    it unchanged (send plan, reach, template rules, quiet hours)."""
    if step is None:
        return campaign
    view = copy.copy(campaign)  # Model.__getstate__ copies the related-object cache too
    view.channel = step.channel
    view.template = step.template
    view.param_mapping = step.param_mapping or {}
    view.content = step.content
    view.subject = step.subject
    return view


@dataclass(frozen=True)
class _Rule:
    """When step `to` follows step `to - 1`, read once per sweep."""

    to: int
    codes: frozenset[str]  # the previous channel's "cannot reach" codes ({} if not used)
    receipt_wait: timedelta | None  # None: the step does not wait on receipts

    def triggers(self, now: datetime) -> Q | None:
        q = Q()
        if self.codes:
            q |= Q(status=S.FAILED, error_code__in=sorted(self.codes))
        if self.receipt_wait is not None:
            q |= Q(status=S.SENT, sent_at__lte=now - self.receipt_wait)
        return q or None

    def open(self) -> Q | None:
        """Rows whose decision is still to come (or due now): failed with a trigger code, or
        sent and still waiting for a receipt."""
        q = Q()
        if self.codes:
            q |= Q(status=S.FAILED, error_code__in=sorted(self.codes))
        if self.receipt_wait is not None:
            q |= Q(status=S.SENT)
        return q or None


def _rules(campaign: Campaign, chain: list[FallbackStep]) -> list[_Rule]:
    rules = []
    previous = campaign.channel
    for step in chain:
        account = previous.account
        codes = unreachable_codes(account.kind, account.settings) if step.on_unreachable else set()
        wait = None
        if step.receipt_minutes and sends_receipts(account.kind, previous.kind):
            wait = timedelta(minutes=step.receipt_minutes)
        rules.append(_Rule(step.position, frozenset(codes), wait))
        previous = step.channel
    return rules


def _without_next(qs, to: int):
    """Rows of the previous step whose contact has no message of step `to` yet."""
    nxt = Message.objects.filter(
        campaign_id=OuterRef("campaign_id"), contact_id=OuterRef("contact_id"), step=to
    )
    return qs.filter(~Exists(nxt))


def campaign_fall_back(
    *, campaign_id: int, now: datetime | None = None, step: int | None = None
) -> int:
    """Build every fallback message now due for this campaign (only after `step` when given):
    returns how many rows were built (the skipped ones included)."""
    now = now or timezone.now()
    chain = campaign_chain(campaign_id)
    if not chain:
        return 0
    campaign = Campaign.objects.select_related("channel__account", "template").get(pk=campaign_id)
    built = 0
    for rule, target in zip(_rules(campaign, chain), chain, strict=True):
        if step is not None and rule.to != step + 1:
            continue
        triggers = rule.triggers(now)
        if triggers is None:
            continue
        with transaction.atomic():
            status = (
                Campaign.objects.select_for_update()
                .filter(pk=campaign_id)
                .values_list("status", flat=True)
                .first()
            )
            if status not in _DECIDING:
                return built
            due = _without_next(
                Message.objects.filter(campaign_id=campaign_id, step=rule.to - 1).filter(triggers),
                rule.to,
            )
            audience = Contact.objects.filter(pk__in=due.values("contact_id"))
            view = campaign_step_view(campaign, target)
            inserted = messages_build(campaign=view, audience=audience, step=rule.to)
            if inserted:
                skipped = messages_skip_unreachable(campaign=view, now=now, step=rule.to)
                skipped += _skip_invalid(view, rule.to, now)
                Campaign.objects.filter(pk=campaign_id).update(
                    skipped_count=F("skipped_count") + skipped,
                    fallback_count=F("fallback_count") + inserted,
                )
        built += inserted
    return built


def campaign_chain_blocker(*, campaign_id: int) -> Note | None:
    """Why a fallback step may not send now (its template no longer approved, its channel or
    account deactivated), checked before each batch of a chained campaign, as step 0's are
    (campaigns.engine.claim.campaign_send_blocker); None when every step may send."""
    rows = FallbackStep.objects.filter(campaign_id=campaign_id).values(
        "position",
        "template_id",
        "template__status",
        "template__name",
        "channel__is_active",
        "channel__name",
        "channel__account__is_active",
    )
    for row in rows:
        n = row["position"]
        if row["template_id"] is not None and row["template__status"] != Template.Status.APPROVED:
            return Note(
                gettext_noop(
                    "Paused: the template “{name}” of fallback step {n} is no longer approved."
                ),
                name=row["template__name"],
                n=n,
            )
        if not row["channel__is_active"] or not row["channel__account__is_active"]:
            return Note(
                gettext_noop(
                    "Paused: the channel “{name}” of fallback step {n} or its provider account "
                    "was deactivated."
                ),
                name=row["channel__name"],
                n=n,
            )
    return None


def campaign_fallback_waiting(*, campaign_id: int) -> bool:
    """Is some fallback decision still to come (a message waiting for its receipt deadline, or a
    trigger the sweep has not acted on yet)? The campaign is not complete while it is."""
    chain = campaign_chain(campaign_id)
    if not chain:  # a chain-less campaign: one query
        return False
    campaign = Campaign.objects.select_related("channel__account").get(pk=campaign_id)
    for rule in _rules(campaign, chain):
        q = rule.open()
        if q is None:
            continue
        rows = Message.objects.filter(campaign_id=campaign_id, step=rule.to - 1).filter(q)
        if _without_next(rows, rule.to).exists():
            return True
    return False


def campaigns_fall_back_due(*, now: datetime | None = None) -> int:
    """The tick's sweep: every campaign with a chain that still decides. Returns rows built;
    the campaigns that got some are returned to the caller to start their drivers."""
    now = now or timezone.now()
    built = 0
    ids = (
        FallbackStep.objects.filter(campaign__status__in=_DECIDING)
        .exclude(mode=FallbackStep.Mode.PROVIDER)
        .values_list("campaign_id", flat=True)
        .distinct()
    )
    for cid in list(ids):
        built += campaign_fall_back(campaign_id=cid, now=now)
    return built


def messages_skip_reached_earlier(*, message_ids: list[int], step: int, now: datetime) -> set[int]:
    """Among claimed-to-be fallback rows of `step`, those whose previous step's message was
    delivered or read after all (a late receipt): skipped, never sent. Returns their ids."""
    if not step or not message_ids:
        return set()
    earlier = Message.objects.filter(
        campaign_id=OuterRef("campaign_id"),
        contact_id=OuterRef("contact_id"),
        step=step - 1,
        status__in=[S.DELIVERED, S.READ],
    )
    ids = set(
        Message.objects.filter(pk__in=message_ids, status=S.PENDING)
        .filter(Exists(earlier))
        .values_list("pk", flat=True)
    )
    if ids:
        Message.objects.filter(pk__in=ids, status=S.PENDING).update(
            status=S.SKIPPED,
            error_code=REACHED_EARLIER,
            error_message=_("The previous step's message was delivered after all: not sent."),
            updated_at=now,
        )
    return ids


def _skip_invalid(view: Campaign, step: int, now: datetime) -> int:
    """The new rows of `step` whose data breaks the step template's rules: skipped with the
    parameter and why (the rules step 0 applies at materialization)."""
    if view.template_id is None:
        return 0
    params = campaign_params(view)
    if not params:
        return 0
    rows = []
    pending = Message.objects.filter(campaign_id=view.pk, step=step, status=S.PENDING, attempts=0)
    # Only the rows that hold a failing value come back to be checked one by one.
    candidates = messages_holding_failing_values(pending, params)
    for pk, data in candidates.values_list("pk", "template_data").iterator(chunk_size=2000):
        errors = validate_data(params, {k: str(v) for k, v in (data or {}).items()})
        if errors:
            reasons = [f"“{name}”: {why}" for name, why in errors.items()]
            rows.append(
                {
                    "pk": pk,
                    "status": S.SKIPPED,
                    "error_code": "invalid_params",
                    "error_message": "; ".join(reasons)[:500],
                    "updated_at": now,
                }
            )
    if not rows:
        return 0
    table = connection.ops.quote_name(Message._meta.db_table)
    return rows_bulk_set(
        Message,
        rows,
        ["status", "error_code", "error_message", "updated_at"],
        guard=f" AND {table}.status = %s",
        guard_params=[S.PENDING],
    )
