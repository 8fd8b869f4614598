"""MMP templates in the admin (issue 16): create a template on the provider from its fields, and,
on an MMP template's page, get it again, change it or delete it at the provider. "List approved"
is the template sync (the "Sync templates" action and the daily schedule), which keeps the
approval state of the templates it does not list current through Get Template.

Thin views over templates_app/mmp.py. Creating needs the permission to add templates, getting and
changing the permission to change them, deleting the permission to delete them: the
Administrator role (or a superuser); a Marketer only views templates, sees no link and gets 403.
What Loa assumed about the provider's API is said in the help texts, linked to docs/PROVIDERS.md.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.http import urlencode
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from providers.admin import provider_account_action_add
from providers.admin_mmp import assumed_help
from providers.mmp.assumed import TEMPLATE_MESSAGE_TYPES
from providers.models import Channel, ProviderAccount
from providers.shared.errors import Refused
from templates_app.mmp import (
    TemplateOutcome,
    mmp_account_offers_templates,
    mmp_template_channels,
    mmp_template_create,
    mmp_template_delete,
    mmp_template_refresh,
    mmp_template_update,
)
from templates_app.models import Template


def _mmp_accounts():
    return [a for a in ProviderAccount.objects.order_by("name") if mmp_account_offers_templates(a)]


def _message_types(account: ProviderAccount | None) -> list[str]:
    """The account's MessageType values (settings `template_message_types`, assumed)."""
    if account is None:
        return list(TEMPLATE_MESSAGE_TYPES)
    try:
        values = account.get_provider().settings.get("template_message_types")
    except Exception:  # broken settings: the defaults still let the page open
        values = None
    return (
        [str(v) for v in values]
        if isinstance(values, list) and values
        else list(TEMPLATE_MESSAGE_TYPES)
    )


class MmpTemplateForm(forms.Form):
    """The provider's template fields (CreateFormTemplateMessage, as docs/PROVIDERS.md assumes)."""

    channel = forms.ModelChoiceField(queryset=Channel.objects.none(), label=_("Channel"))
    name = forms.CharField(label=_("Name"), max_length=200)
    message_type = forms.ChoiceField(label=_("Message type"), choices=())
    content = forms.CharField(
        label=_("Content"),
        widget=forms.Textarea(attrs={"rows": 6, "cols": 80}),
        help_text=_("The text, with {{param}} placeholders: each becomes a parameter."),
    )

    def __init__(self, *args, accounts: list[ProviderAccount], **kwargs):
        super().__init__(*args, **kwargs)
        # mmp_template_channels' rule (active, with a publicId), for every account offered.
        self.fields["channel"].queryset = (
            Channel.objects.filter(account__in=[a.pk for a in accounts], is_active=True)
            .exclude(external_id="")
            .select_related("account")
            .order_by("account__name", "name")
        )
        self.fields["channel"].label_from_instance = lambda c: (
            f"{c.name} — {c.get_kind_display()} — {c.account.name} ({c.external_id})"
        )
        types = _message_types(accounts[0] if len(accounts) == 1 else None)
        self.fields["message_type"].choices = [(t, t) for t in types]
        self.fields["channel"].help_text = assumed_help(
            gettext(
                "MMP templates belong to a channel: its publicId and applicationId are sent "
                "with the template."
            )
        )
        self.fields["message_type"].help_text = assumed_help(
            gettext("MessageType is named in seed 000; its values are not.")
        )


class DeleteConfirmForm(forms.Form):
    confirm = forms.BooleanField(label=_("Yes, delete this template at the provider"))


def _show(modeladmin, request, outcome: TemplateOutcome) -> None:
    level = messages.SUCCESS
    if outcome.warnings or any(f.items for f in outcome.followups):
        level = messages.WARNING
    modeladmin.message_user(request, outcome.message(), level)


@provider_account_action_add
@admin.action(description=_("Create a template on the provider"), permissions=["change"])
def create_template_on_provider(modeladmin, request, queryset):
    """Opens the template form for the first selected MMP account."""
    account = next((a for a in queryset.order_by("name") if mmp_account_offers_templates(a)), None)
    if account is None:
        modeladmin.message_user(
            request,
            gettext("Only a multi-channel (MMP) account can create templates from Loa."),
            messages.ERROR,
        )
        return None
    url = reverse("admin:templates_app_template_mmp_create")
    return HttpResponseRedirect(f"{url}?{urlencode({'account': account.pk})}")


class MmpTemplateAdminMixin:
    """Adds the MMP template pages to TemplateAdmin, and their links to its pages."""

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = dict(extra_context or {})
        extra_context["mmp_tools"] = self.mmp_tools(request, self.get_object(request, object_id))
        return super().change_view(request, object_id, form_url, extra_context)

    def changelist_view(self, request, extra_context=None):
        extra_context = dict(extra_context or {})
        if self.mmp_can_create(request):
            extra_context["mmp_create_url"] = reverse("admin:templates_app_template_mmp_create")
        return super().changelist_view(request, extra_context)

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path(
                "mmp-create/", wrap(self.mmp_create_view), name="templates_app_template_mmp_create"
            ),
            path(
                "<int:pk>/mmp-get/", wrap(self.mmp_get_view), name="templates_app_template_mmp_get"
            ),
            path(
                "<int:pk>/mmp-update/",
                wrap(self.mmp_update_view),
                name="templates_app_template_mmp_update",
            ),
            path(
                "<int:pk>/mmp-delete/",
                wrap(self.mmp_delete_view),
                name="templates_app_template_mmp_delete",
            ),
            *super().get_urls(),
        ]

    def mmp_tools(self, request, template: Template | None) -> dict:
        """The MMP links the change page shows this user (none for a Marketer)."""
        if template is None or not mmp_account_offers_templates(template.account):
            return {}
        tools = {}
        if self.has_change_permission(request, template):
            tools["get"] = reverse("admin:templates_app_template_mmp_get", args=[template.pk])
            tools["update"] = reverse("admin:templates_app_template_mmp_update", args=[template.pk])
        if self.has_delete_permission(request, template):
            tools["delete"] = reverse("admin:templates_app_template_mmp_delete", args=[template.pk])
        return tools

    def mmp_can_create(self, request) -> bool:
        return self.has_add_permission(request) and bool(_mmp_accounts())

    def _page(self, request, title: str, **extra) -> TemplateResponse:
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": title,
            **extra,
        }
        return TemplateResponse(request, "admin/templates_app/template/mmp_form.html", context)

    def _template(self, request, pk: int, *, delete: bool = False) -> Template:
        template = get_object_or_404(Template.objects.select_related("account"), pk=pk)
        allowed = (
            self.has_delete_permission(request, template)
            if delete
            else self.has_change_permission(request, template)
        )
        if not allowed:
            raise PermissionDenied
        if not mmp_account_offers_templates(template.account):
            raise PermissionDenied  # not a template this page can manage
        return template

    def _change_url(self, template: Template) -> str:
        return reverse("admin:templates_app_template_change", args=[template.pk])

    def mmp_create_view(self, request):
        if not self.has_add_permission(request):
            raise PermissionDenied
        accounts = _mmp_accounts()
        wanted = request.GET.get("account", "")
        if wanted.isdigit() and any(a.pk == int(wanted) for a in accounts):
            accounts = [a for a in accounts if a.pk == int(wanted)]
        form = MmpTemplateForm(
            request.POST if request.method == "POST" else None, accounts=accounts
        )
        error = ""
        if request.method == "POST" and form.is_valid():
            channel = form.cleaned_data["channel"]
            try:
                outcome = mmp_template_create(
                    account=channel.account,
                    channel=channel,
                    name=form.cleaned_data["name"],
                    message_type=form.cleaned_data["message_type"],
                    content=form.cleaned_data["content"],
                )
            except Refused as exc:
                error = exc.message
            else:
                _show(self, request, outcome)
                return HttpResponseRedirect(self._change_url(outcome.template))
        return self._page(
            request,
            gettext("Create a template on the provider"),
            form=form,
            error=error,
            accounts=accounts,
            submit_label=gettext("Create on the provider"),
            intro=assumed_help(
                gettext(
                    "Create Template (CreateFormTemplateMessage) is named in seed 000; its "
                    "fields and path are not. The template is stored as pending until the "
                    "provider approves it; the template sync keeps its state current."
                )
            ),
        )

    def mmp_get_view(self, request, pk):
        template = self._template(request, pk)
        if request.method != "POST":
            return HttpResponseRedirect(self._change_url(template))
        try:
            _show(self, request, mmp_template_refresh(template=template))
        except Refused as exc:
            self.message_user(request, f"{template.name}: {exc.message}", messages.ERROR)
        return HttpResponseRedirect(self._change_url(template))

    def mmp_update_view(self, request, pk):
        template = self._template(request, pk)
        accounts = [template.account]
        initial = {"name": template.name, "content": template.body}
        first = (
            mmp_template_channels(template.account)
            .filter(kind=template.channel_kind)
            .order_by("name")
            .first()
        )
        if first is not None:
            initial["channel"] = first.pk
        form = MmpTemplateForm(
            request.POST if request.method == "POST" else None, accounts=accounts, initial=initial
        )
        error = ""
        if request.method == "POST" and form.is_valid():
            try:
                outcome = mmp_template_update(
                    template=template,
                    channel=form.cleaned_data["channel"],
                    name=form.cleaned_data["name"],
                    message_type=form.cleaned_data["message_type"],
                    content=form.cleaned_data["content"],
                )
            except Refused as exc:
                error = exc.message
            else:
                _show(self, request, outcome)
                return HttpResponseRedirect(self._change_url(outcome.template))
        return self._page(
            request,
            gettext("Change {name} at the provider").format(name=template.name),
            form=form,
            error=error,
            original=template,
            submit_label=gettext("Update on the provider"),
            intro=assumed_help(
                gettext(
                    "Update Template is named in seed 000; its fields and path are not. A "
                    "changed template may go back to review: its approval state is read again."
                )
            ),
        )

    def mmp_delete_view(self, request, pk):
        template = self._template(request, pk, delete=True)
        form = DeleteConfirmForm(request.POST if request.method == "POST" else None)
        error = ""
        if request.method == "POST" and form.is_valid():
            try:
                outcome = mmp_template_delete(template=template)
            except Refused as exc:
                error = exc.message
            else:
                _show(self, request, outcome)
                return HttpResponseRedirect(self._change_url(outcome.template))
        return self._page(
            request,
            gettext("Delete {name} at the provider").format(name=template.name),
            form=form,
            error=error,
            original=template,
            submit_label=gettext("Delete at the provider"),
            intro=assumed_help(
                gettext(
                    "Delete Template is named in seed 000; its path is not. Loa keeps the "
                    "template, marked deleted, so the campaigns that used it keep their "
                    "history; campaigns running or scheduled on it are paused."
                )
            ),
        )
