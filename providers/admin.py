from django import forms
from django.contrib import admin, messages
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from providers import services
from providers.models import Channel, OfficialAccount, ProviderAccount
from providers.registry import PROVIDERS

ALL_SECRET_FIELDS = sorted({f for cls in PROVIDERS.values() for f in cls.secret_fields})


class _ProviderAccountFormBase(forms.ModelForm):
    """Secrets are write-only: the form never renders a stored value, and a blank field keeps it."""

    class Meta:
        model = ProviderAccount
        fields = ["name", "kind", "base_url", "settings", "rate_limit", "is_active"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        stored = set(self.instance.get_secrets()) if self.instance.pk else set()
        for name in ALL_SECRET_FIELDS:
            used_by = ", ".join(
                cls.label for cls in PROVIDERS.values() if name in cls.secret_fields
            )
            hint = _("Stored; leave blank to keep it.") if name in stored else _("Not set.")
            self.fields[f"secret_{name}"].help_text = format_html(
                "{} {}", hint, _("Used by: {}").format(used_by)
            )

    def save(self, commit=True):
        account = super().save(commit=False)
        current = {} if self.cleaned_data.get("clear_secrets") else account.get_secrets()
        for name in ALL_SECRET_FIELDS:
            value = self.cleaned_data.get(f"secret_{name}")
            if value:
                current[name] = value.strip()
        account.set_secrets(current)
        if commit:
            account.save()
        return account


# Declared on the class (not in __init__) so the admin's fieldsets know them.
_SECRET_FORM_FIELDS = {
    f"secret_{name}": forms.CharField(
        label=name, required=False, widget=forms.PasswordInput(render_value=False)
    )
    for name in ALL_SECRET_FIELDS
}
_SECRET_FORM_FIELDS["clear_secrets"] = forms.BooleanField(
    label=_("Clear all stored secrets"), required=False
)
ProviderAccountForm = type(
    "ProviderAccountForm", (_ProviderAccountFormBase,), dict(_SECRET_FORM_FIELDS)
)


class OfficialAccountInline(admin.TabularInline):
    model = OfficialAccount
    fields = ["oa_id", "name", "quality", "daily_quota", "remaining_quota", "quota_updated_at"]
    readonly_fields = ["quota_updated_at"]
    extra = 0
    show_change_link = True


@admin.register(ProviderAccount)
class ProviderAccountAdmin(admin.ModelAdmin):
    form = ProviderAccountForm
    list_display = ["name", "kind", "is_active", "rate_limit", "last_callback_at"]
    list_filter = ["kind", "is_active"]
    search_fields = ["name"]
    readonly_fields = ["webhook_url_display", "last_callback_at", "secrets_status"]
    inlines = [OfficialAccountInline]
    actions = ["test_connection", "sync_official_accounts"]

    def get_fieldsets(self, request, obj=None):
        secret_names = [f"secret_{n}" for n in ALL_SECRET_FIELDS]
        return [
            (None, {"fields": ["name", "kind", "base_url", "is_active", "rate_limit"]}),
            (
                _("Credentials (write-only)"),
                {"fields": ["secrets_status", *secret_names, "clear_secrets"]},
            ),
            (_("Settings"), {"fields": ["settings"]}),
            (_("Webhook"), {"fields": ["webhook_url_display", "last_callback_at"]}),
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

    @admin.display(description=_("Stored credentials"))
    def secrets_status(self, obj):
        if not obj.pk:
            return "-"
        names = sorted(obj.get_secrets())
        return ", ".join(f"{n}: ••••" for n in names) if names else _("none")

    @admin.action(description=_("Test connection"), permissions=["change"])
    def test_connection(self, request, queryset):
        for account in queryset:
            ok, text = services.account_test_connection(account=account)
            self.message_user(
                request, f"{account.name}: {text}", messages.SUCCESS if ok else messages.ERROR
            )

    @admin.action(description=_("Sync Official Accounts"), permissions=["change"])
    def sync_official_accounts(self, request, queryset):
        for account in queryset:
            ok, text = services.account_sync_official_accounts(account=account)
            self.message_user(
                request, f"{account.name}: {text}", messages.SUCCESS if ok else messages.ERROR
            )


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
class ChannelAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "account", "official_account", "is_active"]
    list_filter = ["kind", "account", "is_active"]
    search_fields = ["name", "external_id"]
    list_select_related = ["account", "official_account"]
