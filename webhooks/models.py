from django.db import models
from django.utils.translation import gettext_lazy as _

from campaigns.models import Contact, Message
from providers.models import Channel, ProviderAccount


class WebhookEvent(models.Model):
    """Every inbound provider request, stored raw before anything else happens to it."""

    class Outcome(models.TextChoices):
        RECEIVED = "received", _("Received")
        APPLIED = "applied", _("Applied")
        DUPLICATE = "duplicate", _("Duplicate")
        UNMATCHED = "unmatched", _("Unmatched (waiting for its message)")
        IGNORED = "ignored", _("Ignored (unsupported)")
        REJECTED = "rejected", _("Rejected (malformed)")
        EXPIRED = "expired", _("Expired (never matched)")
        # The database refused what this event would write (its detail says why); the others of
        # its batch were applied. Tried again by the every-minute tick a few times (the error
        # may have been passing), then left for a person ("Re-apply" in the admin).
        FAILED = "failed", _("Failed (could not be applied)")

    # No database constraints on the two foreign keys (Django still cascades and nulls them):
    # at a thousand callbacks a second, the per-row constraint triggers, and the KEY SHARE lock
    # every insert took on the one account row, were a measurable part of the intake's cost.
    account = models.ForeignKey(
        ProviderAccount,
        on_delete=models.CASCADE,
        related_name="webhook_events",
        verbose_name=_("provider account"),
        db_constraint=False,
    )
    method = models.CharField(_("method"), max_length=8)
    query = models.TextField(_("query string"), blank=True)
    body = models.TextField(_("body"), blank=True)
    headers = models.JSONField(_("headers"), default=dict, blank=True)
    remote_addr = models.GenericIPAddressField(_("from"), null=True, blank=True)
    received_at = models.DateTimeField(_("received"), auto_now_add=True, db_index=True)
    # The provider's event id or a hash of the meaningful fields; unique per account.
    dedupe_key = models.CharField(_("dedupe key"), max_length=120, blank=True)
    outcome = models.CharField(
        _("outcome"),
        max_length=16,
        choices=Outcome.choices,
        default=Outcome.RECEIVED,
        # Indexed by webhook_outcome_idx (outcome, received_at); a second index on outcome
        # alone only cost every insert and update.
    )
    outcome_detail = models.CharField(_("detail"), max_length=500, blank=True)
    message = models.ForeignKey(
        Message,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("message"),
        db_constraint=False,
    )
    processed_at = models.DateTimeField(_("processed"), null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)

    class Meta:
        verbose_name = _("webhook event")
        verbose_name_plural = _("webhook events")
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "dedupe_key"],
                name="uniq_webhook_dedupe",
                condition=~models.Q(dedupe_key=""),
            )
        ]
        indexes = [
            models.Index(fields=["outcome", "received_at"], name="webhook_outcome_idx"),
            # The applier's queue: the events still to apply, oldest first. Partial, so it
            # holds only the few rows waiting; through webhook_outcome_idx, every batch and every
            # "anything left?" look revisited the heap pages of all the rows applied since the
            # last vacuum (their dead 'received' entries): 55 ms for one empty look after a
            # burst of 70,000 callbacks. An index scan here also marks those entries dead.
            models.Index(
                fields=["id"],
                name="webhook_received_queue_idx",
                condition=models.Q(outcome="received"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.account_id} {self.method} {self.received_at:%Y-%m-%d %H:%M:%S}"


class InboundMessage(models.Model):
    """A reply or conversation message from a recipient."""

    class OptOutState(models.TextChoices):
        NONE = "", _("Not an opt-out")
        APPLIED = "applied", _("Opt-out applied")
        # An opt-out keyword from a sender we cannot tie to a contact (no phone in the payload,
        # no earlier message from that conversation): kept visible until a person decides, and
        # applied by itself if the sender is tied to a contact later.
        NOT_MATCHED = "not_matched", _("Opt-out request not matched")

    account = models.ForeignKey(
        ProviderAccount,
        on_delete=models.CASCADE,
        related_name="inbound_messages",
        verbose_name=_("provider account"),
    )
    channel = models.ForeignKey(
        Channel,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("channel"),
    )
    contact = models.ForeignKey(
        Contact,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="inbound_messages",
        verbose_name=_("contact"),
    )
    sender = models.CharField(_("sender"), max_length=100)
    sender_name = models.CharField(_("sender name"), max_length=200, blank=True)
    phone = models.CharField(_("phone"), max_length=16, blank=True)
    text = models.TextField(_("text"), blank=True)
    provider_message_id = models.CharField(_("provider message id"), max_length=100, blank=True)
    opted_out = models.BooleanField(_("opt-out keyword"), default=False)
    opt_out_state = models.CharField(
        _("opt-out"), max_length=16, choices=OptOutState.choices, blank=True, default=""
    )
    event = models.ForeignKey(
        WebhookEvent, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    received_at = models.DateTimeField(_("received"), auto_now_add=True)

    class Meta:
        verbose_name = _("inbound message")
        verbose_name_plural = _("inbound messages")
        ordering = ["-received_at"]
        indexes = [
            # A reply without a phone is tied to its contact through the same sender's earlier
            # messages (webhooks.inbound).
            models.Index(fields=["account", "sender"], name="inbound_sender_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.sender}: {self.text[:40]}"


class SenderContact(models.Model):
    """Who a provider's sender id is (an MMP conversation id, a Zalo user id), once known.

    Learned from a reply that carried a phone, and from a Zalo delivery receipt that named its
    recipient for a message we sent; used for the replies that carry no phone (MMP's
    conversation webhook may send `"phone": ""`), so that an opt-out keyword reaches its contact.
    """

    class Source(models.TextChoices):
        REPLY = "reply", _("A reply with a phone number")
        RECEIPT = "receipt", _("A delivery receipt of a message we sent")

    account = models.ForeignKey(
        ProviderAccount,
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("provider account"),
    )
    sender = models.CharField(_("sender"), max_length=100)
    contact = models.ForeignKey(
        Contact, on_delete=models.CASCADE, related_name="+", verbose_name=_("contact")
    )
    source = models.CharField(_("learned from"), max_length=16, choices=Source.choices)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("reply sender")
        verbose_name_plural = _("reply senders")
        constraints = [
            models.UniqueConstraint(fields=["account", "sender"], name="uniq_sender_contact")
        ]

    def __str__(self) -> str:
        return f"{self.sender} -> {self.contact_id}"
