"""Editing a draft campaign's fallback chain (issue 19): the wizard's "Fallback" page writes
through these services (campaigns/admin/wizard/fallback.py). The engine side is
campaigns/engine/fallback.py; what a chain did is read by campaigns/selectors/fallback.py.

A chain is one or two FallbackSteps after the campaign's own channel; a step is saved in three
parts, each its own service, because each part decides what the next may be: the channel and
when to fall back, then the message (a template of that channel, or a free text), then the
parameter mapping (the same structure as Campaign.param_mapping)."""

from __future__ import annotations

from django.db import transaction
from django.utils.translation import gettext as _

from campaigns.engine.native import native_offered
from campaigns.models import Campaign, FallbackStep
from providers.models import Channel, ChannelKind
from providers.shared.errors import Refused
from templates_app.models import Template


def _editable(campaign: Campaign) -> None:
    if campaign.status != Campaign.Status.DRAFT:
        raise Refused(_("Only a draft campaign's fallback chain can be changed."), code="not_draft")


def fallback_step_save_channel(
    *,
    campaign: Campaign,
    position: int,
    channel: Channel,
    on_unreachable: bool,
    receipt_minutes: int | None,
    mode: str = FallbackStep.Mode.LOA,
) -> FallbackStep:
    """Create or change step `position` (1 or 2; 2 only after 1): its channel, triggers and
    mode. A new channel clears the step's message and mapping when they cannot go out on it.
    The provider's own mode (campaigns.engine.native) only where the provider of the campaign's
    channel offers it, for step 1 on an SMS channel, and then the chain ends there (the
    provider's SMS is its last step)."""
    _editable(campaign)
    if position not in (1, 2):
        raise Refused(_("A chain has at most two fallback steps."), code="bad_position")
    first = FallbackStep.objects.filter(campaign=campaign, position=1).first()
    if position == 2 and first is None:
        raise Refused(_("Add the first fallback step before the second."), code="no_step_1")
    if position == 2 and first.mode == FallbackStep.Mode.PROVIDER:
        raise Refused(
            _("The provider's own fallback is the chain's last step: no second step after it."),
            code="native_last",
        )
    if mode not in FallbackStep.Mode.values:
        raise Refused(_("Choose how the step is sent."), code="bad_mode")
    if mode == FallbackStep.Mode.PROVIDER:
        _native_allowed(campaign, position, channel)
    if not on_unreachable and not receipt_minutes:
        raise Refused(
            _(
                "Choose when to fall back: when the channel cannot reach the person, or when no "
                "receipt came in time, or both."
            ),
            code="no_trigger",
        )
    with transaction.atomic():
        step = FallbackStep.objects.filter(campaign=campaign, position=position).first()
        if step is None:
            step = FallbackStep(campaign=campaign, position=position)
        elif step.channel_id != channel.pk:
            template = step.template
            if template is not None and (
                template.account_id != channel.account_id or template.channel_kind != channel.kind
            ):
                step.template = None
                step.param_mapping = {}
            if channel.kind == "zalo_zns":
                step.content = ""  # ZNS sends approved templates only
        step.channel = channel
        step.mode = mode
        step.on_unreachable = on_unreachable
        step.receipt_minutes = receipt_minutes or None
        step.save()
    return step


def _native_allowed(campaign: Campaign, position: int, channel: Channel) -> None:
    previous = campaign.channel
    if not native_offered(
        provider_kind=previous.account.kind, previous_kind=previous.kind, position=position
    ):
        raise Refused(
            _("The provider of “{channel}” offers no fallback of its own.").format(
                channel=previous.name
            ),
            code="native_not_offered",
        )
    if channel.kind != ChannelKind.SMS:
        raise Refused(
            _("The provider's own fallback sends an SMS: choose an SMS channel."),
            code="native_not_sms",
        )
    if FallbackStep.objects.filter(campaign=campaign, position=2).exists():
        raise Refused(
            _("Remove the second fallback step first: the provider's own fallback is the last."),
            code="native_last",
        )


def fallback_step_save_message(
    *, step: FallbackStep, template: Template | None, content: str, subject: str = ""
) -> FallbackStep:
    """The step's message: a template of its channel, or a free text (not for ZNS)."""
    _editable(step.campaign)
    if template is None and not content.strip():
        raise Refused(_("Choose a template or write the message."), code="no_message")
    if template is not None and template.pk != step.template_id:
        step.param_mapping = {}
    if template is None and content != step.content:
        step.param_mapping = {}
    step.template = template
    step.content = "" if template is not None else content
    step.subject = subject if template is None else ""
    step.save()
    return step


def fallback_step_save_mapping(*, step: FallbackStep, mapping: dict) -> FallbackStep:
    _editable(step.campaign)
    step.param_mapping = dict(mapping)
    step.save(update_fields=["param_mapping"])
    return step


def fallback_step_delete(*, campaign: Campaign, position: int) -> int:
    """Remove step `position`; removing step 1 removes step 2 too (a chain has no gap)."""
    _editable(campaign)
    doomed = [position] if position == 2 else [1, 2]
    deleted, _rows = FallbackStep.objects.filter(campaign=campaign, position__in=doomed).delete()
    return deleted
