from django.db import models
from django.utils.translation import gettext_lazy as _

from providers.models import OfficialAccount, ProviderAccount


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
    tag = models.CharField(_("tag"), max_length=16, choices=Tag.choices, default=Tag.TRANSACTION)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.PENDING
    )
    status_reason = models.CharField(_("status reason"), max_length=300, blank=True)
    price = models.DecimalField(
        _("price per message (VND)"), max_digits=12, decimal_places=2, default=0
    )
    preview_url = models.URLField(_("preview URL"), blank=True)
    body = models.TextField(
        _("preview text"),
        blank=True,
        help_text=_("The message as the recipient sees it, with {{param}} placeholders."),
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

    template = models.ForeignKey(Template, on_delete=models.CASCADE, related_name="params")
    name = models.CharField(_("name"), max_length=100)
    param_type = models.CharField(_("type"), max_length=24, choices=Type.choices, default=Type.TEXT)
    required = models.BooleanField(_("required"), default=True)
    min_length = models.PositiveIntegerField(_("min length"), default=0)
    max_length = models.PositiveIntegerField(_("max length"), null=True, blank=True)
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
