"""Consent records and the audit trail.

ConsentRecord is the history (append-only: a withdrawal is a new row, never an edit); ConsentState
is the current answer per (contact, channel kind, purpose), kept by the same service in the same
transaction, so that "has this contact consented to advertising on SMS?" is one indexed lookup on a
table with one row per contact and channel instead of "the latest of N history rows" over millions.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from campaigns.models import Contact, ContactImport, OptOut


class ConsentPurpose(models.TextChoices):
    ADVERTISING = "advertising", _("Advertising")
    CUSTOMER_CARE = "customer_care", _("Customer care")


class ConsentSource(models.TextChoices):
    IMPORT = "import", _("Import")
    FORM = "form", _("Form")
    API = "api", _("API")
    INBOUND = "inbound", _("Inbound message")
    ADMIN = "admin", _("Admin")
    # A withdrawal from an uploaded opt-out file, or one the provider reported (its own STOP
    # handling): opt-out paths that are none of the above.
    FILE = "file", _("Opt-out file")
    PROVIDER = "provider", _("Provider")


class ConsentRecord(models.Model):
    """One consent given or withdrawn: what (purpose), for which channel kind ("all" as opt-outs
    use it), when, from where and by whom. Never edited; the current answer is ConsentState."""

    ALL = OptOut.ALL
    CHANNEL_CHOICES = OptOut.CHANNEL_CHOICES

    # No database constraint, and no index of its own ((contact, at) below serves lookups): an
    # import records a consent per row of a million-row file, and a per-row foreign-key trigger
    # costs more than the insert (as for ContactListMembership). The ORM still cascades.
    contact = models.ForeignKey(
        Contact,
        on_delete=models.CASCADE,
        related_name="consent_records",
        verbose_name=_("contact"),
        db_constraint=False,
        db_index=False,
    )
    channel_kind = models.CharField(_("channel"), max_length=16, choices=CHANNEL_CHOICES)
    purpose = models.CharField(_("purpose"), max_length=16, choices=ConsentPurpose.choices)
    granted = models.BooleanField(_("granted"), help_text=_("False: a withdrawal."))
    at = models.DateTimeField(_("at"))  # no index: the admin lists by id (insertion order)
    source = models.CharField(_("source"), max_length=16, choices=ConsentSource.choices)
    contact_import = models.ForeignKey(
        ContactImport,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("import"),
        db_constraint=False,  # written a million at a time by imports (as contact above)
    )
    # Kept apart from the import: the import row (and its file) may be purged by retention, the
    # evidence of where the consent came from stays.
    file_name = models.CharField(_("file name"), max_length=255, blank=True)
    note = models.CharField(_("note"), max_length=500, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("recorded by"),
    )
    actor_label = models.CharField(_("recorded by (name)"), max_length=150, blank=True)

    class Meta:
        verbose_name = _("consent record")
        verbose_name_plural = _("consent records")
        indexes = [models.Index(fields=["contact", "at"], name="privacy_consent_contact_at")]

    def __str__(self) -> str:
        return f"{self.contact_id}:{self.channel_kind}:{self.purpose}:{self.granted}"


class ConsentState(models.Model):
    """The current consent of a contact for one channel kind and purpose: the last record wins.
    Written only by campaigns.privacy.services, with the record that changed it."""

    # As ConsentRecord.contact: no per-row trigger; the unique (contact, kind, purpose) index
    # serves lookups by contact.
    contact = models.ForeignKey(
        Contact,
        on_delete=models.CASCADE,
        related_name="consent_states",
        verbose_name=_("contact"),
        db_constraint=False,
        db_index=False,
    )
    channel_kind = models.CharField(
        _("channel"), max_length=16, choices=ConsentRecord.CHANNEL_CHOICES
    )
    purpose = models.CharField(_("purpose"), max_length=16, choices=ConsentPurpose.choices)
    granted = models.BooleanField(_("granted"))
    at = models.DateTimeField(_("since"))
    source = models.CharField(_("source"), max_length=16, choices=ConsentSource.choices)

    class Meta:
        verbose_name = _("consent")
        verbose_name_plural = _("consents")
        constraints = [
            models.UniqueConstraint(
                fields=["contact", "channel_kind", "purpose"], name="uniq_consent_state"
            )
        ]
        indexes = [
            # The send path's question: "which of these contacts consented to advertising on
            # this channel kind (or all)?" A partial index holds only the granted rows.
            models.Index(
                fields=["channel_kind", "contact"],
                name="privacy_adv_granted",
                condition=models.Q(purpose="advertising", granted=True),
            )
        ]

    def __str__(self) -> str:
        return f"{self.contact_id}:{self.channel_kind}:{self.purpose}:{self.granted}"


class AuditAction(models.TextChoices):
    """Stable codes: searched, exported and kept for years; never rename one, add new ones."""

    CONTACT_VIEW = "contact.view", _("Viewed a contact")
    EXPORT_CONTACTS = "export.contacts", _("Exported contacts")
    EXPORT_CAMPAIGN = "export.campaign", _("Exported campaign results")
    EXPORT_VALIDATION = "export.validation", _("Exported failing parameter rows")
    CONTACT_ERASE = "contact.erase", _("Erased a person")
    SUBJECT_EXPORT = "subject.export", _("Exported a person's data")
    PROVIDER_ACCOUNT_CHANGE = "provider_account.change", _("Changed a provider account")
    CAMPAIGN_SEND = "campaign.send", _("Sent a campaign")
    CAMPAIGN_SCHEDULE = "campaign.schedule", _("Scheduled a campaign")
    CAMPAIGN_CANCEL = "campaign.cancel", _("Cancelled a campaign")
    API_KEY_CREATE = "api_key.create", _("Created an API key")


class AuditEvent(models.Model):
    """Who did what to which personal data, when, from where. Append-only: the admin refuses add,
    change and delete; only the retention purge (LOA_AUDIT_RETENTION_DAYS) removes rows."""

    at = models.DateTimeField(_("at"), db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("user"),
        db_constraint=False,  # a deleted user's events stay, with their name in actor_label
    )
    # The user's name at the time (or "system", "api:<key name>"): survives the user's deletion.
    actor_label = models.CharField(_("actor"), max_length=150, blank=True, db_index=True)
    action = models.CharField(_("action"), max_length=64, choices=AuditAction.choices)
    target_type = models.CharField(_("target type"), max_length=64, blank=True)
    target_id = models.CharField(_("target id"), max_length=64, blank=True)
    target_label = models.CharField(_("target"), max_length=255, blank=True)
    rows = models.PositiveBigIntegerField(_("rows"), null=True, blank=True)
    ip_address = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    detail = models.JSONField(_("detail"), default=dict, blank=True)

    class Meta:
        verbose_name = _("audit event")
        verbose_name_plural = _("audit trail")
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["action", "at"], name="privacy_audit_action_at"),
            models.Index(fields=["target_type", "target_id"], name="privacy_audit_target"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_label} {self.action}"


# ---- erasure (privacy2) -------------------------------------------------------------------------


class ErasedPhone(models.Model):
    """A phone erased on request, kept only as its keyed HMAC (campaigns.privacy.erasure.phone_token):
    the number cannot be read back, but the same number imported again is recognised and refused
    ("erased on request") unless a new consent lifts the suppression."""

    token = models.CharField(_("token"), max_length=64, unique=True, editable=False)
    erased_at = models.DateTimeField(_("erased at"), auto_now_add=True)
    # The person came back and consented again (a form, the API): imports take the number again.
    consent_again_at = models.DateTimeField(_("consented again at"), null=True, blank=True)

    class Meta:
        verbose_name = _("erased phone")
        verbose_name_plural = _("erased phones")

    def __str__(self) -> str:
        return self.token[:12]


class ErasureJob(models.Model):
    """A bulk erase from an uploaded file of phones. The file is read when uploaded and never
    stored: the job keeps the ids of the contacts found and the tokens of the numbers not found
    (both suppressed from later imports), and counts."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting for confirmation")
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        COMPLETED = "completed", _("Completed")
        FAILED = "failed", _("Failed")

    original_name = models.CharField(_("file name"), max_length=255)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.PENDING
    )
    rows = models.PositiveIntegerField(_("rows"), default=0)
    invalid_rows = models.PositiveIntegerField(_("rows without a valid phone"), default=0)
    contact_ids = models.JSONField(default=list, blank=True, editable=False)
    absent_tokens = models.JSONField(default=list, blank=True, editable=False)
    found_count = models.PositiveIntegerField(_("contacts found"), default=0)
    absent_count = models.PositiveIntegerField(_("numbers not in Loa"), default=0)
    erased_count = models.PositiveIntegerField(_("contacts erased"), default=0)
    report = models.JSONField(_("report"), default=list, blank=True)
    error_message = models.TextField(_("error"), blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("uploaded by"),
    )
    created_at = models.DateTimeField(_("uploaded at"), auto_now_add=True)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        verbose_name = _("bulk erase")
        verbose_name_plural = _("bulk erases")
        ordering = ["-created_at"]
        permissions = [
            ("erase_person", _("Can erase a person's data")),
            ("export_person", _("Can export a person's data")),
        ]

    def __str__(self) -> str:
        return f"{self.original_name} ({self.created_at:%Y-%m-%d %H:%M})"
