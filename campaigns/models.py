from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils.translation import gettext_lazy as _

from campaigns import notes
from campaigns.segment_rules import segment_rules_errors
from providers.models import Channel, ChannelKind
from providers.shared.phones import COUNTRY_CHOICES, DEFAULT_COUNTRY, format_local
from templates_app.models import Template


class Contact(models.Model):
    # Unique through Meta.constraints, not unique=True: on PostgreSQL unique=True also adds a
    # second "varchar_pattern_ops" index that every imported row would pay for; phone prefix
    # searches use a range on the unique index instead (campaigns.contacts.search.contact_search).
    phone = models.CharField(_("phone"), max_length=16, help_text=_("Normalized: 84xxxxxxxxx"))
    name = models.CharField(_("name"), max_length=200, blank=True)
    attributes = models.JSONField(_("attributes"), default=dict, blank=True)
    # Lower-cased, diacritics removed: "nguyen" finds "Nguyễn". Searched with `contains`, so a
    # B-tree is useless here: on PostgreSQL migration 0003 adds a pg_trgm GIN index instead.
    search_text = models.CharField(max_length=255, blank=True, editable=False)
    # Tag keys (campaigns.segment_rules.fold_key: "vip", "khach cu"); Tag holds how each is
    # written. A JSON list, not a through table: "has tag" is `tags @> '["vip"]'`, answered by a
    # GIN index on PostgreSQL (migration 0016) without a join, and an import writes the tags in
    # the contact's own row. db_default: raw INSERTs that leave the column out (imports of files
    # without tags, fixtures) get an empty list.
    tags = models.JSONField(_("tags"), default=list, blank=True, db_default=[])
    # Consent evidence (Decree 13/2023): where and when this contact came from.
    source = models.CharField(_("source"), max_length=255, blank=True)
    # No database constraint or index: a million-row import would otherwise spend more time in
    # per-row foreign-key triggers than in the import itself (measured, see importing.py).
    # Django still applies SET_NULL when an import is deleted.
    source_import = models.ForeignKey(
        "ContactImport",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("source import"),
        db_constraint=False,
        db_index=False,
    )
    source_row = models.PositiveIntegerField(_("source row"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("contact")
        verbose_name_plural = _("contacts")
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["phone"],
                name="uniq_contact_phone",
                violation_error_message=_("A contact with this phone already exists."),
            )
        ]

    def __str__(self) -> str:
        # What people read (select boxes, raw-id labels, "contact" columns): the local form.
        phone = format_local(self.phone)
        return f"{self.name} ({phone})" if self.name else phone

    @property
    def is_erased(self) -> bool:
        """Erased on request: the phone holds the token campaigns.privacy.erasure wrote ("x" and
        15 characters; no phone starts with a letter)."""
        return len(self.phone or "") == 16 and self.phone[0] == "x"

    # Attribute keys an import gives an email column ("Email", "E-mail", "Địa chỉ email", "Mail":
    # campaigns.contacts.importing.mapping.slugify_header), in the order they are read.
    EMAIL_ATTRIBUTES = ("email", "e_mail", "dia_chi_email", "mail")

    @classmethod
    def email_of(cls, attributes: dict | None) -> str:
        """The contact's email address from its attributes ("" when it has none)."""
        if not isinstance(attributes, dict):
            return ""
        for key in cls.EMAIL_ATTRIBUTES:
            value = str(attributes.get(key) or "").strip()
            if value:
                return value
        return ""


class OptOut(models.Model):
    """A contact's refusal of one channel kind (or all). Honoured at send time; no import clears it."""

    ALL = "all"
    CHANNEL_CHOICES = [(ALL, _("All channels")), *ChannelKind.choices]

    class Source(models.TextChoices):
        ADMIN = "admin", _("Admin")
        FILE = "file", _("Opt-out file")
        REPLY = "reply", _("Inbound reply")
        PROVIDER = "provider", _("Provider")
        API = "api", _("API")

    contact = models.ForeignKey(
        Contact, on_delete=models.CASCADE, related_name="opt_outs", verbose_name=_("contact")
    )
    channel_kind = models.CharField(
        _("channel"), max_length=16, choices=CHANNEL_CHOICES, default=ALL
    )
    reason = models.CharField(_("reason"), max_length=300, blank=True)
    source = models.CharField(
        _("source"), max_length=16, choices=Source.choices, default=Source.ADMIN
    )
    created_at = models.DateTimeField(_("opted out at"), auto_now_add=True)

    class Meta:
        verbose_name = _("opt-out")
        verbose_name_plural = _("opt-outs")
        constraints = [
            models.UniqueConstraint(fields=["contact", "channel_kind"], name="uniq_optout")
        ]

    def __str__(self) -> str:
        return f"{self.contact_id}:{self.channel_kind}"


class ContactList(models.Model):
    name = models.CharField(_("name"), max_length=200, unique=True)
    description = models.TextField(_("description"), blank=True)
    tags = models.JSONField(_("tags"), default=list, blank=True)
    contacts = models.ManyToManyField(
        Contact, through="ContactListMembership", related_name="lists"
    )
    contact_count = models.PositiveIntegerField(_("contacts"), default=0, editable=False)
    # Where a phone written without its calling code (0971234567, valid in both countries) is
    # read when an import into this list does not choose.
    default_country = models.CharField(
        _("read local numbers as"),
        max_length=2,
        choices=COUNTRY_CHOICES,
        default=DEFAULT_COUNTRY,
        help_text=_(
            "The country of phones written without +84/+855 (like 0971 234 567) in imports "
            "into this list, unless the import chooses another."
        ),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("contact list")
        verbose_name_plural = _("contact lists")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ContactListMembership(models.Model):
    # Written a million rows at a time by imports: no database foreign-key constraints (each
    # would run a trigger per row: 6 s per 176k rows measured on PostgreSQL 15). Integrity comes
    # from the writers: the ORM cascades deletes, and the import inserts only contact ids it has
    # just joined from the contacts table. The (list, contact) unique index serves lookups by list.
    contact_list = models.ForeignKey(
        ContactList,
        on_delete=models.CASCADE,
        related_name="memberships",
        db_constraint=False,
        db_index=False,
    )
    contact = models.ForeignKey(
        Contact, on_delete=models.CASCADE, related_name="memberships", db_constraint=False
    )
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("list membership")
        verbose_name_plural = _("list memberships")
        constraints = [
            models.UniqueConstraint(fields=["contact_list", "contact"], name="uniq_membership")
        ]

    def __str__(self) -> str:
        # What the contact page's list rows are titled: the list and the contact, not their ids.
        return f"{self.contact_list} · {self.contact}"


class ContactImport(models.Model):
    class Status(models.TextChoices):
        UPLOADED = "uploaded", _("Uploaded")
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        COMPLETED = "completed", _("Completed")
        FAILED = "failed", _("Failed")

    class MergePolicy(models.TextChoices):
        KEEP = "keep", _("Keep existing values")
        OVERWRITE = "overwrite", _("Overwrite with the file's values")
        FILL = "fill", _("Fill blanks only")

    file = models.FileField(_("file"), upload_to="imports/%Y/%m/")
    original_name = models.CharField(_("file name"), max_length=255)
    contact_list = models.ForeignKey(
        ContactList, on_delete=models.PROTECT, related_name="imports", verbose_name=_("list")
    )
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.UPLOADED
    )
    # What a running import is doing now (reading the file, then saving in one statement).
    phase = models.CharField(_("phase"), max_length=16, blank=True)
    encoding = models.CharField(_("encoding"), max_length=32, blank=True)
    delimiter = models.CharField(_("delimiter"), max_length=4, blank=True)
    mapping = models.JSONField(_("column mapping"), default=dict, blank=True)
    merge_policy = models.CharField(
        _("merge policy"), max_length=16, choices=MergePolicy.choices, default=MergePolicy.FILL
    )
    total_rows = models.PositiveIntegerField(_("rows"), default=0)
    processed_rows = models.PositiveIntegerField(_("processed"), default=0)
    imported_count = models.PositiveIntegerField(_("imported"), default=0)
    updated_count = models.PositiveIntegerField(_("updated"), default=0)
    duplicate_count = models.PositiveIntegerField(_("duplicates"), default=0)
    invalid_count = models.PositiveIntegerField(_("invalid"), default=0)
    legacy_rewritten_count = models.PositiveIntegerField(_("legacy numbers rewritten"), default=0)
    # Where local-format phones are read; blank: the list's default_country.
    country = models.CharField(
        _("local numbers read as"), max_length=2, choices=COUNTRY_CHOICES, blank=True
    )
    # Rows taken (imported, merged or duplicate) per country of their phone: {"VN": n, "KH": m}.
    country_counts = models.JSONField(_("rows per country"), default=dict, blank=True)
    warnings = models.JSONField(_("warnings"), default=list, blank=True)
    # The uploader's language: the worker writes the warnings and the refused rows' reasons in
    # it (they are stored text, shown to that person).
    language = models.CharField(_("language"), max_length=16, blank=True)
    error_report = models.FileField(
        _("error report"), upload_to="imports/reports/%Y/%m/", blank=True
    )
    error_message = models.TextField(_("error"), blank=True)
    # "These contacts consented to advertising on <channel kinds>": recorded for every contact
    # of the file when the import completes (campaigns.privacy, one statement per kind).
    consent_channels = models.JSONField(_("advertising consent on"), default=list, blank=True)
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
        verbose_name = _("contact import")
        verbose_name_plural = _("contact imports")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.original_name

    @property
    def progress_percent(self) -> int:
        if not self.total_rows:
            return 100 if self.status == self.Status.COMPLETED else 0
        return min(100, int(100 * self.processed_rows / self.total_rows))


class Tag(models.Model):
    """A contact tag as people write it ("VIP"), under the key contacts store (Contact.tags)."""

    key = models.CharField(max_length=50, unique=True, editable=False)
    name = models.CharField(_("name"), max_length=50)

    class Meta:
        verbose_name = _("tag")
        verbose_name_plural = _("tags")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class AttributeDefinition(models.Model):
    """A contact attribute declared with a type: imports convert its cells to one stored form
    (campaigns.attribute_types: dates ISO "YYYY-MM-DD", lunar dates "YYYY-MM-DD[L]", numbers
    plain), the segment builder offers the type's comparisons, the wizard formats dates.
    An attribute without a definition stays text, as before types existed."""

    class Type(models.TextChoices):
        TEXT = "text", _("Text")
        NUMBER = "number", _("Number")
        DATE = "date", _("Date")
        LUNAR_DATE = "lunar_date", _("Lunar date (Vietnamese calendar)")

    class DateFormat(models.TextChoices):
        DMY = "dmy", _("dd/mm/yyyy")
        ISO = "iso", _("yyyy-mm-dd (ISO)")
        EXCEL = "excel", _("Excel serial date (e.g. 32909)")

    key = models.CharField(
        _("key"),
        max_length=64,
        unique=True,
        help_text=_(
            "The attribute key as contacts store it (the import's column key, e.g. “ngay_sinh”)."
        ),
    )
    label = models.CharField(_("label"), max_length=100, blank=True)
    type = models.CharField(_("type"), max_length=12, choices=Type.choices, default=Type.TEXT)
    date_format = models.CharField(
        _("date format in files"),
        max_length=8,
        choices=DateFormat.choices,
        default=DateFormat.DMY,
        help_text=_("How a date column arrives in imports (dates only). Stored as yyyy-mm-dd."),
    )
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    # The last conversion of the values contacts already held (the admin's action): what it did.
    converted_at = models.DateTimeField(_("existing values converted"), null=True, blank=True)
    conversion_note = models.CharField(_("conversion result"), max_length=300, blank=True)

    class Meta:
        verbose_name = _("attribute type")
        verbose_name_plural = _("attribute types")
        ordering = ["key"]

    def __str__(self) -> str:
        return self.label or self.key


class Segment(models.Model):
    """Contacts chosen by attribute rules, optionally within some lists (see contacts.py)."""

    class Match(models.TextChoices):
        ALL = "all", _("All rules match")
        ANY = "any", _("Any rule matches")

    name = models.CharField(_("name"), max_length=200, unique=True)
    description = models.TextField(_("description"), blank=True)
    contact_lists = models.ManyToManyField(
        ContactList,
        blank=True,
        related_name="segments",
        verbose_name=_("contact lists"),
        help_text=_("Leave empty to choose among all contacts."),
    )
    # [{"attribute": "city", "op": "eq", "value": "Hà Nội"}, ...]
    rules = models.JSONField(
        _("rules"),
        default=list,
        blank=True,
        help_text=_(
            'A list of rules, e.g. [{"attribute": "city", "op": "contains", "value": "ha noi"}]; '
            'a group: {"match": "any", "rules": [...]}. Text comparisons ignore accents and case.'
        ),
    )
    match = models.CharField(_("match"), max_length=8, choices=Match.choices, default=Match.ALL)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("segment")
        verbose_name_plural = _("segments")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self):
        from django.core.exceptions import ValidationError

        errors = segment_rules_errors(self.rules)
        if errors:
            raise ValidationError({"rules": errors})


# ---- the segment index (PostgreSQL only; campaigns.contacts.segment_index) ---------------------
# Tables of migration 0026, not Django's to create or flush: triggers keep them on PostgreSQL
# (on SQLite they exist, empty and unread: segments count on the contacts there).
SEGMENT_INDEX_SLOTS = (
    [(f"t{i}", "text") for i in range(1, 13)]
    + [(f"n{i}", "number") for i in range(1, 7)]
    + [(f"d{i}", "date") for i in range(1, 7)]
)


class SegmentIndex(models.Model):
    """One narrow row per contact: its tags, its lists and, per slot, loa_fold / loa_number /
    loa_date of the attribute the slot holds. Written by triggers only."""

    contact_id = models.BigIntegerField(primary_key=True)
    tags = models.JSONField(default=list)
    lists = ArrayField(models.BigIntegerField(), default=list)

    class Meta:
        managed = False
        db_table = "campaigns_segmentindex"

    def __str__(self) -> str:
        return f"segment index row of contact {self.contact_id}"


for _col, _kind in SEGMENT_INDEX_SLOTS:
    SegmentIndex.add_to_class(
        _col, models.FloatField(null=True) if _kind == "number" else models.TextField(null=True)
    )
    if _kind == "date":  # m1 beside d1: the day of the year as month * 100 + day
        SegmentIndex.add_to_class(f"m{_col[1:]}", models.IntegerField(null=True))
del _col, _kind


class SegmentIndexSlot(models.Model):
    """Which attribute a column of the index holds, and whether every row has it yet."""

    col = models.CharField(max_length=4, primary_key=True)
    kind = models.CharField(max_length=8)  # text, number, date
    key = models.TextField(null=True)
    ready = models.BooleanField(default=False)
    assigned_at = models.DateTimeField(null=True)
    # The index's mark when the attribute was assigned: rows above it were written with it.
    covered_at_assign = models.BigIntegerField(default=0)

    class Meta:
        managed = False
        db_table = "campaigns_segmentindexslot"

    def __str__(self) -> str:
        return f"{self.col}: {self.kind} {self.key or '-'}"


class SegmentIndexState(models.Model):
    """The one row saying how far the index covers the contacts, and where a refill is."""

    id = models.SmallIntegerField(primary_key=True)
    # Every contact with an id up to this has its exact row; newer ones are counted on the
    # contacts until the build gets there.
    covered_upto = models.BigIntegerField(default=0)
    refill_cursor = models.BigIntegerField(null=True)  # a refill of new slots: the last id done
    refill_upto = models.BigIntegerField(null=True)  # ... and the last id it must rewrite
    refill_keys = models.JSONField(null=True)  # the slots' keys when that refill started
    refill_started_at = models.DateTimeField(null=True)
    updated_at = models.DateTimeField()

    class Meta:
        managed = False
        db_table = "campaigns_segmentindexstate"

    def __str__(self) -> str:
        return f"segment index: contacts up to id {self.covered_upto}"


class Campaign(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        SCHEDULED = "scheduled", _("Scheduled")
        RUNNING = "running", _("Running")
        # Every message was handed to the provider, and some outcomes are not known yet (a
        # timeout, a worker killed mid-call): Loa is asking the provider, and resends only what
        # provably never arrived. Completed comes when nothing is left to send or settle.
        SETTLING = "settling", _("Sent, confirming outcomes")
        PAUSED = "paused", _("Paused")
        COMPLETED = "completed", _("Completed")
        CANCELLED = "cancelled", _("Cancelled")
        FAILED = "failed", _("Failed")

    class Origin(models.TextChoices):
        # Where the campaign came from. The engine reads it, never the API package: an API send
        # is a one-recipient campaign whose message leaves before campaign traffic on the same
        # account (a share of the account's rate is reserved for it, LOA_API_RATE_SHARE).
        CAMPAIGN = "campaign", _("Campaign")
        API = "api", _("API")

    name = models.CharField(_("name"), max_length=200)
    origin = models.CharField(
        _("origin"),
        max_length=8,
        choices=Origin.choices,
        default=Origin.CAMPAIGN,
        db_default=Origin.CAMPAIGN,
        db_index=True,
    )
    channel = models.ForeignKey(
        Channel, on_delete=models.PROTECT, related_name="campaigns", verbose_name=_("channel")
    )
    template = models.ForeignKey(
        Template,
        on_delete=models.PROTECT,
        related_name="campaigns",
        verbose_name=_("template"),
        null=True,
        blank=True,
    )
    segments = models.ManyToManyField(
        Segment,
        related_name="campaigns",
        verbose_name=_("segments"),
        blank=True,
    )
    lists = models.ManyToManyField(
        ContactList, related_name="campaigns", verbose_name=_("contact lists"), blank=True
    )
    # param name -> {"source": "field"|"attribute"|"constant", "value": "...", "format": "..."}
    param_mapping = models.JSONField(_("parameter mapping"), default=dict, blank=True)
    content = models.TextField(
        _("content"), blank=True, help_text=_("Free text for SMS/Viber/email channels.")
    )
    subject = models.CharField(
        _("email subject"),
        max_length=200,
        blank=True,
        help_text=_("The subject of a free-text email; may contain {{placeholders}}."),
    )
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.DRAFT, db_index=True
    )
    status_reason = models.CharField(_("status reason"), max_length=500, blank=True)
    # The same reason as a message id and its arguments, shown in each reader's language
    # (campaigns.notes); empty for a reason a person typed.
    status_reason_i18n = models.JSONField(default=dict, blank=True, editable=False)
    scheduled_at = models.DateTimeField(_("send at"), null=True, blank=True)
    rate_limit = models.FloatField(_("rate limit (messages/s)"), null=True, blank=True)
    test_mode = models.BooleanField(
        _("provider test mode"),
        default=False,
        help_text=_("eSMS Sandbox / eTelecom development mode: nothing is delivered."),
    )

    class InvalidRecipients(models.TextChoices):
        EXCLUDE = "exclude", _("Exclude them and send to the others")
        BLOCK = "block", _("Do not send the campaign")

    # Recipients whose message breaks the template's parameter rules (campaigns.engine.validation):
    # excluded (their messages are skipped with the reason, never handed to the provider) or the
    # send is refused while any fails. Chosen in the wizard's review step.
    invalid_recipients = models.CharField(
        _("recipients that fail the template's rules"),
        max_length=8,
        choices=InvalidRecipients.choices,
        default=InvalidRecipients.EXCLUDE,
    )
    # Decree 91/2020: advertising only to people who agreed to receive it. On: recipients without
    # a current advertising consent for this channel kind (campaigns.privacy) are left out at
    # build and skipped at send time, as opted-out ones are. The wizard turns it on for
    # promotion templates; off for existing campaigns (they were built without it).
    requires_advertising_consent = models.BooleanField(
        _("only contacts with advertising consent for this channel"),
        default=False,
        help_text=_(
            "Send only to contacts who consented to advertising on this channel; the others are "
            "left out and counted."
        ),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    # Denormalized counters, updated with F() expressions on each transition (never COUNT(*)).
    total_count = models.PositiveIntegerField(_("recipients"), default=0)
    sent_count = models.PositiveIntegerField(_("sent"), default=0)
    delivered_count = models.PositiveIntegerField(_("delivered"), default=0)
    read_count = models.PositiveIntegerField(_("read"), default=0)
    failed_count = models.PositiveIntegerField(_("failed"), default=0)
    unknown_count = models.IntegerField(_("unknown"), default=0)
    skipped_count = models.PositiveIntegerField(_("skipped"), default=0)
    # Messages a cancel ended before they were handed to the provider.
    cancelled_count = models.PositiveIntegerField(_("cancelled"), default=0)
    # Messages of the fallback chain's steps built so far (campaigns.engine.fallback): the
    # counters above count them too, so the page's percentages are of total + fallback messages.
    fallback_count = models.PositiveIntegerField(_("fallback messages"), default=0)
    # Left out when the messages were built: opted out, over the frequency cap.
    excluded = models.JSONField(_("excluded at build"), default=dict, blank=True)
    cost = models.DecimalField(_("cost (VND)"), max_digits=14, decimal_places=2, default=0)
    # A provider outage as the engine saw it (campaigns.engine.outage): since when the provider
    # could not be reached (connection refused or timed out: the requests never arrived), the
    # last error's code (read through campaign_outage), and the connection failures in a row.
    # Cleared by the provider's next answer.
    outage_since = models.DateTimeField(_("provider unreachable since"), null=True, blank=True)
    outage_error = models.CharField(_("last connection error"), max_length=300, blank=True)
    outage_failures = models.PositiveIntegerField(default=0, editable=False)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("campaign")
        verbose_name_plural = _("campaigns")
        ordering = ["-created_at"]
        permissions = [("send_campaign", _("Can send, pause, resume and cancel campaigns"))]

    def __str__(self) -> str:
        return self.name

    @property
    def progress_percent(self) -> int:
        total = self.total_count + self.fallback_count  # a fallback chain's messages too
        if not total:
            return 0
        handled = min(
            total,
            self.sent_count + self.failed_count + self.skipped_count + self.cancelled_count,
        )
        return int(100 * handled / total)

    def reason_text(self) -> str:
        """The status reason in the reader's language (campaigns.notes)."""
        return notes.render(self.status_reason, self.status_reason_i18n)


class MessageContent(models.Model):
    """What a send says and through which channel, for what is not a campaign itself but makes
    or feeds one: a fallback step, an automation (each run's campaign copies these fields)."""

    channel = models.ForeignKey(
        Channel, on_delete=models.PROTECT, related_name="+", verbose_name=_("channel")
    )
    template = models.ForeignKey(
        Template,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("template"),
        null=True,
        blank=True,
    )
    # The same structure as Campaign.param_mapping: param -> {"source", "value", "format"}.
    param_mapping = models.JSONField(_("parameter mapping"), default=dict, blank=True)
    content = models.TextField(
        _("content"), blank=True, help_text=_("Free text for SMS/Viber/email channels.")
    )
    subject = models.CharField(_("email subject"), max_length=200, blank=True)

    class Meta:
        abstract = True


class FallbackStep(MessageContent):
    """One more step of a campaign's fallback chain (issue 19): when the message of the step
    before it cannot reach a recipient (a code the provider marks as "cannot reach", see
    providers/fallback.py) or has no delivery receipt after `receipt_minutes`, the same recipient
    gets this step's message, once (campaigns.engine.fallback). Position 1 follows the campaign's
    own channel (step 0), position 2 follows position 1."""

    MAX_STEPS = 2

    campaign = models.ForeignKey(
        Campaign,
        on_delete=models.CASCADE,
        related_name="fallback_steps",
        verbose_name=_("campaign"),
    )
    position = models.PositiveSmallIntegerField(_("step"))
    on_unreachable = models.BooleanField(
        _("when the channel cannot reach the person"),
        default=True,
        help_text=_(
            "Fall back when the provider answers that the previous channel cannot reach this "
            "person (no Zalo account, blocked, refused, invalid phone for that channel)."
        ),
    )
    receipt_minutes = models.PositiveIntegerField(
        _("when no receipt after (minutes)"),
        null=True,
        blank=True,
        default=30,
        help_text=_(
            "Fall back when the previous message has no delivery receipt after this many "
            "minutes. Leave empty to not wait for receipts. Ignored for a channel that sends "
            "no receipts."
        ),
    )

    class Mode(models.TextChoices):
        # Loa's own steps: this step's message is its own request through its own channel.
        LOA = "loa", _("Loa's own fallback")
        # The provider's own fallback (eTelecom enable_sms_on_zns_failure, eSMS
        # MultiChannelMessage): step 0's one request carries this step's SMS, and Loa records
        # the SMS leg from the answer and the receipts (campaigns.engine.native, .legs).
        PROVIDER = "provider", _("The provider's own fallback (one request)")

    mode = models.CharField(
        _("how the step is sent"),
        max_length=16,
        choices=Mode.choices,
        default=Mode.LOA,
        help_text=_(
            "Loa's own fallback sends this step as its own message. The provider's own fallback "
            "(where the provider offers it, for an SMS text) sends it in the first step's request: "
            "built from the reference notes, not from the seeds."
        ),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("fallback step")
        verbose_name_plural = _("fallback steps")
        ordering = ["campaign", "position"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "position"], name="uniq_fallback_step"),
            models.CheckConstraint(
                condition=models.Q(position__gte=1, position__lte=2), name="fallback_step_1_2"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.campaign_id}#{self.position}"


class CampaignEvent(models.Model):
    """The history of a campaign's transitions, with who did it and why."""

    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, related_name="events", verbose_name=_("campaign")
    )
    from_status = models.CharField(_("from"), max_length=16, blank=True)
    to_status = models.CharField(_("to"), max_length=16)
    note = models.CharField(_("note"), max_length=500, blank=True)
    note_i18n = models.JSONField(default=dict, blank=True, editable=False)  # campaigns.notes
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("by"),
    )
    created_at = models.DateTimeField(_("at"), auto_now_add=True)

    class Meta:
        verbose_name = _("campaign event")
        verbose_name_plural = _("campaign history")
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.from_status} -> {self.to_status}"

    def note_text(self) -> str:
        """The note in the reader's language (campaigns.notes)."""
        return notes.render(self.note, self.note_i18n)


class Message(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENDING = "sending", _("Sending")
        UNKNOWN = "unknown", _("Unknown (reconciling)")
        SENT = "sent", _("Sent")
        DELIVERED = "delivered", _("Delivered")
        READ = "read", _("Read")
        FAILED = "failed", _("Failed")
        SKIPPED = "skipped", _("Skipped")
        CANCELLED = "cancelled", _("Cancelled")

    # No database foreign-key constraints: materializing a million messages would spend most of
    # its time in two per-row constraint triggers (measured: 16 s for 200k rows on PostgreSQL 15).
    # Rows are only ever inserted from existing campaigns and contacts (INSERT ... SELECT from
    # the contacts table), and the ORM still cascades/protects on delete.
    # (campaign_id lookups use the unique (campaign, contact) and the claim index)
    campaign = models.ForeignKey(
        Campaign,
        on_delete=models.CASCADE,
        related_name="messages",
        db_constraint=False,
        db_index=False,
    )
    contact = models.ForeignKey(
        Contact, on_delete=models.PROTECT, related_name="messages", db_constraint=False
    )
    phone = models.CharField(_("phone"), max_length=16)
    template_data = models.JSONField(_("template data"), default=dict, blank=True)
    # Deterministic per (campaign, contact): eSMS RequestId, eTelecom tracking_id, MMP clientMessageId.
    # Unique because (campaign, contact) is: the key spells both ids (engine.keys.idempotency_key),
    # and lookups by key parse it and use that unique index. An index of its own cost every
    # materialized message one more btree insert, in an order unrelated to the others.
    idempotency_key = models.CharField(_("idempotency key"), max_length=64)
    # The step of the campaign's fallback chain this message is (0: the campaign's own channel;
    # 1, 2: FallbackStep.position), created only when the step before it reached an outcome that
    # falls back (campaigns.engine.fallback). db_default: the set-based INSERTs of step 0 leave
    # the column out, and adding it to a big table is a catalog change on PostgreSQL.
    step = models.PositiveSmallIntegerField(_("step"), default=0, db_default=0)
    # Indexed (partially, below) only once set: a fresh message has none yet.
    provider_message_id = models.CharField(_("provider message id"), max_length=100, blank=True)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.PENDING
    )
    error_class = models.CharField(_("error class"), max_length=16, blank=True)
    error_code = models.CharField(_("error code"), max_length=40, blank=True)
    error_message = models.CharField(_("error message"), max_length=500, blank=True)
    fee = models.DecimalField(_("fee"), max_digits=12, decimal_places=2, null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    claimed_at = models.DateTimeField(_("claimed at"), null=True, blank=True)
    # Reconciliation: when the provider's status API was last asked about this message.
    last_polled_at = models.DateTimeField(_("last status poll"), null=True, blank=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    read_at = models.DateTimeField(_("read at"), null=True, blank=True)
    failed_at = models.DateTimeField(_("failed at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        constraints = [
            # One message per (campaign, contact, step): a fallback step is its own row with its
            # own key (campaigns.engine.keys), created with ON CONFLICT DO NOTHING.
            models.UniqueConstraint(
                fields=["campaign", "contact", "step"], name="uniq_message_per_step"
            ),
        ]
        indexes = [
            # the driver's claim: pending rows of one campaign in id order
            models.Index(fields=["campaign", "status", "id"], name="msg_claim_idx"),
            # the reaper and reconciliation: rows in sending/unknown/sent since a time. Partial, so
            # materializing a million pending rows does not maintain it.
            models.Index(
                fields=["status", "claimed_at"],
                name="msg_inflight_idx",
                condition=models.Q(status__in=["sending", "unknown"]),
            ),
            # reconciliation: `sent` rows still without a receipt after a while
            models.Index(
                fields=["sent_at"],
                name="msg_sent_no_receipt_idx",
                condition=models.Q(status="sent"),
            ),
            # the campaign page (issue 22, 10M tenant; migration 0022_scale_...): its `sent` rows
            # with their send time (the receipts panel counts them from the index alone) and
            # its `failed` rows, newest first, with their error (failure reasons, retryable
            # failures). Partial: a materialized `pending` row enters neither.
            models.Index(
                fields=["campaign", "sent_at"],
                name="msg_sent_by_campaign_idx",
                condition=models.Q(status="sent"),
            ),
            models.Index(
                fields=["campaign", "id"],
                name="msg_failed_by_campaign_idx",
                condition=models.Q(status="failed"),
                include=["error_code", "error_class"],
            ),
            # webhooks and status polls find messages by the provider's id
            models.Index(
                fields=["provider_message_id"],
                name="msg_provider_id_idx",
                condition=~models.Q(provider_message_id=""),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.campaign_id}/{format_local(self.phone)}"


class MessageAttempt(models.Model):
    """One HTTP call made for a message: for diagnosis. Secrets are redacted before saving.

    The row is written when the message is claimed, before the call (`in_flight`), and completed
    with the call's request and answer after it: a worker killed during the call leaves the row
    in flight, so the diagnosis shows a call that may have reached the provider instead of
    nothing (campaigns.engine.claim, campaigns.engine.results)."""

    # No database constraint (the index stays): its trigger probed this table for every message
    # the retention purge deleted (measured at 50M messages, docs/BENCHMARKS.md "10M tenant").
    # Attempts are written only for a message being sent; the ORM and the purge cascade deletes.
    message = models.ForeignKey(
        Message,
        on_delete=models.CASCADE,
        related_name="attempts_log",
        verbose_name=_("message"),
        db_constraint=False,
    )
    status_code = models.PositiveSmallIntegerField(_("HTTP status"), null=True, blank=True)
    duration_ms = models.PositiveIntegerField(_("duration (ms)"), default=0)
    request_body = models.TextField(_("request"), blank=True)
    response_body = models.TextField(_("answer"), blank=True)
    error_class = models.CharField(max_length=16, blank=True)
    error = models.CharField(max_length=300, blank=True)
    # True from the claim until the call's answer is recorded; still True after that only when
    # the worker stopped in between (the request may or may not have reached the provider).
    in_flight = models.BooleanField(_("no answer recorded"), default=False)
    created_at = models.DateTimeField(_("at"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("message attempt")
        verbose_name_plural = _("message attempts")

    def __str__(self) -> str:
        return f"{self.message_id} {self.status_code}"

    def state_text(self) -> str:
        """What this attempt row says, for the diagnosis screen."""
        if self.in_flight:
            return str(
                _(
                    "The worker stopped before it recorded this call's answer: the request may "
                    "or may not have reached the provider."
                )
            )
        return self.error or (str(self.status_code) if self.status_code else "")


class CampaignTestSend(models.Model):
    """A test of a campaign sent to a few numbers before the real send (the wizard's review
    step): a real send through the campaign's channel, recorded here and shown on the campaign
    page, never a Message (it is not counted in the campaign, its costs or its funnel). Rows
    by user and day enforce the daily limit per user (settings.LOA["TEST_SENDS_PER_DAY"])."""

    class Outcome(models.TextChoices):
        ACCEPTED = "accepted", _("Accepted by the provider")
        REFUSED = "refused", _("Refused before sending")
        FAILED = "failed", _("Refused by the provider")
        UNKNOWN = "unknown", _("Unknown (no clear answer)")

    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, related_name="test_sends", verbose_name=_("campaign")
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("sent by"),
    )
    phone = models.CharField(_("phone"), max_length=16)
    # Whose data filled the parameters (None: values typed by the person).
    contact = models.ForeignKey(
        Contact,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("data of contact"),
        db_constraint=False,
    )
    template_data = models.JSONField(_("values sent"), default=dict, blank=True)
    content = models.TextField(_("text sent"), blank=True)
    outcome = models.CharField(_("outcome"), max_length=16, choices=Outcome.choices)
    provider_message_id = models.CharField(_("provider message id"), max_length=100, blank=True)
    error_code = models.CharField(_("error code"), max_length=40, blank=True)
    error_message = models.CharField(_("error message"), max_length=500, blank=True)
    created_at = models.DateTimeField(_("sent at"), auto_now_add=True)

    class Meta:
        verbose_name = _("test send")
        verbose_name_plural = _("test sends")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "created_at"], name="testsend_user_day_idx")]

    def __str__(self) -> str:
        return f"{self.campaign_id}:{self.phone}"


class Lease(models.Model):
    """A named, expiring lock shared by every worker process and machine (one rate-limited driver
    per campaign, one sandbox pump)."""

    name = models.CharField(max_length=64, primary_key=True)
    holder = models.CharField(max_length=64, blank=True)
    until = models.DateTimeField()

    class Meta:
        verbose_name = _("lease")
        verbose_name_plural = _("leases")

    def __str__(self) -> str:
        return self.name
