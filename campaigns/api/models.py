"""The transactional API's own records: applications, their keys, the messages sent through them
and the idempotency answers. A message itself lives in the engine's tables (a one-recipient
Campaign of origin "api" and its Message); ApiMessage only ties it to the application."""

import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from campaigns.models import Campaign, Message
from providers import crypto
from providers.models import Channel

KEY_PREFIX = "loa_"
# How many leading characters of a key are stored in clear (ApiKey.prefix) to find it.
PREFIX_LENGTH = 12


class ApiApplication(models.Model):
    """A client system (a shop, a bank) calling the API; owns keys, messages, callback URL."""

    name = models.CharField(_("name"), max_length=200, unique=True)
    active = models.BooleanField(_("active"), default=True)
    channels = models.ManyToManyField(
        Channel,
        blank=True,
        related_name="api_applications",
        verbose_name=_("channels"),
        help_text=_("Channels this application may send on. Empty: every active channel."),
    )
    callback_url = models.URLField(
        _("status callback URL"),
        blank=True,
        help_text=_("Every status change of this application's messages is POSTed here, signed."),
    )
    # Encrypted JSON {"secret": ...}: the callback signer needs the plaintext (HMAC-SHA256).
    callback_secret_encrypted = models.TextField(editable=False, blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("API application")
        verbose_name_plural = _("API applications")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def callback_secret(self) -> str:
        return crypto.decrypt_json(self.callback_secret_encrypted).get("secret", "")

    @callback_secret.setter
    def callback_secret(self, value: str) -> None:
        self.callback_secret_encrypted = crypto.encrypt_json({"secret": value} if value else {})


class ApiKey(models.Model):
    class Scope(models.TextChoices):
        SEND = "send", _("Send messages")
        READ_STATUS = "read_status", _("Read message status")
        MANAGE_CONTACTS = "manage_contacts", _("Manage contacts")
        READ_TEMPLATES = "read_templates", _("Read templates")

    application = models.ForeignKey(
        ApiApplication,
        on_delete=models.CASCADE,
        related_name="keys",
        verbose_name=_("application"),
    )
    name = models.CharField(_("name"), max_length=200)
    # The first characters of the key, shown so an operator can tell keys apart; not a secret.
    prefix = models.CharField(_("prefix"), max_length=16, editable=False, db_index=True)
    # sha256 hex of the whole key; the key itself is shown once and never stored.
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    scopes = models.JSONField(_("scopes"), default=list, blank=True)
    channels = models.ManyToManyField(
        Channel,
        blank=True,
        related_name="+",
        verbose_name=_("allowed channels"),
        help_text=_("Empty: every channel of the application."),
    )
    allowed_ips = models.TextField(
        _("IP allow-list"),
        blank=True,
        help_text=_("One address or network (CIDR) per line. Empty: any address."),
    )
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True, editable=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @staticmethod
    def hash(raw: str) -> str:
        return hashlib.sha256(raw.encode()).hexdigest()

    @staticmethod
    def generate() -> str:
        return KEY_PREFIX + secrets.token_urlsafe(32)

    @property
    def is_active(self) -> bool:
        now = timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


class ApiMessage(models.Model):
    """One message sent through the API: the one-recipient campaign it lives in, and its message."""

    application = models.ForeignKey(
        ApiApplication,
        on_delete=models.PROTECT,
        related_name="messages",
        verbose_name=_("application"),
    )
    key = models.ForeignKey(
        ApiKey,
        null=True,
        on_delete=models.SET_NULL,
        related_name="messages",
        verbose_name=_("API key"),
    )
    campaign = models.OneToOneField(
        Campaign,
        on_delete=models.CASCADE,
        related_name="api_message",
        verbose_name=_("campaign"),
    )
    # No foreign-key constraint (the unique index stays), as for MessageAttempt.message: its
    # deferred trigger probed this table for every message the retention purge deleted, at each
    # slice's COMMIT (15 of the 18 s a month of 3,000,000 messages took). The ORM still cascades,
    # and the purge deletes these rows first (purge_old_data._related_delete).
    message = models.OneToOneField(
        Message,
        on_delete=models.CASCADE,
        related_name="api_message",
        verbose_name=_("message"),
        db_constraint=False,
    )
    client_reference = models.CharField(_("client reference"), max_length=100, blank=True)
    # The time of the 202 (its intake row's), not of the worker that made the campaign: given by
    # campaigns.api.intake, hence a default rather than auto_now_add.
    created_at = models.DateTimeField(
        _("created"), default=timezone.now, editable=False, db_index=True
    )

    class Meta:
        verbose_name = _("API message")
        verbose_name_plural = _("API messages")
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["application", "client_reference"], name="api_msg_app_ref_idx"),
            models.Index(fields=["application", "created_at"], name="api_msg_app_created_idx"),
        ]

    def __str__(self) -> str:
        return f"API message {self.pk}"


class ApiIntake(models.Model):
    """One accepted POST of a message, written by the request in one statement (campaigns.api.
    intake): what was checked and must be sent. A worker task makes its campaign, message and
    ApiMessage (whose id is this row's id: the id the 202 answered) in batches.

    The Idempotency-Key of a single POST lives here (one unique index answers "new or replay?"
    in the same statement that accepts). channel_id and template_id are plain integers, not
    foreign keys: the request already checked them (through its cache), and a foreign key's
    check is one more lookup per accepted request; the worker refuses a row whose channel or
    template vanished meanwhile (state failed, with its error)."""

    class State(models.TextChoices):
        PENDING = "pending", _("Waiting for the intake worker")
        MADE = "made", _("Message made")
        FAILED = "failed", _("Failed in the intake worker")

    application = models.ForeignKey(ApiApplication, on_delete=models.CASCADE, related_name="+")
    key = models.ForeignKey(ApiKey, null=True, on_delete=models.SET_NULL, related_name="+")
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)
    body_sha256 = models.CharField(max_length=64, blank=True)
    channel_id = models.BigIntegerField()
    template_id = models.BigIntegerField(null=True, blank=True)
    phone = models.CharField(max_length=32)
    template_data = models.JSONField(default=dict, blank=True)
    content = models.TextField(blank=True)
    client_reference = models.CharField(max_length=100, blank=True)
    promotion = models.BooleanField(default=False)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("API intake row")
        verbose_name_plural = _("API intake rows")
        constraints = [
            models.UniqueConstraint(
                fields=["application", "idempotency_key"],
                condition=models.Q(idempotency_key__isnull=False),
                name="api_intake_app_key_uniq",
            )
        ]
        indexes = [
            # The worker's query: pending rows, oldest first; made rows leave the index.
            models.Index(
                fields=["id"], name="api_intake_pending_idx", condition=models.Q(state="pending")
            ),
            models.Index(fields=["application", "client_reference"], name="api_intake_ref_idx"),
            # The purge's query: made rows past the idempotency window (the request inserts
            # pending rows, which this index does not hold).
            models.Index(
                fields=["created_at"], name="api_intake_made_idx", condition=models.Q(state="made")
            ),
        ]

    def __str__(self) -> str:
        return f"API intake {self.pk} ({self.state})"


class IdempotencyRecord(models.Model):
    """The first answer to an Idempotency-Key, replayed for the same body (409 for another)."""

    application = models.ForeignKey(ApiApplication, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    body_sha256 = models.CharField(max_length=64)
    # Null while the first request with this key is still being answered.
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["application", "key"], name="api_idem_app_key_uniq")
        ]

    def __str__(self) -> str:
        return f"{self.application_id}:{self.key}"


# ---- status callbacks (services in campaigns/api/callbacks/) -------------------------------------


class CallbackDelivery(models.Model):
    class Event(models.TextChoices):
        STATUS = "message.status", _("Status changed")
        FEE = "message.fee", _("Fee known")

    class State(models.TextChoices):
        # Derived from the times below, for the filter and the badge (never stored).
        PENDING = "pending", _("Waiting to be sent")
        RETRYING = "retrying", _("Retrying")
        DELIVERED = "delivered", _("Delivered")
        GIVEN_UP = "given_up", _("Given up")

    application = models.ForeignKey(
        ApiApplication,
        on_delete=models.CASCADE,
        related_name="callback_deliveries",
        verbose_name=_("application"),
    )
    api_message = models.ForeignKey(
        ApiMessage,
        on_delete=models.CASCADE,
        related_name="callback_deliveries",
        verbose_name=_("API message"),
    )
    event = models.CharField(_("event"), max_length=16, choices=Event.choices)
    status = models.CharField(_("status"), max_length=16)
    payload = models.JSONField(_("payload"), default=dict)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    last_attempt_at = models.DateTimeField(_("last attempt"), null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(
        _("last HTTP status"), null=True, blank=True
    )
    last_error = models.CharField(_("last error"), max_length=300, blank=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    given_up_at = models.DateTimeField(_("given up at"), null=True, blank=True)
    # Retries stop here: 24 hours after the change (services.RETRY_FOR), or after a resend.
    retry_until = models.DateTimeField(_("retried until"))
    created_at = models.DateTimeField(_("created"), db_index=True)

    class Meta:
        verbose_name = _("status callback")
        verbose_name_plural = _("status callbacks")
        ordering = ["-id"]
        indexes = [
            # The pump's query: what is due, oldest first. Delivered and given-up rows leave it.
            models.Index(
                fields=["next_attempt_at", "id"],
                name="api_cb_due_idx",
                condition=models.Q(delivered_at__isnull=True, given_up_at__isnull=True),
            ),
            models.Index(fields=["application", "-id"], name="api_cb_app_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_event_display()} {self.status} #{self.pk}"

    @property
    def state(self) -> str:
        if self.delivered_at:
            return self.State.DELIVERED
        if self.given_up_at:
            return self.State.GIVEN_UP
        return self.State.RETRYING if self.attempts else self.State.PENDING

    def get_state_display(self) -> str:
        return str(self.State(self.state).label)
