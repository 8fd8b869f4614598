"""The named settings of each provider kind: label, type, choices and help text, in one table.

An account's settings are a JSON object deep-merged over its adapter's `default_settings` (the
adapters own the defaults and the types). This table says how a person fills them in: the
account form (providers/admin.py) builds one field per row, and the settings check
(services.account_settings_errors) takes its allowed values from the rows' choices. Keys an
adapter has but this table does not name (eSMS `rate_limits`, MMP `api`, `bodies`, `responses`,
every account's `http`) are structures, not single values: they stay in the form's "advanced
JSON" field, and saving merges the two.

The help texts say what each value does, quoting the seed where it speaks (seeds 002-004 for
eTelecom and eSMS, docs/PROVIDERS.md for the assumed MMP keys).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django import forms
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from providers.registry import PROVIDERS

TEXT, BOOL, CHOICE, NUMBER = "text", "bool", "choice", "number"


@dataclass(frozen=True)
class SettingField:
    key: str
    label: str | Promise
    help_text: str | Promise = ""
    kind: str = TEXT  # TEXT, BOOL, CHOICE or NUMBER
    choices: tuple[tuple[str, str | Promise], ...] = ()
    strip: bool = True  # False where spaces matter ("Bearer " before the key)

    def default(self, provider_kind: str) -> Any:
        return PROVIDERS[provider_kind].default_settings.get(self.key)


PHONE_FORMAT_INTERNATIONAL = ("international", _("International, without + (84912345678)"))
PHONE_FORMAT_LOCAL = ("local", _("Local (0912345678)"))

_JOURNEY = (
    SettingField(
        "journey",
        _("Journey ZNS"),
        _(
            "Send every message of this account as a journey message (a ZNS journey registered "
            "with Zalo)."
        ),
        BOOL,
    ),
    SettingField(
        "journey_id",
        _("Journey id"),
        _("The journey id for every message of this account (or use the next field)."),
    ),
    SettingField(
        "journey_id_field",
        _("Journey id from the parameter"),
        _(
            "The name of the template parameter holding the journey id of each message, when "
            "it differs per message."
        ),
    ),
)

# The provider's own fallback to SMS (a chain step in provider mode, issue 19): from the
# reference notes, not the seeds (docs/PROVIDERS.md "Fallback").
_SMS_BRANDNAME = SettingField(
    "sms_brandname",
    _("SMS brandname (provider's own fallback)"),
    _(
        "The brandname of the SMS this provider sends by itself when a ZNS fails (a fallback "
        "step in the provider's own mode). eSMS requires it (MultiChannelMessage's Brandname); "
        "eTelecom: sent when set, else the shop's default (assumed). Built from the reference "
        "notes, not from the seeds."
    ),
)

SETTING_FIELDS: dict[str, tuple[SettingField, ...]] = {
    "etelecom": (
        SettingField(
            "mode",
            _("Account type"),
            _(
                "Shop: calls /v1/shop with the shop's API key. Partner: calls /v1/partner with "
                "the key eTelecom issued to the partner for this shop (seed 002)."
            ),
            CHOICE,
            (("shop", _("Shop (api_key)")), ("partner", _("Partner (shop_key)"))),
        ),
        SettingField(
            "environment",
            _("Environment"),
            _("Which eTelecom servers receive the calls. Ignored when a base URL is entered."),
            CHOICE,
            (
                ("production", _("Production (api.etelecom.vn)")),
                ("sandbox", _("Sandbox (api-sandbox.etelecom.vn)")),
                ("dev", _("Development")),
            ),
        ),
        SettingField(
            "path_prefix",
            _("Path prefix"),
            _(
                "v1: https://api.etelecom.vn/v1/shop.Zalo/…, as working code calls it. api: "
                "/api/shop.Zalo/…, as seed 002's OpenAPI block writes it."
            ),
            CHOICE,
            (("v1", "/v1/"), ("api", "/api/")),
        ),
        SettingField(
            "sending_mode",
            _("Sending mode"),
            _(
                "Seed 004: “default”: ZNS sent the usual way; “tag3”: ZNS sent over the quota "
                "(promotion messages of whitelisted OAs only)."
            ),
            CHOICE,
            (("default", _("Default")), ("tag3", _("Over quota (tag3)"))),
        ),
        SettingField(
            "phone_format",
            _("Phone format sent"),
            _("How phones are written in the calls; Zalo expects the international form."),
            CHOICE,
            (PHONE_FORMAT_INTERNATIONAL, PHONE_FORMAT_LOCAL),
        ),
        *_JOURNEY,
        _SMS_BRANDNAME,
    ),
    "esms": (
        SettingField(
            "api_version",
            _("API version"),
            _(
                "V4: parameters sent in the template's order (seed 003: “put in the same of its "
                "order in your template”). V6: parameters sent by name."
            ),
            CHOICE,
            (("v4", _("V4 (parameters in order)")), ("v6", _("V6 (parameters by name)"))),
        ),
        SettingField(
            "sandbox",
            _("Sandbox"),
            _(
                "Seed 003: “For testing purpose to verify the validation of the request. "
                "Message is not charged” and not delivered. Test sends always use it."
            ),
            BOOL,
        ),
        SettingField(
            "sending_mode",
            _("Sending mode"),
            _(
                "Not in seed 003; eSMS's V4 page: 1 sends the usual way, 3 sends over the quota "
                "for tag-3 messages of whitelisted OAs. Empty: not sent."
            ),
            CHOICE,
            (
                ("", _("Not sent (eSMS decides)")),
                ("1", _("1: default")),
                ("3", _("3: over quota (tag 3)")),
            ),
        ),
        SettingField(
            "campaign_name",
            _("Campaign name sent"),
            _(
                "Seed 003, campaignid: “The campaign name of request”. Empty: each campaign's "
                "own name; a value here is sent for every message of this account."
            ),
        ),
        SettingField(
            "phone_format",
            _("Phone format sent"),
            _("eSMS's examples send 0901888484 (local)."),
            CHOICE,
            (PHONE_FORMAT_LOCAL, PHONE_FORMAT_INTERNATIONAL),
        ),
        *_JOURNEY,
        SettingField(
            "status_base_url",
            _("Status server"),
            _("The address of eSMS's GetCallback (delivery status lookups); https only."),
        ),
        SettingField(
            "zns_sms_type",
            _("ZNS SmsType for lookups"),
            _("The SmsType of ZNS messages in status and template lookups."),
            CHOICE,
            (("24", _("24: priority")), ("25", _("25: normal"))),
        ),
        _SMS_BRANDNAME,
    ),
    "sandbox": (
        SettingField(
            "callback_delay_seconds",
            _("Callback delay (seconds)"),
            _("How long the sandbox waits before reporting each outcome. Empty: the default."),
            NUMBER,
        ),
    ),
}

_MMP = (
    SettingField(
        "auth_header",
        _("Authentication header"),
        _(
            "The header carrying the API key (assumed: Authorization; for example x-api-key). "
            "docs/PROVIDERS.md lists what is assumed for MMP."
        ),
    ),
    SettingField(
        "auth_prefix",
        _("Key prefix"),
        _("Written before the key in that header (assumed: “Bearer ” with its space)."),
        strip=False,
    ),
    SettingField(
        "phone_format",
        _("Phone format sent"),
        _("How phones are written in the calls."),
        CHOICE,
        (
            PHONE_FORMAT_INTERNATIONAL,
            ("plus", _("International with + (+84912345678)")),
            PHONE_FORMAT_LOCAL,
        ),
    ),
    SettingField(
        "email_field",
        _("Email parameter"),
        _("The template parameter (or contact attribute) holding an email recipient's address."),
    ),
    SettingField("email_from", _("Email sender"), _("The sender address of emails.")),
    SettingField(
        "test_channel_id",
        _("Channel for “Test connection”"),
        _(
            "A channel publicId that “Test connection” asks about; empty: it lists the "
            "approved templates."
        ),
    ),
)
SETTING_FIELDS["vna_mmp"] = _MMP
SETTING_FIELDS["metfone_mmp"] = _MMP


def setting_fields(kind: str) -> tuple[SettingField, ...]:
    """The named settings of a provider kind (only those its adapter has)."""
    cls = PROVIDERS.get(kind)
    if cls is None:
        return ()
    return tuple(f for f in SETTING_FIELDS.get(kind, ()) if f.key in cls.default_settings)


def setting_choices(kind: str) -> dict[str, tuple[str, ...]]:
    """{key: allowed values} of a kind's choice settings (what the settings check enforces)."""
    return {f.key: tuple(v for v, _label in f.choices) for f in setting_fields(kind) if f.choices}


def named_keys(kind: str) -> set[str]:
    return {f.key for f in setting_fields(kind)}


# ---- the account form's fields (providers/admin.py) ---------------------------------------------


def setting_field_name(kind: str, key: str) -> str:
    """The form field of one kind's setting: kinds share key names with other meanings
    (eTelecom's sending_mode "tag3", eSMS's "3"), so each kind has its own field."""
    return f"setting_{kind}_{key}"


def setting_form_field(spec: SettingField) -> forms.Field:
    if spec.kind == BOOL:
        return forms.BooleanField(label=spec.label, help_text=spec.help_text, required=False)
    if spec.kind == CHOICE:
        return forms.ChoiceField(
            label=spec.label, help_text=spec.help_text, choices=spec.choices, required=False
        )
    if spec.kind == NUMBER:
        return forms.FloatField(
            label=spec.label, help_text=spec.help_text, required=False, min_value=0
        )
    return forms.CharField(
        label=spec.label,
        help_text=spec.help_text,
        required=False,
        strip=spec.strip,
        # the admin's own widths: an address needs the wider one
        widget=forms.TextInput(
            attrs={"class": "vURLField" if spec.key.endswith("_url") else "vTextField"}
        ),
    )


def setting_value(spec: SettingField, value: Any) -> Any:
    """A cleaned form value as the settings JSON keeps it."""
    if spec.kind == BOOL:
        return bool(value)
    if spec.kind == NUMBER:
        if value is None:
            return None
        return int(value) if float(value).is_integer() else float(value)
    if spec.kind == TEXT:
        return (value or "").strip() if spec.strip else (value or "")
    return str(value or "")
