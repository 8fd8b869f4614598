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
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from campaigns.engine.dispatch import campaign_start_drivers
from campaigns.engine.materialize import campaign_materialize
from campaigns.models import Campaign, CampaignEvent, Message
from campaigns.notes import Note
from campaigns.notes import split as split_note
from providers.shared.errors import Refused
from templates_app.models import Template
from templates_app.rendering import validate_mapping

C = Campaign.Status
ALLOWED = {
    C.DRAFT: {C.SCHEDULED, C.RUNNING, C.CANCELLED},
    C.SCHEDULED: {C.RUNNING, C.DRAFT, C.CANCELLED},
    C.RUNNING: {C.PAUSED, C.COMPLETED, C.CANCELLED, C.FAILED},
    C.PAUSED: {C.RUNNING, C.CANCELLED},
    # only reconciliation reopens a finished campaign (to resend rows a provider dedupes)
    C.COMPLETED: {C.RUNNING},
    C.CANCELLED: set(),
    C.FAILED: {C.RUNNING, C.CANCELLED},
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
        if to == C.RUNNING:
            fields["status_reason"], fields["status_reason_i18n"] = "", {}
        if to in (C.COMPLETED, C.CANCELLED, C.FAILED):
            fields["finished_at"] = timezone.now()
        if to == C.PAUSED or to == C.FAILED:
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
    if campaign.template_id is not None:
        if campaign.template.status != Template.Status.APPROVED:
            errors.append(_("The template is not approved."))
        errors += validate_mapping(
            campaign.param_mapping or {}, list(campaign.template.ordered_param_names())
        )
    if not campaign.lists.exists() and not campaign.segments.exists():
        errors.append(_("Choose at least one contact list or segment."))
    return errors


def _sendable_or_refuse(campaign_id: int) -> Campaign:
    campaign = Campaign.objects.select_related("channel__account", "template").get(pk=campaign_id)
    errors = campaign_check_sendable(campaign)
    if errors:
        raise Refused(" ".join(str(e) for e in errors), code="not_sendable")
    return campaign


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
    return total


def campaign_schedule(*, campaign_id: int, when: datetime, user=None) -> None:
    """Draft -> scheduled for `when` (the tick starts it, campaigns.engine.scheduler)."""
    _sendable_or_refuse(campaign_id)
    Campaign.objects.filter(pk=campaign_id).update(scheduled_at=when)
    if not campaign_transition(
        campaign_id=campaign_id,
        to=C.SCHEDULED,
        user=user,
        note=Note(
            gettext_noop("Scheduled for {when}"),
            when=timezone.localtime(when).strftime("%d/%m/%Y %H:%M"),
        ),
    ):
        raise Refused(
            _("This campaign cannot be scheduled from its current status."), code="wrong_status"
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
    """Paused/failed -> running, drivers started again. False: not paused or failed."""
    ok = campaign_transition(
        campaign_id=campaign_id,
        to=C.RUNNING,
        user=user,
        note=Note(gettext_noop("Resumed")),
        expect={C.PAUSED, C.FAILED},
    )
    if ok:
        campaign_start_drivers(campaign_id=campaign_id)
    return ok


def campaign_cancel(*, campaign_id: int, user=None) -> int | None:
    """End a campaign: every message not yet handed to the provider is cancelled. Returns how
    many, or None when the campaign's status no longer allows cancelling it."""
    if not campaign_transition(
        campaign_id=campaign_id,
        to=C.CANCELLED,
        user=user,
        note=Note(gettext_noop("Cancelled")),
    ):
        return None
    return Message.objects.filter(campaign_id=campaign_id, status=Message.Status.PENDING).update(
        status=Message.Status.CANCELLED, updated_at=timezone.now()
    )


def campaign_maybe_complete(*, campaign_id: int) -> bool:
    """Running -> completed once no message is pending or sending."""
    busy = Message.objects.filter(
        campaign_id=campaign_id, status__in=[Message.Status.PENDING, Message.Status.SENDING]
    ).exists()
    if busy:
        return False
    return campaign_transition(
        campaign_id=campaign_id,
        to=C.COMPLETED,
        note=Note(gettext_noop("Every message was handed to the provider")),
        expect={C.RUNNING},
    )


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
