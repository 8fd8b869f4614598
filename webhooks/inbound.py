"""Replies from recipients: stored, tied to their contact, and opt-out keywords applied.

A reply names its contact by phone when the provider gives one. MMP's conversation webhook may
not (seed 000's own example has `"phone": ""`), and a Zalo reply never does: then the sender id
(the MMP conversation id, the Zalo user id) is looked up among the senders already tied to a
contact (SenderContact: learned from a reply that carried a phone, or from a Zalo delivery
receipt naming its recipient), then among the same sender's earlier replies. An opt-out keyword
from a sender nobody can be tied to is kept as "opt-out request not matched" (the inbound
messages admin filters on it), and is applied by itself once the sender is tied to a contact.
"""

from __future__ import annotations

import logging

from django.conf import settings

from campaigns.contacts.optout import contact_opt_out
from campaigns.models import Contact, OptOut
from providers.base import InboundEvent
from providers.models import Channel, ProviderAccount
from providers.shared.phones import DEFAULT_COUNTRY, normalize_phone
from providers.shared.text import fold
from webhooks.models import InboundMessage, SenderContact, WebhookEvent

logger = logging.getLogger("loa.webhooks")

OPT_OUT_KEYWORDS_DEFAULT = ("TU CHOI", "TUCHOI", "HUY", "STOP", "UNSUBSCRIBE")
STATE = InboundMessage.OptOutState


def is_opt_out(text: str) -> bool:
    keywords = settings.LOA.get("OPT_OUT_KEYWORDS") or OPT_OUT_KEYWORDS_DEFAULT
    normalized = fold(text).upper().strip(" .!")
    return normalized in {fold(k).upper() for k in keywords}


def _reply_country(inbound: InboundEvent) -> str:
    """Where the reply's phone is read when written without its calling code: the country the
    provider gives for the contact (a served one, or another whose numbers are then refused
    with that reason), else Vietnam. A number written with +84/+855 is read as written."""
    country = (inbound.country or "").strip().upper()
    return country if len(country) == 2 and country.isalpha() else DEFAULT_COUNTRY


def inbound_store(
    *, account: ProviderAccount, event: WebhookEvent | None, inbound: InboundEvent
) -> InboundMessage:
    """Store one reply, tie it to its contact, apply an opt-out keyword (module docstring)."""
    phone = (
        normalize_phone(inbound.phone, country=_reply_country(inbound)).phone
        if inbound.phone
        else None
    )
    contact = Contact.objects.filter(phone=phone).first() if phone else None
    if contact is None and phone is None and inbound.sender:
        contact = sender_contact(account=account, sender=inbound.sender)
    channel = None
    if inbound.channel_external_id:
        channel = Channel.objects.filter(
            account=account, external_id=inbound.channel_external_id
        ).first()
    opted = is_opt_out(inbound.text)
    msg = InboundMessage.objects.create(
        account=account,
        channel=channel,
        contact=contact,
        sender=inbound.sender[:100],
        sender_name=inbound.name[:200],
        phone=phone or "",
        text=inbound.text,
        provider_message_id=inbound.provider_message_id[:100],
        opted_out=opted,
        opt_out_state=(STATE.NONE if not opted else STATE.NOT_MATCHED),
        event=event,
    )
    if opted and (phone or contact):
        _opt_out(msg, phone or contact.phone)
    if inbound.sender and phone:
        _sender_known(account, inbound.sender, phone, msg)
    return msg


def _sender_known(account: ProviderAccount, sender: str, phone: str, msg: InboundMessage) -> None:
    """A reply with a phone says who its sender is: the opt-outs that waited for it are applied
    (the number becomes a contact then, as any opt-out makes it), and the sender is remembered."""
    contact_id = _waiting_apply(account, sender, phone) or msg.contact_id
    if contact_id is None:
        return
    if msg.contact_id is None:
        InboundMessage.objects.filter(pk=msg.pk).update(contact_id=contact_id)
        msg.contact_id = contact_id
    SenderContact.objects.update_or_create(
        account=account,
        sender=sender[:100],
        defaults={"contact_id": contact_id, "source": SenderContact.Source.REPLY},
    )


def _waiting_apply(account: ProviderAccount, sender: str, phone: str) -> int | None:
    """Apply this sender's opt-outs that were not matched; the contact id, if there were any."""
    contact_id = None
    waiting = InboundMessage.objects.filter(
        account=account, sender=sender[:100], opt_out_state=STATE.NOT_MATCHED
    ).select_related("channel")
    for msg in waiting:
        _opt_out(msg, phone)
        contact_id = msg.contact_id
        logger.info("opt-out request %s matched to contact %s", msg.pk, contact_id)
    return contact_id


def _opt_out(msg: InboundMessage, phone: str) -> None:
    # One service for every opt-out source (admin, file, reply): it keeps the first reason and
    # time as evidence, and creates the contact if the number is not one yet.
    opt_out = contact_opt_out(
        phone=phone,
        channel_kind=msg.channel.kind if msg.channel else OptOut.ALL,
        reason=msg.text[:300],
        source=OptOut.Source.REPLY,
    )
    msg.contact = opt_out.contact
    msg.opt_out_state = STATE.APPLIED
    InboundMessage.objects.filter(pk=msg.pk).update(
        contact=opt_out.contact, opt_out_state=STATE.APPLIED
    )


def sender_contact(*, account: ProviderAccount, sender: str) -> Contact | None:
    """The contact this provider sender id belongs to, if anything we stored says so."""
    link = (
        SenderContact.objects.filter(account=account, sender=sender[:100])
        .select_related("contact")
        .first()
    )
    if link is not None:
        return link.contact
    earlier = (
        InboundMessage.objects.filter(account=account, sender=sender[:100], contact__isnull=False)
        .order_by("-pk")
        .select_related("contact")
        .first()
    )
    return earlier.contact if earlier is not None else None


def sender_learn(*, account: ProviderAccount, sender: str, contact_id: int, source: str) -> None:
    """Tie a sender id to its contact (a delivery receipt named it), and apply the opt-outs
    that waited for it."""
    SenderContact.objects.update_or_create(
        account=account, sender=sender[:100], defaults={"contact_id": contact_id, "source": source}
    )
    phone = Contact.objects.filter(pk=contact_id).values_list("phone", flat=True).first()
    if phone:
        _waiting_apply(account, sender, phone)
