"""A draft campaign (the campaign wizard's writes): created at the wizard's first step, saved at
every step after, and a scheduled campaign taken back to draft to be edited again before its
time comes. Sending and scheduling are campaigns.engine.lifecycle's."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from campaigns.engine.lifecycle import campaign_transition
from campaigns.models import Campaign
from campaigns.notes import Note
from providers.models import Channel
from providers.shared.errors import Refused
from templates_app.models import Template


def campaign_draft_create(
    *, name: str, channel: Channel, user: AbstractBaseUser, test_mode: bool = False
) -> Campaign:
    return Campaign.objects.create(
        name=name,
        channel=channel,
        test_mode=test_mode,
        status=Campaign.Status.DRAFT,
        created_by=user,
    )


def campaign_draft_update(*, campaign: Campaign, **fields) -> Campaign:
    """Save one step's choices onto a draft (`lists` and `segments` replace the chosen ones).
    Refused (code "not_draft") for anything but a draft: the page can be stale.

    A new template (or free text) also sets the advertising-consent rule: on for a promotion
    template, off otherwise (the review step may change it after)."""
    m2m = {k: fields.pop(k) for k in ("lists", "segments") if k in fields}
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if locked.status != Campaign.Status.DRAFT:
            raise Refused(_("Only a draft can be edited in the wizard."), code="not_draft")
        if "template" in fields and "requires_advertising_consent" not in fields:
            template = fields["template"]
            if (template.pk if template else None) != locked.template_id:
                fields["requires_advertising_consent"] = bool(
                    template and template.tag == Template.Tag.PROMOTION
                )
        for k, v in fields.items():
            setattr(locked, k, v)
        if fields:
            locked.save(update_fields=[*fields, "updated_at"])
        for k, v in m2m.items():
            getattr(locked, k).set(v)
    return locked


def campaign_unschedule(*, campaign_id: int, user: AbstractBaseUser | None = None) -> bool:
    """Scheduled -> draft, so the campaign can be edited again before its time comes. False: it
    was no longer scheduled (it started, or someone moved it first)."""
    return campaign_transition(
        campaign_id=campaign_id,
        to=Campaign.Status.DRAFT,
        user=user,
        note=Note(gettext_noop("Back to draft")),
        expect={Campaign.Status.SCHEDULED},
    )
