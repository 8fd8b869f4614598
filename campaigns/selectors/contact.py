"""Reads for a contact's page: what Loa sent them and what they wrote back.

Replies are stored by the webhooks app (webhooks.models.InboundMessage, linked to the contact).
campaigns sits below webhooks and does not import it: the model is reached through Contact's
reverse relation, which exists whenever the webhooks app is installed.
"""

from __future__ import annotations

from django.core.exceptions import FieldDoesNotExist
from django.db.models import Model

from campaigns.models import Contact, Message


def inbound_message_model() -> type[Model] | None:
    """webhooks' InboundMessage, through Contact's reverse relation; None without webhooks."""
    try:
        return Contact._meta.get_field("inbound_messages").related_model
    except FieldDoesNotExist:  # webhooks not installed: no replies to show
        return None


def contact_replies(*, contact: Contact, limit: int = 20) -> list:
    """The contact's most recent replies, newest first, with their channel."""
    model = inbound_message_model()
    if model is None or contact.pk is None:
        return []
    return list(
        model.objects.filter(contact=contact).select_related("channel").order_by("-pk")[:limit]
    )


def contact_messages(*, contact: Contact, limit: int = 20) -> list:
    """What Loa sent this contact, newest first, through the contact index (the support
    question "did this customer get our message?")."""
    if contact.pk is None:
        return []
    return list(
        Message.objects.filter(contact=contact).select_related("campaign").order_by("-pk")[:limit]
    )
