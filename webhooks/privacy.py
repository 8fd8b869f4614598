"""webhooks' part of a person's data (campaigns may not import webhooks, so it is told):

- erase: receivers of campaigns.signals. `contacts_erased` (per batch): the raw webhook events of
  the contacts' messages and of their replies lose body, query and headers (outcome, times and the
  message link stay: a report still says what happened), their inbound replies lose text, sender
  and sender name (the phone becomes the token), the sender -> contact links go.
  `erasure_finished` (once per erase): what is not linked to a contact: replies that carry the
  phone only, and unmatched/rejected events whose body or query holds the number.
- subject-access export: the sections "replies" and "webhook_events"
  (campaigns.privacy.subject.subject_section_add).

Connected by WebhooksConfig.ready().
"""

from __future__ import annotations

import re

from django.db import transaction
from django.db.models import OuterRef, Q, Subquery
from django.utils.translation import gettext_lazy

from campaigns.models import Contact, Message
from campaigns.privacy.erasure import contact_token, phone_token
from campaigns.privacy.subject import SubjectQuery, subject_section_add
from campaigns.signals import ErasedBatch, contacts_erased, erasure_finished
from webhooks.models import InboundMessage, SenderContact, WebhookEvent

SCAN_CHUNK = 2000
_DIGITS = re.compile(r"\d[\d .\-()]{6,18}\d")
_NON_DIGIT = re.compile(r"\D")


def _events_blank(qs) -> int:
    return qs.update(body="", query="", headers={})


def webhooks_contacts_erase(sender, *, batch: ErasedBatch, **kwargs) -> None:
    """One batch of an erase (inside its transaction): the events and replies tied to these
    contacts."""
    ids = list(batch.contact_ids)
    message_ids = Message.objects.filter(contact_id__in=ids).values("pk")
    _events_blank(WebhookEvent.objects.filter(message_id__in=message_ids))
    replies = InboundMessage.objects.filter(contact_id__in=ids)
    _events_blank(WebhookEvent.objects.filter(pk__in=replies.exclude(event=None).values("event")))
    token = Subquery(Contact.objects.filter(pk=OuterRef("contact_id")).values("phone")[:1])
    replies.update(phone=token, sender=token, sender_name="", text="")
    SenderContact.objects.filter(contact_id__in=ids).delete()


def webhooks_erasure_finish(sender, *, phones: frozenset, national: frozenset, **kwargs) -> None:
    """Once per erase: replies that name the phone without a contact, and raw events no message
    claims whose body or query holds one of the numbers (read in chunks, matched by their
    digits: the providers write 84..., +84... or 0...)."""
    phones = list(phones)
    for i in range(0, len(phones), SCAN_CHUNK):
        chunk = phones[i : i + SCAN_CHUNK]
        with transaction.atomic():
            replies = InboundMessage.objects.filter(Q(phone__in=chunk) | Q(sender__in=chunk))
            found = list(replies.values_list("pk", "phone", "sender", "event_id"))
            if not found:
                continue
            _events_blank(WebhookEvent.objects.filter(pk__in=[r[3] for r in found if r[3]]))
            for pk, phone, sender_id, _event in found:
                number = phone if phone in chunk else sender_id
                token = contact_token(phone_token(number))
                InboundMessage.objects.filter(pk=pk).update(
                    phone=token, sender=token, sender_name="", text=""
                )
    if not national:
        return
    unlinked = WebhookEvent.objects.filter(message_id__isnull=True).exclude(body="", query="")
    last = 0
    while True:
        rows = list(
            unlinked.filter(pk__gt=last)
            .order_by("pk")
            .values_list("pk", "body", "query")[:SCAN_CHUNK]
        )
        if not rows:
            return
        last = rows[-1][0]
        hits = [pk for pk, body, query in rows if _holds(body, national) or _holds(query, national)]
        if hits:
            _events_blank(WebhookEvent.objects.filter(pk__in=hits))


def _holds(text: str, national: frozenset) -> bool:
    """Whether a text holds one of the national numbers in any written form."""
    if not text:
        return False
    for match in _DIGITS.finditer(text):
        digits = _NON_DIGIT.sub("", match.group())
        if digits[-9:] in national or digits[-8:] in national:
            return True
    return False


# ---- subject-access export --------------------------------------------------------------------


def subject_replies(query: SubjectQuery) -> list[dict]:
    q = Q(phone=query.phone)
    if query.contact is not None:
        q |= Q(contact_id=query.contact.pk)
    return [
        {
            "received_at": r.received_at,
            "channel": str(r.channel) if r.channel_id else "",
            "sender": r.sender,
            "sender_name": r.sender_name,
            "phone": r.phone,
            "text": r.text,
            "opt_out_keyword": r.opted_out,
            "provider_message_id": r.provider_message_id,
        }
        for r in InboundMessage.objects.filter(q).select_related("channel").order_by("received_at")
    ]


def subject_webhook_events(query: SubjectQuery) -> list[dict]:
    if query.contact is None:
        return []
    message_ids = Message.objects.filter(contact_id=query.contact.pk).values("pk")
    reply_events = InboundMessage.objects.filter(contact_id=query.contact.pk).exclude(event=None)
    events = WebhookEvent.objects.filter(
        Q(message_id__in=message_ids) | Q(pk__in=reply_events.values("event"))
    ).order_by("received_at")
    return [
        {
            "received_at": e.received_at,
            "message_id": e.message_id,
            "outcome": e.get_outcome_display(),
            "detail": e.outcome_detail,
            "query": e.query,
            "body": e.body,
            "processed_at": e.processed_at,
        }
        for e in events
    ]


def privacy_connect() -> None:
    contacts_erased.connect(webhooks_contacts_erase, dispatch_uid="webhooks.privacy.erase")
    erasure_finished.connect(webhooks_erasure_finish, dispatch_uid="webhooks.privacy.finish")
    subject_section_add("replies", gettext_lazy("Replies"), subject_replies)
    subject_section_add(
        "webhook_events", gettext_lazy("Provider callbacks"), subject_webhook_events
    )
