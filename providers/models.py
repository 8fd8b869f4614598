"""providers' models: ProviderAccount (credentials at one provider, kind from the registry),
OfficialAccount (a Zalo OA) and Channel (a route to send on). SandboxCallback, the sandbox's
outbox, is defined in providers/sandbox/outbox.py and registered through the import below."""

import secrets as pysecrets
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from providers import crypto
from providers.base import AccountConfig, BaseProvider, url_may_carry_secrets
from providers.reach import reach_override_errors
from providers.registry import get_provider_class, provider_choices
from providers.sandbox.outbox import SandboxCallback  # noqa: F401 - Django registers it from here


def new_webhook_token() -> str:
    return pysecrets.token_urlsafe(32)


def settings_urls(value) -> list[str]:
    """Every absolute http(s) URL in an account's settings JSON (eSMS's status_base_url, ...):
    the provider calls them with the account's secrets too."""
    if isinstance(value, dict):
        return [url for v in value.values() for url in settings_urls(v)]
    if isinstance(value, list):
        return [url for v in value for url in settings_urls(v)]
    if isinstance(value, str) and urlsplit(value.strip()).scheme.lower() in ("http", "https"):
        return [value.strip()]
    return []


def secret_destinations(*, kind: str, base_url: str, settings: dict | None) -> set[str]:
    """The addresses (scheme://host) an account of this kind, base URL and settings sends its
    secrets to: its effective base URL (the provider's default when empty) and the URLs of its
    settings. Changing them asks for the secrets again (providers/admin.py)."""
    settings = settings if isinstance(settings, dict) else {}
    urls = settings_urls(settings)
    try:
        config = AccountConfig(0, kind, base_url or "", {}, settings)
        urls.append(get_provider_class(kind)(config).base_url)
    except Exception:  # an unknown kind or broken settings: the explicit URL is what we know
        urls.append(base_url or "")
    out = set()
    for url in urls:
        parts = urlsplit(url)
        if parts.netloc:
            out.add(f"{parts.scheme.lower()}://{parts.netloc.lower()}")
    return out


class ChannelKind(models.TextChoices):
    ZALO_ZNS = "zalo_zns", _("Zalo ZNS")
    SMS = "sms", _("SMS")
    VIBER = "viber", _("Viber")
    VIBER_BOT = "viber_bot", _("Viber bot")
    RCS = "rcs", _("RCS")
    WHATSAPP = "whatsapp", _("WhatsApp")
    EMAIL = "email", _("Email")


class ProviderAccount(models.Model):
    """One set of credentials at one provider."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    kind = models.CharField(_("provider"), max_length=32, choices=provider_choices)
    base_url = models.URLField(
        _("base URL"), blank=True, help_text=_("Leave empty for the provider's default.")
    )
    # Encrypted JSON of the provider's secret fields; never rendered, write-only in the admin.
    secrets_encrypted = models.TextField(editable=False, blank=True, default="")
    settings = models.JSONField(
        _("settings"),
        default=dict,
        blank=True,
        help_text=_("Non-secret provider options (JSON); defaults apply where empty."),
    )
    rate_limit = models.FloatField(
        _("rate limit (messages/s)"),
        null=True,
        blank=True,
        help_text=_("Empty = as fast as the provider answers."),
    )
    webhook_token = models.CharField(
        max_length=64, unique=True, default=new_webhook_token, editable=False
    )
    is_active = models.BooleanField(_("active"), default=True)
    last_callback_at = models.DateTimeField(
        _("last callback"), null=True, blank=True, editable=False
    )
    # Set by reconciliation when the account's status lookup cannot be made (an assumed path
    # answered 404: StatusEvent.unavailable), cleared when it answers again; the account page
    # says so. Messages it could not look up stay `unknown`, visible on their campaign.
    reconciliation_unavailable = models.TextField(
        _("reconciliation unavailable"), blank=True, default="", editable=False
    )
    reconciliation_checked_at = models.DateTimeField(
        _("reconciliation checked at"), null=True, blank=True, editable=False
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("provider account")
        verbose_name_plural = _("provider accounts")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self):
        """Provider addresses are https:// (every call carries the account's secrets); http://
        only where LOA_ALLOW_HTTP_PROVIDER_URLS allows it, for a test environment."""
        super().clean()
        rule = _(
            "Provider addresses must start with https://: the account's secrets travel with every "
            "call (http:// is accepted only where LOA_ALLOW_HTTP_PROVIDER_URLS is set, for a test "
            "environment)."
        )
        errors = {}
        if self.base_url and not url_may_carry_secrets(self.base_url):
            errors["base_url"] = rule
        if any(not url_may_carry_secrets(u) for u in settings_urls(self.settings)):
            errors["settings"] = rule
        # settings["reach"]: who each channel kind reaches (providers/reach.py); refused here,
        # ignored at send time if it got in some other way.
        reach_errors = reach_override_errors(
            self.settings.get("reach") if isinstance(self.settings, dict) else None
        )
        if reach_errors and "settings" not in errors:
            errors["settings"] = reach_errors
        if errors:
            raise ValidationError(errors)

    # Secrets are never attributes of the model: reading them is an explicit call.
    def get_secrets(self) -> dict[str, str]:
        return crypto.decrypt_json(self.secrets_encrypted)

    def set_secrets(self, values: dict[str, str]) -> None:
        self.secrets_encrypted = crypto.encrypt_json({k: v for k, v in values.items() if v})

    @property
    def provider_class(self) -> type[BaseProvider]:
        return get_provider_class(self.kind)

    def webhook_path(self) -> str:
        return reverse("webhooks:receive", kwargs={"token": self.webhook_token})

    def webhook_url(self) -> str:
        return settings.PUBLIC_BASE_URL + self.webhook_path()

    def config(self) -> AccountConfig:
        return AccountConfig(
            account_id=self.pk,
            kind=self.kind,
            base_url=self.base_url,
            secrets=self.get_secrets(),
            settings=self.settings or {},
            webhook_url=self.webhook_url(),
            rate_limit=self.rate_limit,
            oa_secrets=self.oa_secrets(),
        )

    def oa_secrets(self) -> dict[str, str]:
        """The Zalo OA secret keys of this account's OAs, by oa_id (X-ZEvent-Signature checks)."""
        if not self.pk:
            return {}
        out = {}
        for oa in self.official_accounts.exclude(secret_encrypted=""):
            secret = oa.get_secret()
            if secret:
                out[oa.oa_id] = secret
        return out

    def get_provider(self) -> BaseProvider:
        return self.provider_class(self.config())


class OfficialAccount(models.Model):
    """A Zalo Official Account reachable through a provider account."""

    class Quality(models.TextChoices):
        HIGH = "HIGH", _("High")
        MEDIUM = "MEDIUM", _("Medium")
        LOW = "LOW", _("Low")
        UNDEFINED = "UNDEFINED", _("Undefined")

    account = models.ForeignKey(
        ProviderAccount,
        on_delete=models.PROTECT,
        related_name="official_accounts",
        verbose_name=_("provider account"),
    )
    oa_id = models.CharField(
        _("OA id"), max_length=32, help_text=_("Zalo's int64 OA id, kept as text.")
    )
    name = models.CharField(_("name"), max_length=200)
    quality = models.CharField(
        _("quality"), max_length=16, choices=Quality.choices, default=Quality.UNDEFINED
    )
    daily_quota = models.PositiveIntegerField(_("daily quota"), null=True, blank=True)
    remaining_quota = models.IntegerField(_("remaining quota"), null=True, blank=True)
    quota_updated_at = models.DateTimeField(_("quota seen at"), null=True, blank=True)
    app_id = models.CharField(_("Zalo app id"), max_length=32, blank=True)
    # OA secret key for X-ZEvent-Signature checks; encrypted, write-only.
    secret_encrypted = models.TextField(editable=False, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("Zalo Official Account")
        verbose_name_plural = _("Zalo Official Accounts")
        constraints = [
            models.UniqueConstraint(fields=["account", "oa_id"], name="uniq_oa_per_account")
        ]
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.oa_id})"

    def get_secret(self) -> str:
        return crypto.decrypt_json(self.secret_encrypted).get("secret", "")

    def set_secret(self, value: str) -> None:
        self.secret_encrypted = crypto.encrypt_json({"secret": value} if value else {})


class Channel(models.Model):
    """A route to send on: an account, a kind, and the OA or the provider's channel id."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    account = models.ForeignKey(
        ProviderAccount,
        on_delete=models.PROTECT,
        related_name="channels",
        verbose_name=_("provider account"),
    )
    kind = models.CharField(
        _("kind"), max_length=16, choices=ChannelKind.choices, default=ChannelKind.ZALO_ZNS
    )
    official_account = models.ForeignKey(
        OfficialAccount,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="channels",
        verbose_name=_("Zalo OA"),
    )
    external_id = models.CharField(
        _("provider channel id"),
        max_length=100,
        blank=True,
        help_text=_("MMP publicId/channelId; empty for Zalo ZNS via eTelecom/eSMS."),
    )
    sender = models.CharField(_("sender / brandname"), max_length=100, blank=True)
    # Named options of this channel (CHANNEL_SETTINGS); unknown keys are refused on save.
    settings = models.JSONField(
        _("settings"),
        default=dict,
        blank=True,
        help_text=_(
            'Channel options as JSON. MMP: {"application_id": 3}, the applicationId sent with '
            "this channel's broadcasts (seed 000 documents 1 viber, 10 viber bot, 3 sms for "
            "VNA; for Metfone 3 = sms is inferred). Empty: the account's application_ids by "
            "channel kind. See docs/PROVIDERS.md."
        ),
    )
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("channel")
        verbose_name_plural = _("channels")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self):
        super().clean()
        errors = channel_settings_errors(self.settings)
        if errors:
            raise ValidationError({"settings": errors})

    @property
    def application_id(self) -> int | None:
        """MMP applicationId of this channel, or None (the account's default by kind)."""
        value = (
            (self.settings or {}).get("application_id") if isinstance(self.settings, dict) else None
        )
        return value if isinstance(value, int) and not isinstance(value, bool) else None


# The keys a Channel's settings may hold, with what each means (docs/PROVIDERS.md).
CHANNEL_SETTINGS = {
    "application_id": _("MMP applicationId (integer) sent with this channel's broadcasts."),
}


def channel_settings_errors(value) -> list[str]:
    """What is wrong with a channel's settings JSON, in words."""
    if value in (None, ""):
        return []
    if not isinstance(value, dict):
        return [str(_('Channel settings must be a JSON object, like {"application_id": 3}.'))]
    errors = []
    unknown = sorted(set(value) - set(CHANNEL_SETTINGS))
    if unknown:
        errors.append(
            str(_("Unknown channel setting(s): {names}. Known: {known}.")).format(
                names=", ".join(unknown), known=", ".join(sorted(CHANNEL_SETTINGS))
            )
        )
    app_id = value.get("application_id")
    if "application_id" in value and (
        not isinstance(app_id, int) or isinstance(app_id, bool) or app_id < 0
    ):
        errors.append(str(_("Channel setting application_id must be a whole number, like 3.")))
    return errors
