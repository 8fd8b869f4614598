"""Provider accounts, Zalo OAs and channels in the admin: write-only credentials, the account
actions (test, sync OAs, register the webhook URL, and those rooms above add, such as templates_app's
"Sync templates"), a reply page for conversations; the MMP pages of a channel (provider information,
Zalo consent) are providers/admin_mmp.py's. Each action
calls a service of providers/services.py and shows its sentence, or its refusal as an error."""

from __future__ import annotations

import json
from collections.abc import Callable

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from providers import services
from providers.account_settings import (
    CHOICE,
    named_keys,
    setting_field_name,
    setting_fields,
    setting_form_field,
    setting_value,
)
from providers.admin_mmp import MmpChannelAdminMixin
from providers.models import Channel, OfficialAccount, ProviderAccount, secret_destinations
from providers.registry import PROVIDERS
from providers.shared.errors import Refused

ALL_SECRET_FIELDS = sorted({f for cls in PROVIDERS.values() for f in cls.secret_fields})

# Actions the rooms above providers offer on the provider account list (templates_app: "Sync
# templates"). providers may not import them, so they add themselves when their admin module loads
# (provider_account_action_add); ProviderAccountAdmin.actions lists them among its own.
_account_actions: dict[str, Callable] = {}


def provider_account_action_add(action: Callable) -> Callable:
    """Offer an admin action function (modeladmin, request, queryset) on the provider account
    list, under its function name. Returns it, so it can be used as a decorator."""
    _account_actions[action.__name__] = action
    return action


class ProviderAccountForm(forms.ModelForm):
    """Secrets are write-only: the form never renders a stored value, and a blank field keeps it.

    Settings are named fields per provider kind (providers/account_settings.py: label, type,
    choices, help), plus "advanced settings" as JSON for the keys without a field (structures
    such as MMP's paths and bodies); saving merges the two into ProviderAccount.settings.

    The secret and setting fields are declared on the class (see below the class), not added in
    __init__: the admin builds its form class from the fieldsets and refuses fields it cannot see
    there.
    """

    clear_secrets = forms.BooleanField(label=_("Clear all stored secrets"), required=False)
    settings_advanced = forms.JSONField(
        label=_("Advanced settings (JSON)"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 6, "cols": 80, "spellcheck": "false"}),
        help_text=_(
            'Settings without a field above, as a JSON object, for example {"http": '
            '{"connect_timeout": 5, "read_timeout": 20}}. Merged with the fields above on save; '
            "docs/PROVIDERS.md lists each provider's keys."
        ),
    )

    class Meta:
        model = ProviderAccount
        fields = ["name", "kind", "base_url", "rate_limit", "is_active"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._settings_initial()
        stored = set(self.instance.get_secrets()) if self.instance.pk else set()
        for name in ALL_SECRET_FIELDS:
            used_by = ", ".join(
                str(cls.label) for cls in PROVIDERS.values() if name in cls.secret_fields
            )
            hint = _("Stored; leave blank to keep it.") if name in stored else _("Not set.")
            self.fields[f"secret_{name}"].help_text = format_html(
                "{} {}", hint, _("Used by: {}").format(used_by)
            )

    def _settings_initial(self) -> None:
        """Each named field shows the account's value (its kind's default when unset); the
        advanced JSON shows only the keys no field names."""
        stored = self.instance.settings if isinstance(self.instance.settings, dict) else {}
        own = self.instance.kind if self.instance.pk else ""
        for kind in PROVIDERS:
            for spec in setting_fields(kind):
                name = setting_field_name(kind, spec.key)
                if name not in self.fields:
                    continue
                value = stored.get(spec.key) if kind == own and spec.key in stored else None
                if value is None:
                    value = spec.default(kind)
                self.initial.setdefault(name, str(value) if spec.kind == CHOICE else value)
        named = named_keys(own) if own else set()
        self.initial.setdefault(
            "settings_advanced", {k: v for k, v in stored.items() if k not in named}
        )

    def _settings_from_fields(self, kind: str, cleaned: dict) -> dict | None:
        """The advanced JSON merged with the named fields of `kind` (a named value equal to its
        default is stored only if it was stored before). None when the JSON is wrong."""
        advanced = cleaned.get("settings_advanced")
        if "settings_advanced" not in self.data and "settings" in self.data:
            # A script's POST of the whole JSON, as before the named fields: taken as it is.
            try:
                return json.loads(self.data["settings"] or "{}")
            except ValueError:
                self.add_error(None, _("Enter a valid JSON."))
                return None
        if advanced in (None, ""):
            advanced = {}
        if not isinstance(advanced, dict):
            self.add_error(
                "settings_advanced", _('Settings must be a JSON object, like {"mode": "shop"}.')
            )
            return None
        stored = self.instance.settings if isinstance(self.instance.settings, dict) else {}
        stored = stored if self.instance.pk and self.instance.kind == kind else {}
        settings = dict(advanced)
        for spec in setting_fields(kind):
            name = setting_field_name(kind, spec.key)
            field = self.fields.get(name)
            if field is None or field.widget.value_omitted_from_data(
                self.data, self.files, self.add_prefix(name)
            ):
                # Not on the page (the kind was changed there) or not posted (a script): kept.
                if spec.key in stored and spec.key not in advanced:
                    settings[spec.key] = stored[spec.key]
                continue
            if spec.key in advanced:
                self.add_error(
                    "settings_advanced",
                    _("“{key}” has its own field above: set it there.").format(key=spec.key),
                )
                continue
            value = setting_value(spec, cleaned.get(name))
            if value != spec.default(kind) or spec.key in stored:
                settings[spec.key] = value
        return settings

    def clean(self):
        cleaned = super().clean()
        kind = cleaned.get("kind")
        if kind and "settings_advanced" not in self.errors:
            settings = self._settings_from_fields(kind, cleaned)
            if settings is not None:
                cleaned["settings"] = settings
                for error in services.account_settings_errors(kind=kind, settings=settings):
                    self.add_error("settings_advanced", error)
        self._secrets_follow_the_address(cleaned)
        return cleaned

    def _secrets_follow_the_address(self, cleaned: dict) -> None:
        """Whoever points an account holding secrets at another address (base URL, kind, a URL
        in its settings) must enter the secrets again in the same save: otherwise anyone who may
        change the account could send them to a host of their choosing with "Test connection"."""
        account = self.instance
        if not account.pk or cleaned.get("clear_secrets") or "settings_advanced" in self.errors:
            return
        stored = sorted(account.get_secrets())
        if not stored or cleaned.get("kind") is None:
            return
        before = secret_destinations(
            kind=account.kind, base_url=account.base_url, settings=account.settings
        )
        after = secret_destinations(
            kind=cleaned["kind"],
            base_url=cleaned.get("base_url") or "",
            settings=cleaned.get("settings"),
        )
        missing = [n for n in stored if not (cleaned.get(f"secret_{n}") or "").strip()]
        if after <= before or not missing:
            return
        self.add_error(
            None,
            _(
                "This changes where the account's secrets are sent ({new}): enter the secrets "
                "again ({names}) in the same save, or tick “Clear all stored secrets”."
            ).format(new=", ".join(sorted(after - before)), names=", ".join(missing)),
        )

    def save(self, commit=True):
        account = super().save(commit=False)
        if "settings" in self.cleaned_data:
            account.settings = self.cleaned_data["settings"]
        current = {} if self.cleaned_data.get("clear_secrets") else account.get_secrets()
        for name in ALL_SECRET_FIELDS:
            value = self.cleaned_data.get(f"secret_{name}")
            if value:
                current[name] = value.strip()
        account.set_secrets(current)
        if commit:
            account.save()
        return account


for _secret_name in ALL_SECRET_FIELDS:
    _field = forms.CharField(
        label=_secret_name, required=False, widget=forms.PasswordInput(render_value=False)
    )
    ProviderAccountForm.base_fields[f"secret_{_secret_name}"] = _field
    ProviderAccountForm.declared_fields[f"secret_{_secret_name}"] = _field

for _kind in PROVIDERS:
    for _spec in setting_fields(_kind):
        _field = setting_form_field(_spec)
        ProviderAccountForm.base_fields[setting_field_name(_kind, _spec.key)] = _field
        ProviderAccountForm.declared_fields[setting_field_name(_kind, _spec.key)] = _field


class OfficialAccountInline(admin.TabularInline):
    model = OfficialAccount
    fields = ["oa_id", "name", "quality", "daily_quota", "remaining_quota", "quota_updated_at"]
    readonly_fields = ["quota_updated_at"]
    extra = 0
    show_change_link = True


class ReplyForm(forms.Form):
    channel_id = forms.CharField(
        label=_("Provider channel id"),
        max_length=100,
        help_text=_("The channelId of the inbound message (MMP publicId of your channel)."),
    )
    conversation_id = forms.CharField(
        label=_("Conversation"),
        max_length=100,
        help_text=_("The sender of the inbound message (its public conversation id)."),
    )
    text = forms.CharField(label=_("Reply"), widget=forms.Textarea(attrs={"rows": 4}))


def _run(modeladmin, request, label: str, service: Callable[..., str], **kwargs) -> bool:
    """Call a service and show its sentence, or its refusal as an error; True if it succeeded."""
    try:
        text = service(**kwargs)
    except Refused as exc:
        modeladmin.message_user(request, f"{label}: {exc.message}", messages.ERROR)
        return False
    modeladmin.message_user(request, f"{label}: {text}", messages.SUCCESS)
    return True


@admin.register(ProviderAccount)
class ProviderAccountAdmin(admin.ModelAdmin):
    form = ProviderAccountForm

    class Media:
        js = ["loa/account_settings.js"]  # on "Add": only the chosen provider's settings

    list_display = ["name", "kind", "is_active", "rate_limit", "last_callback_at"]
    list_filter = ["kind", "is_active"]
    search_fields = ["name"]
    readonly_fields = [
        "webhook_url_display",
        "last_callback_at",
        "secrets_status",
        "tools",
        "reconciliation_status",
    ]
    inlines = [OfficialAccountInline]

    @property
    def actions(self) -> list:
        """Its own actions and those the rooms above added, in the order of the menu."""
        return [
            "test_connection",
            "sync_official_accounts",
            *_account_actions.values(),
            "register_webhooks",
        ]

    def get_fieldsets(self, request, obj=None):
        secret_names = [f"secret_{n}" for n in ALL_SECRET_FIELDS]
        return [
            (None, {"fields": ["name", "kind", "base_url", "is_active", "rate_limit"]}),
            (
                _("Credentials (write-only)"),
                {"fields": ["secrets_status", *secret_names, "clear_secrets"]},
            ),
            *self._settings_fieldsets(obj),
            (_("Webhook"), {"fields": ["webhook_url_display", "last_callback_at"]}),
            (_("Reconciliation"), {"fields": ["reconciliation_status"]}),
            (_("Tools"), {"fields": ["tools"]}),
        ]

    def _settings_fieldsets(self, obj) -> list:
        """One fieldset of named settings per provider kind (only the account's own once it is
        saved; on "Add", account_settings.js shows the chosen kind's), then the advanced JSON."""
        kinds = [obj.kind] if obj is not None and obj.kind in PROVIDERS else list(PROVIDERS)
        sets = [
            (
                _("Settings: {provider}").format(provider=PROVIDERS[kind].label),
                {
                    "fields": [setting_field_name(kind, f.key) for f in setting_fields(kind)],
                    "classes": ["loa-settings", f"loa-settings-{kind}"],
                },
            )
            for kind in kinds
            if setting_fields(kind)
        ]
        return [
            *sets,
            (
                _("Advanced settings"),
                {"fields": ["settings_advanced"], "classes": ["collapse"]},
            ),
        ]

    def get_urls(self):
        return [
            path(
                "<path:object_id>/reply/",
                self.admin_site.admin_view(self.reply_view),
                name="providers_provideraccount_reply",
            ),
            *super().get_urls(),
        ]

    @admin.display(description=_("Webhook URL"))
    def webhook_url_display(self, obj):
        if not obj.pk:
            return _("Shown after saving.")
        url = obj.webhook_url()
        return format_html(
            '<code id="webhook-url">{}</code> <button type="button" class="button" '
            "onclick=\"navigator.clipboard.writeText(document.getElementById('webhook-url').innerText)\">"
            "{}</button>",
            url,
            _("Copy"),
        )

    @admin.display(description=_("Status lookups"))
    def reconciliation_status(self, obj):
        """Set by reconciliation (providers.services.account_reconciliation_note) when the
        account's status lookup cannot be made: messages it could not ask about stay unknown."""
        if not obj.pk or not obj.reconciliation_unavailable:
            return _("No status lookup of this account has been refused.")
        return format_html(
            '<p class="errornote" id="reconciliation-unavailable">{}</p><p>{}</p>',
            _("Reconciliation is unavailable for this account (seen {time}).").format(
                time=date_format(
                    timezone.localtime(obj.reconciliation_checked_at), "DATETIME_FORMAT"
                )
                if obj.reconciliation_checked_at
                else "-"
            ),
            obj.reconciliation_unavailable,
        )

    @admin.display(description=_("Stored credentials"))
    def secrets_status(self, obj):
        if not obj.pk:
            return "-"
        names = sorted(obj.get_secrets())
        return ", ".join(f"{n}: ••••" for n in names) if names else _("none")

    @admin.display(description=_("Tools"))
    def tools(self, obj):
        if not obj.pk or not hasattr(obj.provider_class, "send_conversation_message"):
            return _("Use the actions of the account list: test, sync OAs, sync templates.")
        return format_html(
            '<a class="button" href="{}">{}</a>',
            reverse("admin:providers_provideraccount_reply", args=[obj.pk]),
            _("Reply to a conversation"),
        )

    @admin.action(description=_("Test connection"), permissions=["change"])
    def test_connection(self, request, queryset):
        for account in queryset:
            _run(self, request, account.name, services.account_test_connection, account=account)

    @admin.action(description=_("Sync Official Accounts"), permissions=["change"])
    def sync_official_accounts(self, request, queryset):
        for account in queryset:
            _run(
                self,
                request,
                account.name,
                services.account_sync_official_accounts,
                account=account,
            )

    @admin.action(description=_("Register webhook URL at the provider"), permissions=["change"])
    def register_webhooks(self, request, queryset):
        for account in queryset:
            _run(self, request, account.name, services.account_register_webhooks, account=account)

    def reply_view(self, request, object_id):
        account = get_object_or_404(ProviderAccount, pk=object_id)
        if not self.has_change_permission(request, account):
            raise PermissionDenied
        initial = {
            "channel_id": request.GET.get("channel", ""),
            "conversation_id": request.GET.get("conversation", ""),
        }
        form = ReplyForm(request.POST or None, initial=initial)
        if request.method == "POST" and form.is_valid():
            sent = _run(
                self,
                request,
                account.name,
                services.inbound_reply,
                account=account,
                channel_external_id=form.cleaned_data["channel_id"],
                conversation_id=form.cleaned_data["conversation_id"],
                text=form.cleaned_data["text"],
            )
            if sent:
                return redirect("admin:providers_provideraccount_change", account.pk)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": account,
            "title": _("Reply to a conversation"),
            "intro": _(
                "Sends a text into the conversation an inbound message opened "
                "(Send Conversation Message)."
            ),
            "form": form,
            "submit_label": _("Send reply"),
        }
        return TemplateResponse(request, "admin/providers/action_form.html", context)


class OfficialAccountForm(forms.ModelForm):
    oa_secret = forms.CharField(
        label=_("OA secret key"),
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text=_("For X-ZEvent-Signature checks; write-only, blank keeps the stored one."),
    )

    class Meta:
        model = OfficialAccount
        fields = ["account", "oa_id", "name", "quality", "daily_quota", "remaining_quota", "app_id"]

    def save(self, commit=True):
        oa = super().save(commit=False)
        if self.cleaned_data.get("oa_secret"):
            oa.set_secret(self.cleaned_data["oa_secret"].strip())
        if commit:
            oa.save()
        return oa


@admin.register(OfficialAccount)
class OfficialAccountAdmin(admin.ModelAdmin):
    form = OfficialAccountForm
    list_display = [
        "name",
        "oa_id",
        "account",
        "quality",
        "daily_quota",
        "remaining_quota",
        "quota_updated_at",
    ]
    list_filter = ["account", "quality"]
    search_fields = ["name", "oa_id"]
    list_select_related = ["account"]


@admin.register(Channel)
class ChannelAdmin(MmpChannelAdminMixin, admin.ModelAdmin):
    """Channels; MMP channels also get the provider's information and Zalo consent pages
    (providers/admin_mmp.py)."""

    list_display = ["name", "kind", "account", "official_account", "is_active"]
    list_filter = ["kind", "account", "is_active"]
    search_fields = ["name", "external_id"]
    list_select_related = ["account", "official_account"]
    actions = ["check_channel"]

    # A marketer sees channels but not provider accounts: the account is shown as text, not as
    # a link that answers 403 (Django links every read-only foreign key).
    def _account_as_text(self, request, obj) -> bool:
        return not request.user.has_perm("providers.view_provideraccount") and (
            not self.has_change_permission(request, obj)
        )

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        return [*fields, "account_text"] if self._account_as_text(request, obj) else fields

    def get_fields(self, request, obj=None):
        fields = list(super().get_fields(request, obj))
        if "account_text" in fields and "account" in fields:
            fields.remove("account_text")
            fields[fields.index("account")] = "account_text"
        return fields

    @admin.display(description=_("provider account"))
    def account_text(self, obj):
        return str(obj.account) if obj and obj.account_id else "-"

    @admin.action(description=_("Check channel status at the provider"), permissions=["change"])
    def check_channel(self, request, queryset):
        for channel in queryset.select_related("account"):
            _run(self, request, channel.name, services.channel_check, channel=channel)
