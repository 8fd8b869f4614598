"""The MMP pages of the channel admin (issue 16): the provider's information and status of a
channel, fetched with a button (never on a page load: the provider may be slow), and one phone's
Zalo consent on a Zalo channel (check it, or send a consent request), with the answer shown.

Thin views over providers/channels.py. Only those who may change channels (the Administrator
role, or a superuser) see the links or open the pages; others get 403. What Loa assumed about
the API is said in the help text, with a link to the MMP section of docs/PROVIDERS.md, served
read-only by `assumptions_view`.
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.safestring import SafeString
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from providers.channels import (
    channel_offers_consent,
    channel_offers_management,
    channel_provider_report,
    channel_zalo_consent,
)
from providers.models import Channel
from providers.shared.errors import Refused
from providers.shared.phones import format_local, normalize_phone

MMP_SECTION = "## VNA MMP and Metfone MMP"


def assumed_help(text: str) -> SafeString:
    """`text`, then "Assumed" and a link to what docs/PROVIDERS.md says about it."""
    return format_html(
        '{} <a href="{}" target="_blank" rel="noopener">{}</a>',
        text,
        reverse("admin:providers_mmp_assumptions"),
        gettext("Assumed: see docs/PROVIDERS.md (VNA MMP and Metfone MMP)."),
    )


def mmp_section_text() -> str:
    """The MMP section of docs/PROVIDERS.md (the whole file if the heading moved)."""
    try:
        text = (settings.BASE_DIR / "docs" / "PROVIDERS.md").read_text(encoding="utf-8")
    except OSError:
        return gettext("docs/PROVIDERS.md is not installed on this server.")
    start = text.find(MMP_SECTION)
    if start < 0:
        return text
    end = text.find("\n---", start)
    return text[start : end if end > 0 else None]


CONSENT_STATES = {
    "granted": _("Consent granted"),
    "not_granted": _("No consent"),
    "requested": _("Consent requested, not answered yet"),
}


def consent_verdict(answer) -> str:
    if answer.state in CONSENT_STATES:
        return str(CONSENT_STATES[answer.state])
    if answer.provider_value:
        return gettext("The provider answered “{value}”, which Loa does not interpret.").format(
            value=answer.provider_value
        )
    return gettext("The answer names no consent status Loa recognises: read it below.")


class ConsentForm(forms.Form):
    phone = forms.CharField(
        label=_("Phone"),
        max_length=40,
        help_text=_("Any format: 0912 345 678, +84 912 345 678, 84912345678."),
    )

    def clean_phone(self):
        result = normalize_phone(self.cleaned_data["phone"])
        if not result.ok:
            raise forms.ValidationError(result.error)
        return result.phone


class MmpChannelAdminMixin:
    """Adds the provider information page and the Zalo consent page to ChannelAdmin."""

    change_form_template = "admin/providers/channel/change_form.html"

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path(
                "<path:object_id>/provider-info/",
                wrap(self.provider_info_view),
                name="providers_channel_provider_info",
            ),
            path(
                "<path:object_id>/zalo-consent/",
                wrap(self.consent_view),
                name="providers_channel_zalo_consent",
            ),
            path(
                "mmp-assumptions/",
                wrap(self.assumptions_view),
                name="providers_mmp_assumptions",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = dict(extra_context or {})
        channel = self.get_object(request, object_id)
        if channel is not None and self.has_change_permission(request, channel):
            if channel_offers_management(channel):
                extra_context["mmp_info_url"] = reverse(
                    "admin:providers_channel_provider_info", args=[channel.pk]
                )
            if channel_offers_consent(channel):
                extra_context["mmp_consent_url"] = reverse(
                    "admin:providers_channel_zalo_consent", args=[channel.pk]
                )
        return super().change_view(request, object_id, form_url, extra_context)

    def _channel(self, request, object_id) -> Channel:
        channel = get_object_or_404(Channel.objects.select_related("account"), pk=object_id)
        if not self.has_change_permission(request, channel):
            raise PermissionDenied
        return channel

    def _context(self, request, channel: Channel, title: str) -> dict:
        return {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": channel,
            "title": title,
        }

    def provider_info_view(self, request, object_id):
        """GET: the page and its button; POST: ask the provider, show its answers."""
        channel = self._channel(request, object_id)
        context = self._context(
            request, channel, gettext("Provider information: {name}").format(name=channel.name)
        )
        context["help"] = assumed_help(
            gettext(
                "Get channel information and Get Channel Status (ResponseChannelInfo, "
                "ChannelResponse) are named in seed 000; their paths and fields are not."
            )
        )
        context["offered"] = channel_offers_management(channel)
        if request.method == "POST":
            try:
                context["report"] = channel_provider_report(channel=channel)
            except Refused as exc:
                context["error"] = exc.message
        return TemplateResponse(request, "admin/providers/channel/provider_info.html", context)

    def consent_view(self, request, object_id):
        """Check one phone's consent (op=check), or send it a consent request (op=request)."""
        channel = self._channel(request, object_id)
        context = self._context(
            request, channel, gettext("Zalo consent: {name}").format(name=channel.name)
        )
        context["help"] = assumed_help(
            gettext(
                "Check Zalo Channel Consent Status and Send Consent request "
                "(ZaloCheckConsentResponse, ZaloRequestConsentRequest) are named in seed 000; "
                "their paths and fields are not."
            )
        )
        context["offered"] = channel_offers_consent(channel)
        if request.method == "POST":
            form = ConsentForm(request.POST)
            request_it = request.POST.get("op") == "request"
            if form.is_valid():
                phone = form.cleaned_data["phone"]
                context["phone_shown"] = format_local(phone)
                try:
                    answer = channel_zalo_consent(channel=channel, phone=phone, request=request_it)
                except Refused as exc:
                    context["error"] = exc.message
                    self.message_user(request, f"{channel.name}: {exc.message}", messages.ERROR)
                else:
                    context["answer"] = answer
                    context["verdict"] = consent_verdict(answer)
                    sentence = (
                        gettext("Consent request sent to {phone}: {verdict}")
                        if request_it
                        else gettext("Consent status for {phone}: {verdict}")
                    )
                    self.message_user(
                        request,
                        sentence.format(phone=phone, verdict=context["verdict"]),
                        messages.SUCCESS,
                    )
        else:
            form = ConsentForm(initial={"phone": request.GET.get("phone", "")})
        context["form"] = form
        return TemplateResponse(request, "admin/providers/channel/zalo_consent.html", context)

    def assumptions_view(self, request):
        """The MMP section of docs/PROVIDERS.md, as plain text: what the help texts link to."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        return HttpResponse(mmp_section_text(), content_type="text/plain; charset=utf-8")


def zalo_consent_channels() -> list[Channel]:
    """The active Zalo channels whose provider offers Zalo consent (VNA MMP)."""
    channels = (
        Channel.objects.filter(kind="zalo_zns", is_active=True)
        .exclude(external_id="")
        .select_related("account")
        .order_by("name")
    )
    return [c for c in channels if channel_offers_consent(c)]


def zalo_consent_links(phone: str) -> SafeString:
    """Links to each MMP Zalo channel's consent page with `phone` filled in (the contact page)."""
    links = [
        format_html(
            '<li><a class="mmp-consent-contact" href="{}?{}">{}</a></li>',
            reverse("admin:providers_channel_zalo_consent", args=[c.pk]),
            urlencode({"phone": phone}),
            gettext("Zalo consent on {channel}").format(channel=c.name),
        )
        for c in zalo_consent_channels()
    ]
    return format_html("<ul>{}</ul>", SafeString("".join(links))) if links else SafeString("")
