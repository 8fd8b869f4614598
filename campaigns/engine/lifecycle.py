"""A campaign's life: the state machine (ALLOWED, campaign_transition) and the verbs people use
(send now, schedule, pause, resume, cancel), plus the engine's own moves (completion, the
failure-rate auto-pause) and the reason a campaign shows while it waits.

How these services say no:
- `campaign_send_now` and `campaign_schedule` raise providers.shared.errors.Refused with a message
  for the person (what is missing, or that the status does not allow it): the admin and the
  wizard show it, the scheduler stores it as the campaign's reason.
- Every status change is a compare-and-set (`campaign_transition`): when the campaign is not in a
  status that allows the move (someone or a driver moved it first, it is already there), nothing
  changes and the answer is False. That is a normal answer, not a refusal, for the callers that
  race by design (drivers, the tick, template sync, pause/resume storms): `campaign_pause`,
  `campaign_resume`, `campaign_maybe_complete` and `campaign_check_failure_rate` return that
  bool, and `campaign_cancel` returns None instead of a count. The admin shows it as "nothing
  changed: the campaign moved on meanwhile".
- `campaign_check_sendable` is a question, not a refusal: it lists every problem, for the
  pre-flight page.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop, ngettext

from campaigns.engine.dispatch import campaign_start_drivers
from campaigns.engine.fallback import campaign_chain, campaign_fallback_waiting
from campaigns.engine.materialize import campaign_failing_count, campaign_materialize
from campaigns.engine.native import native_step_errors
from campaigns.engine.outage import CONNECT_CODES
from campaigns.engine.reach import campaign_unreachable
from campaigns.engine.signals import StatusChange, statuses_changed_announce
from campaigns.models import Campaign, CampaignEvent, Message
from campaigns.notes import Note
from campaigns.notes import split as split_note
from campaigns.privacy.models import AuditAction
from campaigns.privacy.services import audit_record
from providers.base import ErrorClass
from providers.models import ChannelKind
from providers.shared.errors import Refused
from templates_app.models import Template
from templates_app.rendering import validate_mapping

C = Campaign.Status
# Running: messages are still to be handed to the provider. Settling: every message was handed
# over, and some outcomes are unknown: reconciliation asks the provider, and drivers resend (still
# settling) what it proved never arrived. Completed: nothing is left to send or settle; receipts
# of sent messages may still arrive and move the counters, never the status. The engine moves a
# campaign only forward (running -> settling -> completed): reconciling rows never flaps it.
ALLOWED = {
    C.DRAFT: {C.SCHEDULED, C.RUNNING, C.CANCELLED},
    C.SCHEDULED: {C.RUNNING, C.DRAFT, C.CANCELLED},
    C.RUNNING: {C.PAUSED, C.SETTLING, C.COMPLETED, C.CANCELLED, C.FAILED},
    # back to running only by a person's "retry failed recipients" (campaign_retry_failed)
    C.SETTLING: {C.RUNNING, C.PAUSED, C.COMPLETED, C.CANCELLED},
    C.PAUSED: {C.RUNNING, C.CANCELLED},
    # reopened only by a person's "retry failed recipients", or a legacy resend
    C.COMPLETED: {C.RUNNING},
    C.CANCELLED: set(),
    C.FAILED: {C.RUNNING, C.CANCELLED},
}
# Final failures a person may send again: the provider did not take them (nothing was sent, or
# it asked us to retry), so a resend cannot make a second message. Refusals of the recipient or
# the content (permanent), and failures reported by receipts, are never retried.
RETRYABLE_FAILURES = Q(status=Message.Status.FAILED) & (
    Q(error_class=ErrorClass.RETRYABLE) | Q(error_code__in=CONNECT_CODES)
)
# The statuses whose reason the transition's note becomes (others clear the reason).
_REASONED = {C.PAUSED, C.FAILED, C.SETTLING}


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
        # A reason that no longer holds ("waiting until ...") is not left behind.
        fields["status_reason"], fields["status_reason_i18n"] = (
            (text, stored) if to in _REASONED else ("", {})
        )
        if to in (C.COMPLETED, C.CANCELLED, C.FAILED):
            fields["finished_at"] = timezone.now()
        if to in (C.COMPLETED, C.CANCELLED):
            fields.update(outage_since=None, outage_error="", outage_failures=0)
        if to == C.RUNNING:
            fields["outage_failures"] = 0  # a resumed campaign counts connection failures anew
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


def campaign_set_reason(*, campaign_id: int, note: str | Note) -> None:
    """Say why a campaign waits, without a transition (campaigns.notes for the language)."""
    text, stored = split_note(note)
    Campaign.objects.filter(pk=campaign_id).update(status_reason=text, status_reason_i18n=stored)


def campaign_check_sendable(campaign: Campaign) -> list[str]:
    """What stops this campaign from being sent, in words for the marketer."""
    errors = []
    if not campaign.channel.is_active or not campaign.channel.account.is_active:
        errors.append(_("The channel or its provider account is inactive."))
    if campaign.template_id is None and not campaign.content:
        errors.append(_("Choose a template (or write the content for free-text channels)."))
    if (
        campaign.content
        and campaign.channel.kind == ChannelKind.EMAIL
        and not campaign.subject.strip()
    ):
        errors.append(_("Write the email's subject: a free-text email cannot be sent without one."))
    if campaign.template_id is not None:
        if campaign.template.status != Template.Status.APPROVED:
            errors.append(_("The template is not approved."))
        errors += validate_mapping(
            campaign.param_mapping or {}, list(campaign.template.ordered_param_names())
        )
    if not campaign.lists.exists() and not campaign.segments.exists():
        errors.append(_("Choose at least one contact list or segment."))
    errors += _chain_errors(campaign)
    return errors


def _chain_errors(campaign: Campaign) -> list[str]:
    """What stops the fallback chain's steps (campaigns.engine.fallback) from being sent."""
    errors = []
    for step in campaign_chain(campaign.pk, native=True):
        n = step.position
        errors += native_step_errors(campaign=campaign, step=step)
        if not step.channel.is_active or not step.channel.account.is_active:
            errors.append(
                _("Fallback step {n}: the channel or its provider account is inactive.").format(n=n)
            )
        if step.template_id is None and not step.content:
            errors.append(
                _("Fallback step {n}: choose a template or write the message.").format(n=n)
            )
        elif step.template_id is not None:
            if step.template.status != Template.Status.APPROVED:
                errors.append(_("Fallback step {n}: the template is not approved.").format(n=n))
            missing = validate_mapping(
                step.param_mapping or {}, list(step.template.ordered_param_names())
            )
            errors += [_("Fallback step {n}: {error}").format(n=n, error=e) for e in missing]
    return errors


def _sendable_or_refuse(campaign_id: int) -> Campaign:
    campaign = Campaign.objects.select_related("channel__account", "template").get(pk=campaign_id)
    errors = campaign_check_sendable(campaign)
    if errors:
        raise Refused(" ".join(str(e) for e in errors), code="not_sendable")
    _refuse_if_blocked_by_invalid(campaign)
    return campaign


def _refuse_if_blocked_by_invalid(campaign: Campaign) -> None:
    """A campaign set to block the send (Campaign.invalid_recipients) is refused, with the count,
    while any recipient fails the template's rules: the provider never receives a value we know
    it will refuse. Every recipient is checked (costly on a big audience) only when some rule
    can fail."""
    if campaign.invalid_recipients != Campaign.InvalidRecipients.BLOCK:
        return
    # Recipients the channel cannot reach (campaigns.engine.reach) block it too: one aggregate.
    unreachable = campaign_unreachable(campaign)
    if unreachable.total:
        raise Refused(
            ngettext(
                "{n} recipient cannot be reached on this channel ({countries}), and this "
                "campaign is set not to send while any recipient cannot receive it. Remove them "
                "from the audience or choose to exclude them in the wizard's review step.",
                "{n} recipients cannot be reached on this channel ({countries}), and this "
                "campaign is set not to send while any recipient cannot receive it. Remove them "
                "from the audience or choose to exclude them in the wizard's review step.",
                unreachable.total,
            ).format(n=unreachable.total, countries=unreachable.countries_text()),
            code="unreachable_recipients",
        )
    failing, total = campaign_failing_count(campaign)
    if failing:
        raise Refused(
            ngettext(
                "{n} of {total} recipient fails the template's rules, and this campaign is set "
                "not to send while any does. Fix the data (see the parameters report) or choose "
                "to exclude them in the wizard's review step.",
                "{n} of {total} recipients fail the template's rules, and this campaign is set "
                "not to send while any does. Fix the data (see the parameters report) or choose "
                "to exclude them in the wizard's review step.",
                total,
            ).format(n=failing, total=total),
            code="invalid_recipients",
        )


def campaign_send_now(*, campaign_id: int, user=None) -> int:
    """Draft/scheduled -> running: materialize messages, start the drivers. Returns recipients."""
    campaign = _sendable_or_refuse(campaign_id)
    if not campaign_transition(
        campaign_id=campaign_id,
        to=C.RUNNING,
        user=user,
        expect={C.DRAFT, C.SCHEDULED},
        note=Note(gettext_noop("Send started")),
    ):
        raise Refused(
            _("This campaign cannot be sent from its current status ({status}).").format(
                status=campaign.get_status_display()
            ),
            code="wrong_status",
        )
    Campaign.objects.filter(pk=campaign_id, started_at__isnull=True).update(
        started_at=timezone.now()
    )
    total = campaign_materialize(campaign_id=campaign_id)
    campaign_start_drivers(campaign_id=campaign_id)
    audit_record(action=AuditAction.CAMPAIGN_SEND, actor=user, target=campaign, rows=total)
    return total


def campaign_schedule(*, campaign_id: int, when: datetime, user=None) -> None:
    """Draft -> scheduled for `when` (the tick starts it, campaigns.engine.scheduler)."""
    campaign = _sendable_or_refuse(campaign_id)
    Campaign.objects.filter(pk=campaign_id).update(scheduled_at=when)
    if not campaign_transition(
        campaign_id=campaign_id,
        to=C.SCHEDULED,
        user=user,
        note=Note(
            gettext_noop("Scheduled for {when}"),
            when=when,
        ),
    ):
        raise Refused(
            _("This campaign cannot be scheduled from its current status."), code="wrong_status"
        )
    audit_record(
        action=AuditAction.CAMPAIGN_SCHEDULE,
        actor=user,
        target=campaign,
        detail={"scheduled_at": when.isoformat()},
    )


def campaign_pause(*, campaign_id: int, user=None, reason: str = "") -> bool:
    """Running -> paused: drivers stop claiming at their next batch. False: not running."""
    return campaign_transition(
        campaign_id=campaign_id,
        to=C.PAUSED,
        user=user,
        note=reason or Note(gettext_noop("Paused by a user")),
    )


def campaign_resume(*, campaign_id: int, user=None) -> bool:
    """Paused/failed -> running, drivers started again: every pending message is sent, those
    that waited after a connection failure at once. False: not paused or failed."""
    ok = campaign_transition(
        campaign_id=campaign_id,
        to=C.RUNNING,
        user=user,
        note=Note(gettext_noop("Resumed")),
        expect={C.PAUSED, C.FAILED},
    )
    if ok:
        Message.objects.filter(
            campaign_id=campaign_id, status=Message.Status.PENDING, error_code__in=CONNECT_CODES
        ).update(next_attempt_at=None)
        campaign_start_drivers(campaign_id=campaign_id)
    return ok


def campaign_cancel(*, campaign_id: int, user=None) -> int | None:
    """End a campaign: every message not yet handed to the provider is cancelled (and counted,
    Campaign.cancelled_count). Returns how many, or None when the campaign's status no longer
    allows cancelling it. One transaction: a batch recording its results meanwhile either sees
    the campaign cancelled or has its rows found pending here (campaigns.engine.results)."""
    with transaction.atomic():
        if not campaign_transition(
            campaign_id=campaign_id,
            to=C.CANCELLED,
            user=user,
            note=Note(gettext_noop("Cancelled")),
        ):
            return None
        now = timezone.now()
        pending = Message.objects.filter(campaign_id=campaign_id, status=Message.Status.PENDING)
        # An API message's client is told (campaigns.engine.signals); a campaign's ids are not read.
        api = Campaign.objects.filter(pk=campaign_id, origin=Campaign.Origin.API).exists()
        ids = list(pending.values_list("pk", flat=True)) if api else []
        n = pending.update(status=Message.Status.CANCELLED, updated_at=now)
        Campaign.objects.filter(pk=campaign_id).update(cancelled_count=F("cancelled_count") + n)
        audit_record(
            action=AuditAction.CAMPAIGN_CANCEL,
            actor=user,
            target=Campaign.objects.only("pk", "name").get(pk=campaign_id),
            rows=n,
        )
        statuses_changed_announce(
            changes=[(campaign_id, StatusChange(i, Message.Status.CANCELLED, now)) for i in ids]
        )
    return n


def campaign_maybe_complete(*, campaign_id: int) -> str | None:
    """Nothing left to send (no message pending or sending): running -> settling while some
    outcomes are unknown, running/settling -> completed when none is. Returns the status the
    campaign is in when nothing is left to send (settling or completed), else None."""
    rows = Message.objects.filter(campaign_id=campaign_id)
    if rows.filter(status__in=[Message.Status.PENDING, Message.Status.SENDING]).exists():
        return None
    if campaign_fallback_waiting(campaign_id=campaign_id):
        # A fallback chain still decides: messages wait for their receipt deadline (the tick
        # builds their fallbacks then), or a failure's fallback is about to be built.
        campaign_transition(
            campaign_id=campaign_id,
            to=C.SETTLING,
            note=Note(
                gettext_noop(
                    "Every message of the first steps was handed to the provider. Loa waits for "
                    "their delivery receipts: a recipient without one by the deadline, or whom "
                    "the channel cannot reach, gets the next step of the fallback chain."
                )
            ),
            expect={C.RUNNING},
        )
        status = Campaign.objects.filter(pk=campaign_id).values_list("status", flat=True).first()
        return status if status == C.SETTLING else None
    if rows.filter(status=Message.Status.UNKNOWN).exists():  # only unknown outcomes are left
        campaign_transition(
            campaign_id=campaign_id,
            to=C.SETTLING,
            note=Note(
                gettext_noop(
                    "Every message was handed to the provider. The outcome of some is not known "
                    "yet: Loa asks the provider, and those it cannot confirm wait for a person "
                    "to decide (messages with the status unknown)."
                )
            ),
            expect={C.RUNNING},
        )
        target = C.SETTLING
    else:
        campaign_transition(
            campaign_id=campaign_id,
            to=C.COMPLETED,
            note=Note(gettext_noop("Every message was handed to the provider")),
            expect={C.RUNNING, C.SETTLING},
        )
        target = C.COMPLETED
    status = Campaign.objects.filter(pk=campaign_id).values_list("status", flat=True).first()
    return status if status == target else None


def campaign_retry_failed(*, campaign_id: int, user=None) -> int:
    """A person's "retry failed recipients": messages that failed for a reason that proves the
    provider did not take them (RETRYABLE_FAILURES: connection errors, a rate limit or a
    retryable error after MAX_RETRIES) go back to pending; never a refusal of the recipient or
    the content. A finished campaign runs again to send them; a paused one sends them when it
    is resumed. Returns how many; raises Refused for a cancelled campaign."""
    with transaction.atomic():
        status = (
            Campaign.objects.select_for_update()
            .filter(pk=campaign_id)
            .values_list("status", flat=True)
            .first()
        )
        if status == C.CANCELLED:
            raise Refused(_("A cancelled campaign sends nothing more."), code="wrong_status")
        n = (
            Message.objects.filter(campaign_id=campaign_id)
            .filter(RETRYABLE_FAILURES)
            .update(
                status=Message.Status.PENDING,
                attempts=0,
                next_attempt_at=None,
                failed_at=None,
                updated_at=timezone.now(),
            )
        )
        if not n:
            return 0
        Campaign.objects.filter(pk=campaign_id).update(failed_count=F("failed_count") - n)
        if status in (C.COMPLETED, C.SETTLING):
            campaign_transition(
                campaign_id=campaign_id,
                to=C.RUNNING,
                user=user,
                note=Note(gettext_noop("Retrying {n} failed messages"), n=n),
                expect={C.COMPLETED, C.SETTLING},
            )
            status = C.RUNNING
        if status == C.RUNNING:
            campaign_start_drivers(campaign_id=campaign_id)
    return n


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
        to=C.PAUSED,
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
