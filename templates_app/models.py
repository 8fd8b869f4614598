from django.db import models
from django.utils.translation import gettext_lazy as _

from providers.models import ChannelKind, OfficialAccount, ProviderAccount


class Template(models.Model):
    class Tag(models.TextChoices):
        TRANSACTION = "transaction", _("Transaction")
        CUSTOMER_CARE = "customer_care", _("Customer care")
        PROMOTION = "promotion", _("Promotion")

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending review")
        APPROVED = "approved", _("Approved")
        REJECTED = "rejected", _("Rejected")
        DISABLED = "disabled", _("Disabled")
        DELETED = "deleted", _("Deleted")

    account = models.ForeignKey(
        ProviderAccount,
        on_delete=models.PROTECT,
        related_name="templates",
        verbose_name=_("provider account"),
    )
    official_account = models.ForeignKey(
        OfficialAccount,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="templates",
        verbose_name=_("Zalo OA"),
    )
    provider_template_id = models.CharField(_("provider template id"), max_length=100)
    name = models.CharField(_("name"), max_length=200)
    # ZNS templates are approved by Zalo with typed params; SMS, Viber and email templates are free
    # content with {{placeholders}} that we render ourselves.
    channel_kind = models.CharField(
        _("channel"),
        max_length=16,
        choices=ChannelKind.choices,
        default=ChannelKind.ZALO_ZNS,
        help_text=_(
            "Zalo ZNS templates are approved by Zalo; SMS, Viber and email templates are your own "
            "text with {{placeholders}}."
        ),
    )
    tag = models.CharField(_("tag"), max_length=16, choices=Tag.choices, default=Tag.TRANSACTION)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.PENDING
    )
    status_reason = models.CharField(_("status reason"), max_length=300, blank=True)
    status_changed_at = models.DateTimeField(_("status changed at"), null=True, blank=True)
    price = models.DecimalField(
        _("price per message (VND)"), max_digits=12, decimal_places=2, default=0
    )
    preview_url = models.URLField(_("preview URL"), max_length=500, blank=True)
    subject = models.CharField(
        _("email subject"),
        max_length=300,
        blank=True,
        help_text=_("Email only; may contain {{placeholders}}."),
    )
    body = models.TextField(
        _("preview text"),
        blank=True,
        help_text=_(
            "The message as the recipient sees it, with {{param}} placeholders. For email: the "
            "HTML body (sanitized before sending; a plain-text part is generated)."
        ),
    )
    strip_diacritics = models.BooleanField(
        _("send without diacritics"),
        default=False,
        help_text=_(
            "SMS: remove Vietnamese accents so the message fits GSM-7 (160 characters per "
            "message instead of 70)."
        ),
    )
    buttons = models.JSONField(_("buttons"), default=list, blank=True)
    synced_at = models.DateTimeField(_("synced at"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("template")
        verbose_name_plural = _("templates")
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "provider_template_id"], name="uniq_template_per_account"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} [{self.provider_template_id}]"

    def ordered_param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params.all())

    @property
    def sent_by_id(self) -> bool:
        """Does the provider render this template from its id? Every Zalo ZNS template, and any
        template synced from the provider; a content template entered in Loa goes as its text."""
        return self.channel_kind == ChannelKind.ZALO_ZNS or self.synced_at is not None


class TemplateParam(models.Model):
    class Type(models.TextChoices):
        TEXT = "text", _("Text")
        CUSTOMER_NAME = "customer_name", _("Customer name")
        PHONE = "phone_number", _("Phone number")
        ADDRESS = "address", _("Address")
        CODE = "code", _("Code")
        LABEL = "label", _("Custom label")
        STATUS = "transaction_status", _("Transaction status")
        CONTACT = "contact", _("Contact")
        TITLE = "title", _("Title (Anh/Chị)")
        PRODUCT = "product", _("Product or brand")
        AMOUNT = "amount", _("Quantity or amount")
        TIME = "time", _("Time")
        OTP = "otp", _("OTP")
        URL = "url", _("URL")
        CURRENCY = "currency", _("Currency (VND)")
        BANK_NOTE = "bank_note", _("Bank transfer note")
        NUMBER = "number", _("Number")
        DATE = "date", _("Date")
        DIGITS = "digits", _("Digits only")

    template = models.ForeignKey(Template, on_delete=models.CASCADE, related_name="params")
    name = models.CharField(_("name"), max_length=100)
    param_type = models.CharField(_("type"), max_length=24, choices=Type.choices, default=Type.TEXT)
    # The provider's own type name (Zalo "STRING", eSMS "type_number", ...), kept for diagnosis.
    provider_type = models.CharField(_("provider type"), max_length=40, blank=True)
    required = models.BooleanField(_("required"), default=True)
    min_length = models.PositiveIntegerField(_("min length"), default=0)
    max_length = models.PositiveIntegerField(
        _("max length"),
        null=True,
        blank=True,
        help_text=_("Empty = the default for the type (Zalo's documented limit)."),
    )
    position = models.PositiveIntegerField(
        _("position"),
        default=0,
        help_text=_("Declared order (eSMS V4 sends parameters by position)."),
    )

    class Meta:
        verbose_name = _("template parameter")
        verbose_name_plural = _("template parameters")
        ordering = ["template", "position", "id"]
        constraints = [models.UniqueConstraint(fields=["template", "name"], name="uniq_param_name")]

    def __str__(self) -> str:
        return self.name
