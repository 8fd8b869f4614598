"""The campaign wizard's pages: channel -> template -> audience -> parameters -> review and send.

The Campaign row is created (status draft) at step 1 and saved at every step, so a marketer can
leave and come back where they stopped. CampaignAdmin.get_urls (campaigns/admin/campaign.py)
wraps these views in admin_site.admin_view (login, staff, CSRF as every admin page); they stay
thin: the forms (forms.py) validate, campaigns.selectors.wizard reads, campaigns.drafts writes,
campaigns.engine.lifecycle sends or schedules, and a refusal becomes an error message.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.humanize.templatetags.humanize import intcomma
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from campaigns.admin.wizard.forms import (
    AudienceStepForm,
    ChannelStepForm,
    MappingStepForm,
    ReviewStepForm,
    TemplateStepForm,
    speed_number,
)
from campaigns.admin.wizard.testsend import testsend_context
from campaigns.drafts import campaign_draft_create, campaign_draft_update
from campaigns.engine.lifecycle import campaign_schedule, campaign_send_now
from campaigns.models import Campaign, ContactList
from campaigns.selectors.campaign import campaign_preflight
from campaigns.selectors.fallback import campaign_fallback_estimate, chain_steps
from campaigns.selectors.wizard import (
    STEP_AUDIENCE,
    STEP_CHANNEL,
    STEP_MAPPING,
    STEP_REVIEW,
    STEP_TEMPLATE,
    audience_attribute_keys,
    audience_count,
    campaign_finish_note,
    campaign_invalid_recipients_note,
    campaign_mapping_check,
    campaign_quiet_hours_note,
    campaign_sample_previews,
    channel_allows_free_text,
    param_spec_suggest,
    wizard_channels,
    wizard_reachable_step,
    wizard_templates,
)
from providers.models import ChannelKind
from providers.shared.errors import Refused
from templates_app.rendering import CONTACT_FIELDS

STEPS = [
    (STEP_CHANNEL, _("Channel")),
    (STEP_TEMPLATE, _("Template")),
    (STEP_AUDIENCE, _("Audience")),
    (STEP_MAPPING, _("Parameters")),
    (STEP_REVIEW, _("Review and send")),
]
LAST_STEP = STEP_REVIEW
FIELD_LABELS = {"name": _("name"), "phone": _("phone")}


class CampaignWizard:
    """The wizard's views, bound to the CampaignAdmin that registers their URLs."""

    template_dir = "admin/campaigns/wizard"

    def __init__(self, model_admin):
        self.model_admin = model_admin

    # helpers
    def _context(self, request, campaign: Campaign | None, step: int, **extra):
        admin_site = self.model_admin.admin_site
        reach = wizard_reachable_step(campaign=campaign)
        return {
            **admin_site.each_context(request),
            "opts": Campaign._meta,
            "campaign": campaign,
            "step": step,
            "steps": [
                {"n": n, "label": label, "reachable": n <= reach, "current": n == step}
                for n, label in STEPS
            ],
            "last_step": LAST_STEP,
            "title": gettext("New campaign") if campaign is None else campaign.name,
            "subtitle": gettext("Step {n} of {total}: {label}").format(
                n=step, total=LAST_STEP, label=STEPS[step - 1][1]
            ),
            "can_send": request.user.has_perm("campaigns.send_campaign"),
            **extra,
        }

    def _render(self, request, name: str, context: dict):
        return TemplateResponse(request, f"{self.template_dir}/{name}.html", context)

    def _step_url(self, campaign: Campaign, step: int) -> str:
        return reverse("admin:campaigns_campaign_wizard", args=[campaign.pk, step])

    def _load(self, request, pk: int) -> Campaign:
        if not request.user.has_perm("campaigns.change_campaign"):
            raise PermissionDenied
        return get_object_or_404(
            Campaign.objects.select_related(
                "channel__account", "channel__official_account", "template"
            ),
            pk=pk,
        )

    def _not_draft(self, request, campaign: Campaign):
        messages.warning(
            request,
            gettext("“{name}” is no longer a draft; its page shows where it stands.").format(
                name=campaign.name
            ),
        )
        return HttpResponseRedirect(reverse("admin:campaigns_campaign_change", args=[campaign.pk]))

    def _advance(self, request, campaign: Campaign, step: int):
        """After a saved step: Next goes on, "save and close" goes back to the campaign page."""
        if "_save_close" in request.POST:
            messages.success(request, gettext("Draft saved."))
            return HttpResponseRedirect(
                reverse("admin:campaigns_campaign_change", args=[campaign.pk])
            )
        return HttpResponseRedirect(self._step_url(campaign, step + 1))

    # views
    def start_view(self, request):
        """Step 1 for a new campaign: creating the draft row."""
        if not request.user.has_perm("campaigns.add_campaign"):
            raise PermissionDenied
        form = ChannelStepForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            campaign = campaign_draft_create(
                name=form.cleaned_data["name"],
                channel=form.cleaned_data["channel"],
                test_mode=form.cleaned_data["test_mode"],
                user=request.user,
            )
            return self._advance(request, campaign, 1)
        return self._render(
            request,
            "step_channel",
            self._context(request, None, 1, form=form, channels=list(wizard_channels())),
        )

    def step_view(self, request, pk: int, step: int):
        campaign = self._load(request, pk)
        if campaign.status != Campaign.Status.DRAFT:
            return self._not_draft(request, campaign)
        if not 1 <= step <= LAST_STEP:
            return HttpResponseRedirect(self._step_url(campaign, 1))
        reach = wizard_reachable_step(campaign=campaign)
        if step > reach:
            messages.info(request, gettext("Finish this step first."))
            return HttpResponseRedirect(self._step_url(campaign, reach))
        handler = {
            STEP_CHANNEL: self._channel,
            STEP_TEMPLATE: self._template,
            STEP_AUDIENCE: self._audience,
            STEP_MAPPING: self._mapping,
            STEP_REVIEW: self._review,
        }[step]
        try:
            return handler(request, campaign)
        except Refused as exc:  # e.g. someone sent it from another tab meanwhile
            messages.error(request, exc.message)
            return HttpResponseRedirect(self._step_url(campaign, step))

    def _channel(self, request, campaign):
        initial = {
            "name": campaign.name,
            "channel": campaign.channel_id,
            "test_mode": campaign.test_mode,
        }
        form = ChannelStepForm(request.POST or None, initial=initial)
        if request.method == "POST" and form.is_valid():
            channel = form.cleaned_data["channel"]
            fields = {
                "name": form.cleaned_data["name"],
                "channel": channel,
                "test_mode": form.cleaned_data["test_mode"],
            }
            if channel.pk != campaign.channel_id:
                # A template belongs to one account/OA: a new channel may not send the old one.
                if (
                    campaign.template_id
                    and not wizard_templates(channel=channel)
                    .filter(pk=campaign.template_id)
                    .exists()
                ):
                    fields["template"] = None
                    fields["param_mapping"] = {}
                if not channel_allows_free_text(channel=channel):
                    fields["content"] = ""
                if channel.kind != ChannelKind.EMAIL:
                    fields["subject"] = ""  # only an email has one
            campaign_draft_update(campaign=campaign, **fields)
            return self._advance(request, campaign, 1)
        return self._render(
            request,
            "step_channel",
            self._context(request, campaign, 1, form=form, channels=list(wizard_channels())),
        )

    def _template(self, request, campaign):
        channel = campaign.channel
        form = TemplateStepForm(
            request.POST or None,
            channel=channel,
            initial={
                "template": campaign.template_id,
                "content": campaign.content,
                "subject": campaign.subject,
            },
        )
        if request.method == "POST" and form.is_valid():
            template = form.cleaned_data.get("template")
            fields = {
                "template": template,
                "content": form.cleaned_data.get("content", ""),
                "subject": form.cleaned_data.get("subject", ""),
            }
            if template is None or template.pk != campaign.template_id:
                fields["param_mapping"] = {}
            campaign_draft_update(campaign=campaign, **fields)
            return self._advance(request, campaign, 2)
        templates = list(form.fields["template"].queryset)
        return self._render(
            request,
            "step_template",
            self._context(
                request,
                campaign,
                2,
                form=form,
                templates=templates,
                free_text=channel_allows_free_text(channel=channel),
                can_view_templates=request.user.has_perm("templates_app.view_template"),
            ),
        )

    def _audience(self, request, campaign):
        initial = {
            "lists": list(campaign.lists.values_list("pk", flat=True)),
            "segments": list(campaign.segments.values_list("pk", flat=True)),
        }
        form = AudienceStepForm(request.POST or None, initial=initial)
        if request.method == "POST" and form.is_valid():
            campaign_draft_update(
                campaign=campaign,
                lists=form.cleaned_data["lists"],
                segments=form.cleaned_data["segments"],
            )
            return self._advance(request, campaign, 3)
        count = audience_count(
            channel=campaign.channel, list_ids=initial["lists"], segment_ids=initial["segments"]
        )
        has_lists = ContactList.objects.exists()
        return self._render(
            request,
            "step_audience",
            self._context(
                request,
                campaign,
                3,
                form=form,
                count=count,
                has_lists=has_lists,
                count_url=reverse("admin:campaigns_campaign_wizard_count", args=[campaign.pk]),
                can_import=request.user.has_perm("campaigns.add_contactimport"),
            ),
        )

    def _mapping(self, request, campaign):
        if campaign.template_id is None:
            # Free text has no parameters: nothing to map.
            if request.method == "POST":
                return self._advance(request, campaign, 4)
            return self._render(
                request, "step_mapping", self._context(request, campaign, 4, form=None)
            )
        params = list(campaign.template.params.all())
        keys = audience_attribute_keys(campaign=campaign)
        initial = dict(campaign.param_mapping or {})
        for p in params:
            initial.setdefault(p.name, param_spec_suggest(param=p, keys=keys))
        form = MappingStepForm(request.POST or None, params=params, initial_mapping=initial)
        if request.method == "POST" and form.is_valid():
            campaign = campaign_draft_update(campaign=campaign, param_mapping=form.mapping())
            if "_check" in request.POST:  # "check" stays on this step to show the previews
                messages.success(request, gettext("Mapping saved; see the check below."))
                return HttpResponseRedirect(self._step_url(campaign, 4))
            return self._advance(request, campaign, 4)
        saved = bool(campaign.param_mapping)
        return self._render(
            request,
            "step_mapping",
            self._context(
                request,
                campaign,
                4,
                form=form,
                rows=form.rows(),
                attribute_keys=keys,
                contact_fields=[(f, FIELD_LABELS.get(f, f)) for f in CONTACT_FIELDS],
                validation=campaign_mapping_check(campaign=campaign) if saved else None,
                previews=campaign_sample_previews(campaign=campaign) if saved else [],
            ),
        )

    def _review(self, request, campaign):
        form = ReviewStepForm(
            request.POST or None,
            campaign=campaign,
            initial={
                "scheduled_at": timezone.localtime(campaign.scheduled_at)
                if campaign.scheduled_at
                else None,
            },
        )
        if request.method == "POST" and form.is_valid():
            action = form.cleaned_data["action"]
            choice = form.cleaned_data.get("invalid_recipients")
            if choice and choice != campaign.invalid_recipients:
                campaign = campaign_draft_update(campaign=campaign, invalid_recipients=choice)
            if action == "save_choice":
                messages.success(request, gettext("Choice saved."))
                return HttpResponseRedirect(self._step_url(campaign, 5))
            if action == "save_consent":
                campaign_draft_update(
                    campaign=campaign,
                    requires_advertising_consent=form.cleaned_data["requires_advertising_consent"],
                )
                messages.success(request, gettext("Choice saved."))
                return HttpResponseRedirect(self._step_url(campaign, 5) + "#consent")
            if action == "save_speed":
                campaign_draft_update(campaign=campaign, rate_limit=form.cleaned_data["rate_limit"])
                messages.success(request, gettext("Speed saved."))
                return HttpResponseRedirect(self._step_url(campaign, 5) + "#speed")
            if not request.user.has_perm("campaigns.send_campaign"):
                raise PermissionDenied
            if action == "send_now":
                n = campaign_send_now(campaign_id=campaign.pk, user=request.user)
                messages.success(
                    request,
                    gettext("Sending started to {n} recipients.").format(n=intcomma(n)),
                )
            else:
                when = form.cleaned_data["scheduled_at"]
                campaign_schedule(campaign_id=campaign.pk, when=when, user=request.user)
                messages.success(
                    request,
                    gettext("Scheduled for {when}.").format(
                        when=formats.date_format(timezone.localtime(when), "DATETIME_FORMAT")
                    ),
                )
            return HttpResponseRedirect(
                reverse("admin:campaigns_campaign_change", args=[campaign.pk])
            )
        preflight = campaign_preflight(campaign=campaign)
        validation = campaign_mapping_check(campaign=campaign)
        chain = chain_steps(campaign=campaign)
        invalid = campaign_invalid_recipients_note(
            campaign=campaign, summary=validation["summary"], preflight=preflight
        )
        return self._render(
            request,
            "step_review",
            self._context(
                request,
                campaign,
                5,
                form=form,
                preflight=preflight,
                quiet=campaign_quiet_hours_note(campaign=campaign),
                validation=validation,
                invalid=invalid,
                finish=_finish_texts(
                    campaign_finish_note(
                        campaign=campaign,
                        recipients=invalid["will_receive"] if invalid else preflight["recipients"],
                    )
                ),
                lists=list(campaign.lists.all()),
                segment_list=list(campaign.segments.all()),
                # The fallback chain (issue 19): its steps and the expected fallback share.
                chain=chain,
                fallback_estimate=campaign_fallback_estimate(
                    campaign=campaign, recipients=preflight["will_receive"]
                )
                if chain
                else None,
                tz_name=timezone.get_default_timezone_name(),
                # The "Send a test" box (testsend.py), for whoever may send the campaign.
                **(
                    testsend_context(request, campaign)
                    if request.user.has_perm("campaigns.send_campaign")
                    else {}
                ),
            ),
        )

    def count_view(self, request, pk: int):
        """JSON: the live audience count for the lists/segments ticked on step 3."""
        campaign = self._load(request, pk)

        def ids(name):
            return [v for v in request.GET.getlist(name) if v.isdigit()]

        data = audience_count(
            channel=campaign.channel, list_ids=ids("lists"), segment_ids=ids("segments")
        )
        data["text"] = audience_count_text(data)
        return JsonResponse(data)


def _finish_texts(note: dict) -> dict:
    """The speeds in the reader's language: "0,5" and "30", never "0,50"."""
    return {
        **note,
        "rate_text": speed_number(note["rate"]),
        "per_minute_text": speed_number(note["per_minute"]),
    }


def audience_count_text(data: dict) -> str:
    if data["approximate"]:
        return gettext("About {n} contacts (exact count after the next step).").format(
            n=intcomma(data["contacts"])
        )
    return gettext("{recipients} recipients — {opted} opted out of this channel, excluded.").format(
        recipients=intcomma(data["recipients"]), opted=intcomma(data["opted_out"])
    )
