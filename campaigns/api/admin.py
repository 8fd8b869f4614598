"""The API's applications and keys in the admin: a key is shown once, when it is created (the
page's message), and stored hashed; revoking is an action. Thin: services do the work."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from campaigns.api.auth import allowed_ips_errors
from campaigns.api.cache import cache_clear
from campaigns.api.keys import application_secret_new, key_issue
from campaigns.api.models import ApiApplication, ApiKey


@admin.register(ApiApplication)
class ApiApplicationAdmin(admin.ModelAdmin):
    list_display = ("name", "active", "callback_url", "key_count", "created_at")
    list_filter = ("active",)
    search_fields = ("name",)
    filter_horizontal = ("channels",)
    actions = ["regenerate_secret"]
    readonly_fields = ("links",)

    def get_fields(self, request, obj=None):
        fields = ["name", "active", "channels", "callback_url"]
        return [*fields, "links"] if obj is not None else fields

    @admin.display(description=_("messages and callbacks"))
    def links(self, obj: ApiApplication) -> str:
        """Where this application's traffic shows (the overview and the callbacks' log)."""
        try:
            overview = reverse("admin:api_overview")
            log = reverse("admin:api_callbackdelivery_changelist")
        except NoReverseMatch:
            return ""
        return format_html(
            '<a href="{}?application={}">{}</a> · <a href="{}?application__id__exact={}">{}</a>',
            overview,
            obj.pk,
            gettext("API messages of this application"),
            log,
            obj.pk,
            gettext("its status callbacks"),
        )

    @admin.display(description=_("keys"))
    def key_count(self, obj: ApiApplication) -> int:
        return obj.keys.count()

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)
        if not change:
            secret = application_secret_new(application=obj)
            self.message_user(
                request,
                format_html(
                    "{} <code>{}</code>",
                    gettext(
                        "The status callback secret of this application, shown only now (the "
                        "callbacks are signed with it; copy it into your system):"
                    ),
                    secret,
                ),
                messages.WARNING,
            )

    @admin.action(description=_("Make a new status callback secret (shown once)"))
    def regenerate_secret(self, request, queryset):
        for app in queryset:
            secret = application_secret_new(application=app)
            self.message_user(
                request,
                format_html(
                    "{} <code>{}</code>",
                    gettext("New callback secret of “%(name)s”, shown only now:")
                    % {"name": app.name},
                    secret,
                ),
                messages.WARNING,
            )


class ApiKeyForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        label=_("scopes"),
        choices=ApiKey.Scope.choices,
        widget=forms.CheckboxSelectMultiple,
        required=True,
    )

    class Meta:
        model = ApiKey
        fields = ("application", "name", "scopes", "channels", "allowed_ips", "expires_at")

    def clean_allowed_ips(self):
        value = self.cleaned_data.get("allowed_ips", "")
        bad = allowed_ips_errors(value)
        if bad:
            raise forms.ValidationError(
                gettext("Not an IP address or network: %(lines)s") % {"lines": ", ".join(bad)}
            )
        return value


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    form = ApiKeyForm
    list_display = (
        "name",
        "application",
        "prefix_shown",
        "scope_list",
        "state",
        "last_used_at",
        "expires_at",
        "created_at",
    )
    list_filter = ("application", "revoked_at")
    search_fields = ("name", "prefix", "application__name")
    filter_horizontal = ("channels",)
    readonly_fields = ("prefix_shown", "last_used_at", "revoked_at", "created_at")
    actions = ["revoke"]

    def get_readonly_fields(self, request, obj=None):
        # The application of an existing key never changes (its messages belong to it).
        if obj is not None:
            return (*self.readonly_fields, "application")
        return ()

    def get_fields(self, request, obj=None):
        fields = ["application", "name", "scopes", "channels", "allowed_ips", "expires_at"]
        if obj is not None:
            fields += ["prefix_shown", "last_used_at", "revoked_at", "created_at"]
        return fields

    @admin.display(description=_("prefix"))
    def prefix_shown(self, obj: ApiKey) -> str:
        return f"{obj.prefix}…" if obj.prefix else ""

    @admin.display(description=_("scopes"))
    def scope_list(self, obj: ApiKey) -> str:
        labels = dict(ApiKey.Scope.choices)
        return ", ".join(str(labels.get(s, s)) for s in obj.scopes or [])

    @admin.display(description=_("state"))
    def state(self, obj: ApiKey) -> str:
        if obj.revoked_at:
            return gettext("revoked")
        if obj.expires_at and obj.expires_at <= timezone.now():
            return gettext("expired")
        return gettext("active")

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        raw = key_issue(key=obj)  # sets prefix and hash; the key itself is never stored
        super().save_model(request, obj, form, change)
        self.message_user(
            request,
            format_html(
                "{} <code>{}</code>",
                gettext(
                    "The API key, shown only now: copy it into your system. Loa keeps only its "
                    "hash and cannot show it again."
                ),
                raw,
            ),
            messages.WARNING,
        )

    @admin.action(description=_("Revoke the selected keys"))
    def revoke(self, request, queryset):
        n = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        cache_clear()  # this process at once; the others within LOA_API_CACHE_SECONDS
        self.message_user(
            request,
            gettext("%(n)d key(s) revoked: requests with them are refused from now on.") % {"n": n},
            messages.SUCCESS,
        )


# The status callbacks' delivery log and the API overview page : registered by their module.
from campaigns.api.callbacks import admin as _callbacks_admin  # noqa: E402,F401
