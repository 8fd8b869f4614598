"""Templates in the admin: provider sync, a preview with a real recipient, a test send. Custom
views are thin wrappers over the templates_app services, each wrapped in admin_site.admin_view
(login, staff and CSRF like every admin page). The real recipients and the campaigns' mappings of
the preview come from the RecipientSource campaigns installs (templates_app/preview.py); the
per-campaign validation pages are campaigns' (campaigns/admin/validation.py)."""

from __future__ import annotations

import logging

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from providers.admin import provider_account_action_add
from providers.models import Channel, ProviderAccount
from providers.shared.errors import Refused
from providers.shared.phones import normalize_phone
from templates_app.admin_mmp import MmpTemplateAdminMixin
from templates_app.formatting import format_vnd
from templates_app.models import Template, TemplateParam
from templates_app.params import template_params, template_params_from_body
from templates_app.preview import PICKS, recipient_source, template_preview
from templates_app.sync import http_url_or_empty, provider_lists_templates, templates_sync
from templates_app.testsend import template_test_send
from templates_app.validation import rule_for

logger = logging.getLogger("loa.templates")


def _sync_and_report(modeladmin, request, accounts) -> None:
    """Sync each account's templates and show its report: an error if something failed, a warning
    when templates became unusable or campaigns were acted on."""
    for account in accounts:
        report = templates_sync(account=account)
        level = messages.SUCCESS if report.ok else messages.ERROR
        if report.ok and (report.acted or report.newly_unusable):
            level = messages.WARNING
        modeladmin.message_user(request, report.message(), level)


@provider_account_action_add
@admin.action(description=_("Sync templates"), permissions=["change"])
def sync_templates(modeladmin, request, queryset):
    """The "Sync templates" action of the provider account list (providers.admin): template sync
    is this room's job, so this room offers it there."""
    _sync_and_report(modeladmin, request, queryset)


class TemplateParamInline(admin.TabularInline):
    model = TemplateParam
    fields = [
        "position",
        "name",
        "param_type",
        "provider_type",
        "required",
        "min_length",
        "max_length",
        "effective_limit",
    ]
    readonly_fields = ["provider_type", "effective_limit"]
    extra = 0

    @admin.display(description=_("limit used"))
    def effective_limit(self, obj):
        if obj is None or not obj.pk:
            return "-"
        rule = rule_for(obj)
        return rule.max_length or gettext("none")


@admin.register(Template)
class TemplateAdmin(MmpTemplateAdminMixin, admin.ModelAdmin):
    change_form_template = "admin/templates_app/template/change_form.html"
    change_list_template = "admin/templates_app/template/change_list.html"
    list_display = [
        "name",
        "provider_template_id",
        "channel_kind",
        "account",
        "official_account",
        "tag",
        "status_display",
        "price_vnd",
        "synced_at",
    ]
    list_filter = ["status", "channel_kind", "tag", "account", "official_account"]
    search_fields = ["name", "provider_template_id"]
    list_select_related = ["account", "official_account"]
    inlines = [TemplateParamInline]
    actions = ["sync_accounts"]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "account",
                    "official_account",
                    "channel_kind",
                    "provider_template_id",
                    "name",
                    "tag",
                    "price",
                ]
            },
        ),
        (
            _("Status"),
            {"fields": ["status", "status_reason", "status_changed_at", "synced_at"]},
        ),
        (
            _("Content"),
            {"fields": ["subject", "body", "strip_diacritics", "preview_url", "buttons"]},
        ),
    ]
    readonly_fields = ["synced_at", "status_changed_at"]

    @admin.display(description=_("price per message"), ordering="price")
    def price_vnd(self, obj):
        return format_vnd(obj.price)

    @admin.display(description=_("status"), ordering="status")
    def status_display(self, obj):
        css = {
            Template.Status.APPROVED: "loa-ok",
            Template.Status.DISABLED: "errornote",
            Template.Status.DELETED: "errornote",
            Template.Status.REJECTED: "errornote",
        }.get(obj.status, "")
        return format_html(
            '<span class="{}" title="{}">{}</span>',
            css,
            obj.status_reason,
            obj.get_status_display(),
        )

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        # Content templates: every {{placeholder}} becomes a parameter the mapping must fill.
        added = template_params_from_body(template=form.instance)
        if added:
            self.message_user(
                request,
                gettext("{n} parameter(s) added from the placeholders of the text.").format(
                    n=added
                ),
                messages.INFO,
            )

    # ---- sync ------------------------------------------------------------------------------

    @admin.action(
        description=_("Sync these templates' accounts from the provider"), permissions=["change"]
    )
    def sync_accounts(self, request, queryset):
        accounts = ProviderAccount.objects.filter(pk__in=queryset.values("account_id").distinct())
        _sync_and_report(self, request, accounts)

    def sync_view(self, request):
        if not self.has_change_permission(request):
            raise PermissionDenied
        accounts = [
            a
            for a in ProviderAccount.objects.filter(is_active=True).order_by("name")
            if _lists_templates(a)
        ]
        if request.method == "POST":
            chosen = [a for a in accounts if str(a.pk) in request.POST.getlist("account")]
            if not chosen:
                self.message_user(request, gettext("Choose at least one account."), messages.ERROR)
            else:
                _sync_and_report(self, request, chosen)
                return HttpResponseRedirect(reverse("admin:templates_app_template_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": gettext("Sync templates from providers"),
            "accounts": accounts,
        }
        return TemplateResponse(request, "admin/templates_app/template/sync.html", context)

    # ---- preview ---------------------------------------------------------------------------

    def _preview_context(self, request, template: Template) -> dict:
        """The preview panel: which recipient, with which mapping (a campaign's, or suggested), and
        what they would receive."""
        source = recipient_source()
        saved_mappings = source.saved_mappings(template=template)
        saved = None
        wanted = request.GET.get("preview_campaign", "")
        if wanted.isdigit():
            saved = next((s for s in saved_mappings if s.pk == int(wanted)), None)
        elif saved_mappings and wanted != "none":
            saved = saved_mappings[0]
        pick = request.GET.get("preview_pick", "first")
        if pick not in PICKS:
            pick = "first"
        phone = request.GET.get("preview_phone", "").strip()
        ctx = {
            "saved_mappings": saved_mappings,
            "saved": saved,
            "pick": pick,
            "picks": [
                ("first", gettext("the first recipient")),
                ("longest", gettext("the longest message")),
                ("failing", gettext("a failing recipient")),
            ],
            "phone": phone,
            "error": "",
            "result": None,
        }
        try:
            contact = source.recipient(template=template, saved=saved, pick=pick, phone=phone)
            if contact is None:
                if phone:
                    ctx["error"] = gettext("No contact has this phone number.")
                elif pick == "failing" and saved is not None:
                    ctx["error"] = gettext("No recipient of this campaign fails validation.")
            result = template_preview(
                contact=contact,
                template=template,
                mapping=saved.mapping if saved is not None else None,
            )
            result["lengths"] = [
                {
                    "name": p.name,
                    "value": result["data"].get(p.name, ""),
                    "length": len(result["data"].get(p.name, "")),
                    "max": rule_for(p).max_length,
                    "error": result["errors"].get(p.name, ""),
                }
                for p in template_params(template=template)
            ]
            # The provider's URL becomes a link: only an http(s) one (a stored javascript: URL,
            # from before sync checked the scheme, must never reach an href).
            result["preview_url"] = http_url_or_empty(result.get("preview_url"))
            ctx["result"] = result
        except Exception:  # the change page must open even if a preview cannot be built
            logger.exception("preview failed for template %s", template.pk)
            ctx["error"] = gettext("The preview could not be built; see the server log.")
        return ctx

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "can_sync": self.has_change_permission(request)}
        return super().changelist_view(request, extra_context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = extra_context or {}
        template = self.get_object(request, object_id)
        if template is not None:
            extra_context["preview"] = self._preview_context(request, template)
            extra_context["can_test_send"] = self.has_change_permission(request, template)
        return super().change_view(request, object_id, form_url, extra_context)

    # ---- test send -------------------------------------------------------------------------

    def test_send_view(self, request, pk):
        template = get_object_or_404(Template, pk=pk)
        if not self.has_change_permission(request, template):
            raise PermissionDenied
        params = template_params(template=template)
        result = None
        if request.method == "POST":
            form = TestSendForm(request.POST, template=template, params=params)
            if form.is_valid():
                try:
                    text = template_test_send(
                        template=template,
                        channel=form.cleaned_data["channel"],
                        phone=form.cleaned_data["phone"],
                        data=form.param_values(),
                    )
                    result = {"ok": True, "text": text}
                except Refused as exc:  # shown on the page, beside the form, like an answer
                    result = {"ok": False, "text": exc.message}
        else:
            form = TestSendForm(
                template=template, params=params, initial=_test_send_initial(request, template)
            )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": template,
            "title": gettext("Test send: {name}").format(name=template.name),
            "form": form,
            "result": result,
            "param_fields": [form[f"p_{i}"] for i in range(len(params))],
        }
        return TemplateResponse(request, "admin/templates_app/template/test_send.html", context)

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("sync/", wrap(self.sync_view), name="templates_app_template_sync"),
            path(
                "<int:pk>/test-send/",
                wrap(self.test_send_view),
                name="templates_app_template_test_send",
            ),
            *super().get_urls(),
        ]


def _lists_templates(account: ProviderAccount) -> bool:
    try:
        return provider_lists_templates(account)
    except KeyError:  # an account whose provider kind is no longer registered
        return False


def _test_send_initial(request, template: Template) -> dict:
    """Values from the preview link (?p_<name>=...), else the preview with the newest contact."""
    params = template_params(template=template)
    initial = {}
    if any(f"p_{p.name}" in request.GET for p in params):
        for i, p in enumerate(params):
            initial[f"p_{i}"] = request.GET.get(f"p_{p.name}", "")
    else:
        try:
            contact = recipient_source().recipient(
                template=template, saved=None, pick="first", phone=""
            )
            data = template_preview(contact=contact, template=template)["data"]
        except Exception:
            logger.exception("test-send prefill failed for template %s", template.pk)
            data = {}
        for i, p in enumerate(params):
            initial[f"p_{i}"] = data.get(p.name, "")
    channels = Channel.objects.filter(
        account_id=template.account_id, kind=template.channel_kind, is_active=True
    )
    if template.official_account_id:
        channels = channels.filter(official_account_id=template.official_account_id)
    first = channels.order_by("name").first()
    if first is not None:
        initial["channel"] = first.pk
    return initial


class TestSendForm(forms.Form):
    channel = forms.ModelChoiceField(queryset=Channel.objects.none(), label=_("Channel"))
    phone = forms.CharField(
        label=_("Phone"),
        max_length=40,
        help_text=_(
            "Zalo test mode only delivers to the admins of the Zalo app or OA (error -127 "
            "otherwise)."
        ),
    )

    def __init__(self, *args, template: Template, params: list, **kwargs):
        super().__init__(*args, **kwargs)
        self.template = template
        self.params = params
        self.fields["channel"].queryset = Channel.objects.filter(
            account_id=template.account_id, kind=template.channel_kind, is_active=True
        ).order_by("name")
        for i, p in enumerate(params):
            rule = rule_for(p)
            hint = [p.get_param_type_display()]
            if rule.max_length:
                hint.append(gettext("at most {n} characters").format(n=rule.max_length))
            self.fields[f"p_{i}"] = forms.CharField(
                label=p.name,
                required=False,
                max_length=2000,
                help_text=", ".join(h for h in hint if h),
            )

    def clean_phone(self):
        result = normalize_phone(self.cleaned_data["phone"])
        if not result.phone:
            raise forms.ValidationError(result.error or gettext("The phone number is not valid."))
        return result.phone

    def param_values(self) -> dict[str, str]:
        return {p.name: self.cleaned_data.get(f"p_{i}", "") for i, p in enumerate(self.params)}
