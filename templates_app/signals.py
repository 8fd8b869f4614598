"""What templates_app tells the rooms above it, without knowing them.

A template sync finds templates the provider disabled or deleted; templates_app does not know what
uses a template (campaigns do), so it sends `templates_unusable` and the rooms that care act on it
(campaigns/receivers.py pauses the campaigns running on them, connected in CampaignsConfig.ready).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.dispatch import Signal

# Sent by templates_app.sync.templates_sync after each account's sync, when the account has
# templates that may not be sent (disabled or deleted). Keyword arguments: `account` (the
# ProviderAccount) and `template_ids` (list[int], every unusable template of the account, not only
# those this sync changed). sender=Template. A receiver returns a list of Followup (or None): what
# it did, for the sync report.
templates_unusable = Signal()


@dataclass(frozen=True)
class Followup:
    """What a receiver of templates_unusable did, as the sync report shows it."""

    code: str  # a stable slug for programs and tests: "paused_campaigns", "blocked_campaigns"
    items: tuple[tuple[int, str], ...]  # (id, name) of each thing it acted on
    text: str  # the sentence for people, in the active language; shown when `items` is not empty
