"""Reads of the privacy room: who has consent, and the audit trail."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from campaigns.models import Contact
from campaigns.privacy.models import (
    AuditEvent,
    ConsentPurpose,
    ConsentRecord,
    ConsentState,
)

ALL = ConsentRecord.ALL


def advertising_consent_q(*, channel_kind: str, field: str = "pk") -> Q:
    """A filter on `field` (a contact id: "pk" on contacts, "contact_id" on messages) keeping the
    contacts whose current advertising consent covers `channel_kind`: granted for that kind, or
    granted for all channels and not withdrawn for that kind. Two semi-joins on ConsentState,
    the first served by its partial index of granted advertising rows."""
    states = ConsentState.objects.filter(purpose=ConsentPurpose.ADVERTISING)
    granted = states.filter(granted=True, channel_kind__in=[channel_kind, ALL])
    withdrawn = states.filter(granted=False, channel_kind=channel_kind)
    return Q(**{f"{field}__in": granted.values("contact_id")}) & ~Q(
        **{f"{field}__in": withdrawn.values("contact_id")}
    )


def contact_has_advertising_consent(*, contact_id: int, channel_kind: str) -> bool:
    return Contact.objects.filter(
        advertising_consent_q(channel_kind=channel_kind), pk=contact_id
    ).exists()


def contact_advertising_channels(*, contact_id: int) -> list[str]:
    """The channel kinds (and "all") with a current advertising consent: the contact form's
    ticked boxes."""
    return list(
        ConsentState.objects.filter(
            contact_id=contact_id, purpose=ConsentPurpose.ADVERTISING, granted=True
        ).values_list("channel_kind", flat=True)
    )


def contact_consents(*, contact_id: int) -> QuerySet[ConsentState]:
    """The contact's current consents, one row per channel kind and purpose."""
    return ConsentState.objects.filter(contact_id=contact_id).order_by("purpose", "channel_kind")


def contact_consent_history(*, contact_id: int) -> QuerySet[ConsentRecord]:
    """Every consent given or withdrawn by the contact, newest first."""
    return (
        ConsentRecord.objects.filter(contact_id=contact_id)
        .select_related("contact_import")
        .order_by("-at", "-id")
    )


def audit_events(*, action: str = "", actor: str = "", target: str = "") -> QuerySet[AuditEvent]:
    """The trail, newest first, filtered by action code, actor name and target (id or label)."""
    qs = AuditEvent.objects.all()
    if action:
        qs = qs.filter(action=action)
    if actor:
        qs = qs.filter(actor_label__icontains=actor)
    if target:
        qs = qs.filter(Q(target_id=target) | Q(target_label__icontains=target))
    return qs.order_by("-at", "-id")
