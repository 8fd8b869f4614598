"""Writes of the automations room: scheduling an automation, running its due occurrences (each
run an ordinary campaign), pause and resume, and the holiday table.

How a run stays single (DESIGN's first invariant, for automations):
- One transaction per occurrence, under a lock on the automation's row: the AutomationRun (unique
  per automation and occurrence), the campaign, the date trigger's AutomationDelivery rows
  (unique per automation, contact and occurrence) and the run's contact list, and the move of
  next_run_at. A worker killed anywhere inside leaves nothing; the next tick does it again.
- The campaign is committed as `scheduled` for the run's time, then started at once
  (campaign_send_now). Killed between the two, the campaign scheduler's tick starts it within its
  grace window: the run never needs to be redone, and its campaign's messages have their own keys.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import formats, timezone, translation
from django.utils.translation import gettext_noop

from campaigns.automations import schedule
from campaigns.automations.calendar.holidays import public_holidays
from campaigns.automations.models import Automation, AutomationDelivery, AutomationRun, Holiday
from campaigns.automations.selectors import (
    automations_due,
    date_trigger_candidates,
    next_after,
)
from campaigns.engine.lifecycle import (
    campaign_check_sendable,
    campaign_send_now,
    campaign_transition,
)
from campaigns.models import Campaign, ContactList, ContactListMembership
from campaigns.notes import Note, split
from providers.shared.errors import Refused
from templates_app.models import Template

logger = logging.getLogger("loa.tasks")
K = Automation.Kind
S = Automation.Status
R = AutomationRun.Status
# A server down for months must not keep one tick busy: a tick records at most this many missed
# occurrences per automation, the next tick goes on.
MAX_OCCURRENCES_PER_TICK = 400


class _NoRun(Exception):
    """Inside a run's transaction: undo the campaign, record the run as skipped or failed."""

    def __init__(self, status: str, note: Note | str):
        super().__init__(str(note))
        self.status = status
        self.note = note


def grace_window() -> timedelta:
    # The campaign scheduler's own window (LOA_SCHEDULE_GRACE_SECONDS): one rule for both.
    return timedelta(seconds=settings.LOA.get("SCHEDULE_GRACE_SECONDS", 3600))


def _set_next(automation: Automation, occ: date | None, run_at: datetime | None) -> None:
    fields = {"next_occurrence": occ, "next_run_at": run_at, "updated_at": timezone.now()}
    if occ is None and automation.status == S.ACTIVE:
        fields["status"] = S.ENDED
    Automation.objects.filter(pk=automation.pk).update(**fields)
    for k, v in fields.items():
        setattr(automation, k, v)


def automation_reschedule(*, automation_id: int, now: datetime | None = None) -> Automation:
    """From now on: the first occurrence whose run time has not passed (after a save, a resume,
    a holiday change). Missed ones are not owed: a paused automation resumes from today."""
    now = now or timezone.now()
    with transaction.atomic():
        automation = Automation.objects.select_for_update().get(pk=automation_id)
        if automation.status == S.PAUSED:
            _set_next(automation, None, None)
            return automation
        if automation.status == S.ENDED:
            automation.status = S.ACTIVE  # edited (a later end date, more runs): it may run again
            Automation.objects.filter(pk=automation.pk).update(status=S.ACTIVE)
        today = timezone.localtime(now, schedule.LOCAL).date()
        occ, run_at = next_after(automation, today, not_before=now)
        _set_next(automation, occ, run_at)
    return automation


def automation_pause(*, automation_id: int) -> bool:
    done = Automation.objects.filter(pk=automation_id, status=S.ACTIVE).update(
        status=S.PAUSED, next_run_at=None, next_occurrence=None, updated_at=timezone.now()
    )
    return bool(done)


def automation_resume(*, automation_id: int, now: datetime | None = None) -> bool:
    if not Automation.objects.filter(pk=automation_id, status=S.PAUSED).update(
        status=S.ACTIVE, updated_at=timezone.now()
    ):
        return False
    automation_reschedule(automation_id=automation_id, now=now)
    return True


def automations_tick(*, now: datetime | None = None) -> dict:
    """Every minute: each active automation's due occurrences, in order. Returns what it did."""
    now = now or timezone.now()
    report = {"created": [], "skipped": 0, "failed": 0}
    for automation_id in automations_due(now=now):
        for _i in range(MAX_OCCURRENCES_PER_TICK):
            try:
                run = automation_run_due(automation_id=automation_id, now=now)
            except Exception as exc:
                # One broken automation never stops the others (DESIGN's invariant): its
                # occurrence is recorded as failed with the error, for a person to see.
                logger.exception("automation %s: the run failed", automation_id)
                run = _record_error(automation_id=automation_id, now=now, error=exc)
            if run is None:
                break
            if not run.fresh:
                continue
            if run.status == R.CREATED:
                report["created"].append(run.campaign_id)
            else:
                report[run.status] += 1
    if report["created"] or report["skipped"] or report["failed"]:
        logger.info("automations tick: %s", report)
    return report


def automation_run_due(*, automation_id: int, now: datetime) -> AutomationRun | None:
    """The automation's next occurrence, if its time has come: a run (campaign created, skipped
    or failed, with the reason) and the next occurrence scheduled, in one transaction; then the
    campaign started. None: nothing due (or another worker did it first)."""
    with transaction.atomic():
        automation = (
            # Only the automation's row is locked (the template is an outer join).
            Automation.objects.select_for_update(of=("self",))
            .select_related("channel__account", "template")
            .filter(pk=automation_id)
            .first()
        )
        if (
            automation is None
            or automation.status != S.ACTIVE
            or automation.next_run_at is None
            or automation.next_run_at > now
        ):
            return None
        occ, scheduled = automation.next_occurrence, automation.next_run_at
        run = AutomationRun.objects.filter(automation_id=automation.pk, occurrence=occ).first()
        # Already run (a stale next_run_at): only the schedule moves on, nothing is made again.
        run_fresh = run is None
        if run_fresh:
            run = _run_occurrence(automation, occ, scheduled, now)
        run.fresh = run_fresh
        nxt, run_at = next_after(automation, occ + timedelta(days=1), not_before=None)
        _set_next(automation, nxt, run_at)
        if run_fresh and run.status == R.CREATED:
            Automation.objects.filter(pk=automation.pk).update(last_run_at=now)
        _before_commit(run)
    if run_fresh and run.status == R.CREATED:
        _start(run)
    return run


def _record_error(*, automation_id: int, now: datetime, error: Exception) -> AutomationRun | None:
    """The due occurrence as a failed run with the error, and the schedule moved on (a run that
    fails the same way every minute would otherwise hold the automation forever)."""
    with transaction.atomic():
        automation = (
            Automation.objects.select_for_update().filter(pk=automation_id, status=S.ACTIVE).first()
        )
        if automation is None or automation.next_run_at is None or automation.next_run_at > now:
            return None
        occ = automation.next_occurrence
        text, stored = split(
            Note(
                gettext_noop("Not sent: an error stopped the run ({error})."),
                error=str(error)[:300],
            )
        )
        run, created = AutomationRun.objects.get_or_create(
            automation=automation,
            occurrence=occ,
            defaults={
                "scheduled_for": automation.next_run_at,
                "status": R.FAILED,
                "reason": text,
                "reason_i18n": stored,
            },
        )
        nxt, run_at = next_after(automation, occ + timedelta(days=1), not_before=None)
        _set_next(automation, nxt, run_at)
    run.fresh = created
    return run


def _before_commit(run: AutomationRun) -> None:
    """The last step inside a run's transaction (the tests kill the worker here)."""


def _run_occurrence(
    automation: Automation, occ: date, scheduled: datetime, now: datetime
) -> AutomationRun:
    base = {"automation": automation, "occurrence": occ, "scheduled_for": scheduled}
    late = now - scheduled
    if late > grace_window():
        # The stale-schedule guard: never sent late in the night, and the run says why.
        return _record(
            base,
            R.SKIPPED,
            Note(
                gettext_noop(
                    "Not sent: the run was due at {when} and the worker only reached it {minutes} "
                    "minutes later, past the {grace}-minute grace window."
                ),
                when=scheduled,
                minutes=int(late.total_seconds() // 60),
                grace=int(grace_window().total_seconds() // 60),
            ),
        )
    holiday = Holiday.objects.filter(is_active=True, date=occ).first()
    if holiday and automation.holiday_policy == Automation.HolidayPolicy.SKIP:
        return _record(
            base,
            R.SKIPPED,
            Note(
                gettext_noop("Skipped: {day} is a public holiday ({holiday})."),
                day=_day(occ),
                holiday=holiday.label,
            ),
        )
    try:
        with transaction.atomic():
            return _create_campaign_run(automation, base, now)
    except _NoRun as no:
        return _record(base, no.status, no.note)


def _day(day: date) -> str:
    return formats.date_format(day, "SHORT_DATE_FORMAT")


def _record(base: dict, status: str, note: Note | str) -> AutomationRun:
    text, stored = split(note)
    return AutomationRun.objects.create(**base, status=status, reason=text, reason_i18n=stored)


def _create_campaign_run(automation: Automation, base: dict, now: datetime) -> AutomationRun:
    occ = base["occurrence"]
    run = AutomationRun.objects.create(**base, status=R.CREATED)
    campaign = Campaign.objects.create(
        name=f"{automation.name} · {occ:%d/%m/%Y}"[:200],
        channel=automation.channel,
        template=automation.template,
        param_mapping=automation.param_mapping,
        content=automation.content,
        subject=automation.subject,
        # Nobody is there to decide: recipients whose data fails the template's rules are left
        # out with their reason, the others get it.
        invalid_recipients=Campaign.InvalidRecipients.EXCLUDE,
        # The wizard's default (campaigns.drafts): a promotion goes only to contacts with
        # advertising consent for the channel (campaigns/privacy).
        requires_advertising_consent=bool(
            automation.template_id and automation.template.tag == Template.Tag.PROMOTION
        ),
        created_by=automation.created_by,
        scheduled_at=base["scheduled_for"],
    )
    if automation.kind == K.DATE_TRIGGER:
        recipients = _date_trigger_audience(automation, run, campaign, occ, now)
        if not recipients:
            raise _NoRun(
                R.SKIPPED,
                Note(gettext_noop("Nobody's date matches {day}: no campaign."), day=_day(occ)),
            )
    else:
        # Evaluated afresh: the campaign targets the lists and segments themselves, so who is
        # in them when it is built (campaign_materialize) gets it.
        campaign.lists.set(automation.lists.all())
        campaign.segments.set(automation.segments.all())
        recipients = 0
    errors = campaign_check_sendable(campaign)
    if errors:
        raise _NoRun(
            R.FAILED,
            Note(gettext_noop("Not sent: {errors}"), errors=" ".join(str(e) for e in errors)),
        )
    campaign_transition(
        campaign_id=campaign.pk,
        to=Campaign.Status.SCHEDULED,
        note=Note(gettext_noop("Created by the automation {name}"), name=automation.name),
    )
    run.campaign = campaign
    run.recipient_count = recipients
    run.save(update_fields=["campaign", "recipient_count"])
    return run


def _date_trigger_audience(
    automation: Automation, run: AutomationRun, campaign: Campaign, occ: date, now: datetime
) -> int:
    """Who this occurrence reaches, decided once: the matching contacts without a delivery get
    one (a single INSERT ... SELECT; the unique key makes a concurrent run's rows conflict, not
    double), and the run's own contact list holds exactly them (a second INSERT ... SELECT).

    A contact list per run, rather than a new kind of audience in the engine: the campaign stays
    an ordinary one (its page, pre-flight, materialization and results read lists), the
    recipients are frozen at the run even if an attribute changes before the send, and the list
    says afterwards who was chosen and why."""
    match = schedule.date_match(automation, occ)
    if not match.exact and not match.month_days:
        return 0  # a leap lunar month: nobody's lunar anniversary falls in it
    candidates = date_trigger_candidates(automation, match)
    # An explicit alias: the backends name a bare pk column differently ("id", "pk").
    selected = candidates.order_by().annotate(auto_cid=F("pk")).values_list("auto_cid")
    sql, params = selected.query.sql_with_params()
    ops = connection.ops
    stamp = ops.adapt_datetimefield_value(now)
    deliveries = AutomationDelivery._meta.db_table
    with connection.cursor() as cursor:
        # "WHERE true": SQLite's parser needs it before ON CONFLICT after a SELECT.
        cursor.execute(
            f"INSERT INTO {deliveries} (automation_id, contact_id, occurrence, run_id, created_at) "
            f"SELECT %s, sub.auto_cid, %s, %s, %s FROM ({sql}) sub WHERE true ON CONFLICT DO NOTHING",
            [automation.pk, match.key, run.pk, stamp, *params],
        )
        count = max(cursor.rowcount, 0)
    if not count:
        return 0
    contact_list = ContactList.objects.create(
        name=f"{automation.name} · {occ:%d/%m/%Y} · #{run.pk}"[:200],
        description=str(
            Note(
                gettext_noop(
                    "Recipients of the automation {name} on {day}, chosen by their date "
                    "{key}; created by the automation."
                ),
                name=automation.name,
                day=_day(occ),
                key=automation.attribute_key,
            )
        ),
        tags=["automation"],
        contact_count=count,
    )
    memberships = ContactListMembership._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {memberships} (contact_list_id, contact_id, added_at) "
            f"SELECT %s, contact_id, %s FROM {deliveries} WHERE run_id = %s",
            [contact_list.pk, stamp, run.pk],
        )
    campaign.lists.set([contact_list])
    return count


def _start(run: AutomationRun) -> None:
    """Start the committed campaign now. A refusal (someone changed the channel meanwhile) is
    the run's reason; the campaign stays scheduled with the same reason, for a person."""
    try:
        campaign_send_now(campaign_id=run.campaign_id)
    except Refused as exc:
        if exc.code == "wrong_status":
            return  # the campaign scheduler's tick started it first
        text, stored = split(str(exc.message))
        AutomationRun.objects.filter(pk=run.pk).update(reason=text, reason_i18n=stored)
    except Exception:
        # The run is committed and its schedule moved on: whatever broke here belongs to this
        # campaign, which stays scheduled for the campaign scheduler's tick to start (within
        # its grace window), never to the automation's next occurrence.
        logger.exception("automation run %s: starting campaign %s failed", run.pk, run.campaign_id)


def holidays_seed(*, years: list[int]) -> int:
    """The public holidays of these years from the calendar (campaigns.automations.calendar),
    added where the table has no row for that date: an administrator's edits and removals
    (is_active off) are kept. Returns how many were added."""
    added = 0
    for year in years:
        for h in public_holidays(year):
            with translation.override("en"):
                label = str(h.label)[:200]  # the message id: Holiday.name() translates it
            _obj, created = Holiday.objects.get_or_create(
                date=h.date, defaults={"key": h.key, "label": label}
            )
            added += created
    return added


def holidays_changed(*, now: datetime | None = None) -> int:
    """A holiday added, moved or switched off: every active automation that looks at holidays
    computes its next run again. Returns how many."""
    ids = list(
        Automation.objects.filter(status=S.ACTIVE)
        .exclude(holiday_policy=Automation.HolidayPolicy.NONE)
        .values_list("pk", flat=True)
    )
    for automation_id in ids:
        automation_reschedule(automation_id=automation_id, now=now)
    return len(ids)
