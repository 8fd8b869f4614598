"""The provider's own fallback, recorded (issue 19): when the provider sent the SMS of a chain
step in provider mode by itself (campaigns.engine.native), Loa records it as that step's own
message row, from the send answer (eTelecom's `sms{...}` block), the status polls (GetMessage)
and the callbacks (eTelecom's message object, eSMS's SMS callback of a MultiChannelMessage).

A provider's adapter reports such a status as a StatusEvent with leg=1 (providers.base); here
each one is tied to its step's row, built the first time it is reported (the same
messages_build as Loa's own steps: INSERT ... ON CONFLICT DO NOTHING against the unique
(campaign, contact, step), so an answer or a callback applied twice builds one row), then the
event is pointed at that row (its key) and applied like any other: monotonic, counters in the
same transaction (campaigns.engine.delivery).

Only a campaign of the same provider account, whose step is in provider mode, gets a row: a leg
event that names anything else matches nothing (it is kept as an unmatched callback), and never
the step-0 row whose key it may carry."""

from __future__ import annotations

from collections import defaultdict

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from campaigns.engine.delivery import messages_apply_events, messages_find, messages_of_account
from campaigns.engine.fallback import campaign_step_view
from campaigns.engine.keys import idempotency_key, idempotency_key_parse, idempotency_key_step
from campaigns.engine.materialize import messages_build
from campaigns.models import Campaign, Contact, FallbackStep, Message
from providers.base import StatusEvent

S = Message.Status
# What a leg event becomes when it names no provider-mode step of its account: it matches
# nothing (key and id emptied), and a caller may leave it out (webhooks.applier does, beside its
# message's own status in the same callback).
LEG_ORPHAN = -1
# eTelecom's leg id is the ZNS msg_id with this suffix (providers.etelecom.SMS_LEG_SUFFIX).
_LEG_SUFFIXES = (":sms",)


def _base_pid(pid: str) -> str:
    for suffix in _LEG_SUFFIXES:
        if pid.endswith(suffix):
            return pid[: -len(suffix)]
    return pid


def _target(account_id: int, event: StatusEvent, by_pid: dict[str, tuple[int, int]]):
    """(campaign id, contact id, step) a leg event is about, or None."""
    pair = idempotency_key_parse(event.idempotency_key)
    if pair is not None:
        step = idempotency_key_step(event.idempotency_key) or 1  # step 0's key: its step 1
        return pair[0], pair[1], step
    found = by_pid.get(_base_pid(event.provider_message_id))
    return (found[0], found[1], 1) if found else None


def legs_prepare(*, account_id: int, events: list[StatusEvent]) -> int:
    """Tie every leg event (leg=1) among `events` to its step's row, building the rows not built
    yet (as `sending`: the event applied next moves them and the counters). Events are changed
    in place: key = the step row's key, leg = 0; one that names no provider-mode step of this
    account is emptied (it matches nothing) and marked LEG_ORPHAN. Returns rows built."""
    legs = [e for e in events if e.leg > 0]
    if not legs:
        return 0
    pids = {
        _base_pid(e.provider_message_id)
        for e in legs
        if not idempotency_key_parse(e.idempotency_key) and e.provider_message_id
    }
    by_pid: dict[str, tuple[int, int]] = {}
    if pids:
        by_pid = {
            pid: (c, k)
            for pid, c, k in messages_of_account(account_id)
            .filter(step=0, provider_message_id__in=pids)
            .values_list("provider_message_id", "campaign_id", "contact_id")
        }
    targets = {id(e): _target(account_id, e, by_pid) for e in legs}
    wanted = {t[0] for t in targets.values() if t}
    steps = {
        (s.campaign_id, s.position): s
        for s in FallbackStep.objects.filter(
            campaign_id__in=wanted,
            mode=FallbackStep.Mode.PROVIDER,
            campaign__channel__account_id=account_id,
        ).select_related("channel", "template")
    }
    contacts: dict[tuple[int, int], set[int]] = defaultdict(set)
    for t in targets.values():
        if t and (t[0], t[2]) in steps:
            contacts[(t[0], t[2])].add(t[1])
    campaigns = Campaign.objects.in_bulk({c for c, _s in contacts})
    built = 0
    for (campaign_id, position), ids in contacts.items():
        built += _build(campaigns[campaign_id], steps[(campaign_id, position)], ids)
    for e in legs:
        t = targets[id(e)]
        if t and (t[0], t[2]) in steps:
            e.idempotency_key = idempotency_key(campaigns[t[0]], t[1], t[2])
            e.leg = 0
        else:
            e.idempotency_key = ""
            e.provider_message_id = ""
            e.leg = LEG_ORPHAN
    return built


def _build(campaign: Campaign, step: FallbackStep, contact_ids: set[int]) -> int:
    """The step's rows for these contacts that do not exist yet, as `sending` (the provider
    has them), counted in Campaign.fallback_count as Loa's own steps are."""
    view = campaign_step_view(campaign, step)
    with transaction.atomic():
        inserted = messages_build(
            campaign=view, audience=Contact.objects.filter(pk__in=contact_ids), step=step.position
        )
        if not inserted:
            return 0
        now = timezone.now()
        # Only the rows just built are pending: a provider-mode step has no lane that claims.
        Message.objects.filter(
            campaign_id=campaign.pk,
            step=step.position,
            contact_id__in=contact_ids,
            status=S.PENDING,
        ).update(status=S.SENDING, sent_at=now, updated_at=now)
        Campaign.objects.filter(pk=campaign.pk).update(
            fallback_count=F("fallback_count") + inserted
        )
    return inserted


def legs_record(*, account_id: int, events: list[StatusEvent]) -> int:
    """Record leg events outside the webhook path (a send answer, a status poll): build, find,
    apply. Returns status changes made."""
    legs = [e for e in events if e is not None and e.leg > 0]
    if not legs:
        return 0
    with transaction.atomic():
        legs_prepare(account_id=account_id, events=legs)
        legs = [e for e in legs if e.leg != LEG_ORPHAN]
        found = messages_find(account_id=account_id, events=legs)
        return messages_apply_events(
            items=[(mid, e) for mid, e in zip(found, legs, strict=True) if mid is not None]
        )
