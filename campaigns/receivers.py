"""campaigns' answers to what the rooms below announce (connected in CampaignsConfig.ready).

- templates_app.signals.templates_unusable (a template sync found templates disabled or deleted
  at the provider): running and scheduled campaigns on them are paused, and the sync report says
  which.
"""

from __future__ import annotations

import logging

from django.utils.translation import gettext as _

from campaigns.engine.lifecycle import campaign_pause
from campaigns.models import Campaign
from templates_app.signals import Followup

logger = logging.getLogger("loa.templates")


def campaigns_pause_for_unusable_templates(
    sender, *, template_ids: list[int], **kwargs
) -> list[Followup]:
    """Pause running and scheduled campaigns whose template is one of `template_ids`. A
    scheduled campaign that cannot be paused will not start anyway: the engine's pre-flight
    refuses a template that is not approved. Returns what was paused and what could not be."""
    paused, blocked = [], []
    qs = Campaign.objects.filter(
        template_id__in=template_ids,
        status__in=[Campaign.Status.RUNNING, Campaign.Status.SCHEDULED],
    ).select_related("template")
    for campaign in qs:
        template = campaign.template
        reason = _("Paused: the template “{name}” is {status} at the provider{reason}.").format(
            name=template.name,
            status=template.get_status_display().lower(),
            reason=f" ({template.status_reason})" if template.status_reason else "",
        )
        if campaign_pause(campaign_id=campaign.pk, reason=reason):
            paused.append((campaign.pk, campaign.name))
            logger.warning(
                "campaign %s paused: template %s unusable", campaign.pk, campaign.template_id
            )
        else:
            blocked.append((campaign.pk, campaign.name))
    return [
        Followup(
            code="paused_campaigns",
            items=tuple(paused),
            text=_("Paused campaigns: {names}.").format(names=", ".join(n for _i, n in paused)),
        ),
        Followup(
            code="blocked_campaigns",
            items=tuple(blocked),
            text=_(
                "Scheduled campaigns that will not start until they get another template: {names}."
            ).format(names=", ".join(n for _i, n in blocked)),
        ),
    ]
