"""The wizard's "Fallback" page (issue 19): one or two more channels after the campaign's own,
each with its message and parameter mapping, and the checks of each step for every recipient.

Reached from the review step ("Add a fallback step"); one page per step position
(`<pk>/wizard/fallback/<position>/`), in three forms that save in order: the channel and when
to fall back, the message (a template of that channel, or a free text), the parameters (the
same mapping rows as step 4). Writes go through campaigns.chains; checks come from
campaigns.selectors.fallback. CampaignAdmin.get_urls wraps it in admin_site.admin_view."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from campaigns.admin.wizard.forms import MappingStepForm, TemplateStepForm
from campaigns.chains import (
    fallback_step_delete,
    fallback_step_save_channel,
    fallback_step_save_mapping,
    fallback_step_save_message,
)
from campaigns.engine.fallback import campaign_step_view
from campaigns.engine.native import native_offered, native_step_errors
from campaigns.engine.validation import campaign_params
from campaigns.models import Campaign, FallbackStep
from campaigns.selectors.fallback import fallback_step_checks
from campaigns.selectors.wizard import (
    STEP_REVIEW,
    audience_attribute_keys,
    param_spec_suggest,
    wizard_channels,
)
from providers.fallback import NATIVE_FALLBACK, codes_table, sends_receipts
from providers.shared.errors import Refused
from templates_app.rendering import CONTACT_FIELDS


def _native(previous, position: int) -> bool:
    """Is the provider's own fallback offered after `previous` (campaigns.engine.native)?"""
    return native_offered(
        provider_kind=previous.account.kind, previous_kind=previous.kind, position=position
    )


class FallbackChannelForm(forms.Form):
    channel = forms.ModelChoiceField(label=_("Channel"), queryset=FallbackStep.objects.none())
    on_unreachable = forms.BooleanField(
        label=_("When the previous channel cannot reach the person"),
        required=False,
        initial=True,
        help_text=_(
            "The provider answered that this person cannot get it there: no Zalo account, "
            "blocked or refused the OA, invalid phone for that channel. A failure that another "
            "attempt could fix never falls back."
        ),
    )
    receipt_minutes = forms.IntegerField(
        label=_("When no delivery receipt after (minutes)"),
        required=False,
        min_value=1,
        max_value=7 * 24 * 60,
        initial=30,
        help_text=_(
            "Leave empty to not wait for receipts. A channel that sends no receipts never "
            "waits. A message delivered or read never falls back."
        ),
    )

    mode = forms.ChoiceField(
        label=_("How this step is sent"),
        choices=FallbackStep.Mode.choices,
        initial=FallbackStep.Mode.LOA,
        required=False,  # Loa's own fallback when not chosen
        widget=forms.RadioSelect,
        help_text=_(
            "The provider's own fallback: one request, the provider sends the SMS itself when "
            "the ZNS fails, and Loa records both steps from its answer and receipts. Built from "
            "the reference notes, not from the seeds: its request and answer formats are "
            "assumed where the notes are silent. For an SMS channel; the SMS text is this "
            "step's message."
        ),
    )

    def __init__(self, *args, exclude_channel_ids=(), native=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["channel"].queryset = wizard_channels().exclude(pk__in=exclude_channel_ids)
        if not native:  # offered only where the previous channel's provider has its own
            del self.fields["mode"]

    def clean(self):
        data = super().clean()
        if not data.get("on_unreachable") and not data.get("receipt_minutes"):
            raise forms.ValidationError(
                _(
                    "Choose when to fall back: when the channel cannot reach the person, or when "
                    "no receipt came in time, or both."
                )
            )
        return data


def _message_form(step: FallbackStep, data=None) -> TemplateStepForm:
    """The wizard's message form for the step's channel; without its template list when the
    channel has no approved template (a free text is the only choice then)."""
    form = TemplateStepForm(
        data,
        channel=step.channel,
        prefix="fb",
        initial={"template": step.template_id, "content": step.content, "subject": step.subject},
    )
    if "content" in form.fields and not form.fields["template"].queryset.exists():
        del form.fields["template"]
    return form


class FallbackPages:
    """The fallback page's view, bound to the campaign wizard (campaigns.admin.wizard.views)."""

    def __init__(self, wizard):
        self.wizard = wizard

    def _url(self, campaign: Campaign, position: int) -> str:
        return reverse("admin:campaigns_campaign_wizard_fallback", args=[campaign.pk, position])

    def view(self, request, pk: int, position: int):
        campaign = self.wizard._load(request, pk)
        if campaign.status != Campaign.Status.DRAFT:
            return self.wizard._not_draft(request, campaign)
        review = reverse("admin:campaigns_campaign_wizard", args=[campaign.pk, STEP_REVIEW])
        if position not in (1, 2):
            return HttpResponseRedirect(review)
        steps = {s.position: s for s in FallbackStep.objects.filter(campaign=campaign)}
        if position == 2 and 1 not in steps:
            messages.info(request, gettext("Add the first fallback step before the second."))
            return HttpResponseRedirect(self._url(campaign, 1))
        step = steps.get(position)
        previous = campaign.channel if position == 1 else steps[1].channel
        action = request.POST.get("action") if request.method == "POST" else None
        try:
            response = self._post(request, campaign, position, step, previous, action)
        except Refused as exc:
            messages.error(request, exc.message)
            return HttpResponseRedirect(self._url(campaign, position))
        if response is not None:
            return response
        return self._page(request, campaign, position, step, previous)

    def _post(self, request, campaign, position, step, previous, action):
        if action == "delete" and step is not None:
            fallback_step_delete(campaign=campaign, position=position)
            messages.success(request, gettext("Fallback step removed."))
            return HttpResponseRedirect(
                reverse("admin:campaigns_campaign_wizard", args=[campaign.pk, STEP_REVIEW])
            )
        if action == "channel":
            form = FallbackChannelForm(
                request.POST,
                exclude_channel_ids=[previous.pk],
                native=_native(previous, position),
            )
            if form.is_valid():
                fallback_step_save_channel(
                    campaign=campaign,
                    position=position,
                    channel=form.cleaned_data["channel"],
                    on_unreachable=form.cleaned_data["on_unreachable"],
                    receipt_minutes=form.cleaned_data["receipt_minutes"],
                    mode=form.cleaned_data.get("mode") or FallbackStep.Mode.LOA,
                )
                messages.success(request, gettext("Fallback channel saved."))
                return HttpResponseRedirect(self._url(campaign, position) + "#fallback-message")
            request.fallback_forms = {"channel": form}
        elif action == "message" and step is not None:
            form = _message_form(step, data=request.POST)
            if form.is_valid():
                fallback_step_save_message(
                    step=step,
                    template=form.cleaned_data.get("template"),
                    content=form.cleaned_data.get("content", ""),
                    subject=form.cleaned_data.get("subject", ""),
                )
                messages.success(request, gettext("Fallback message saved."))
                return HttpResponseRedirect(self._url(campaign, position) + "#fallback-mapping")
            request.fallback_forms = {"message": form}
        elif action == "mapping" and step is not None:
            params = list(campaign_params(campaign_step_view(campaign, step)))
            form = MappingStepForm(request.POST, params=params, initial_mapping={}, prefix="fm")
            if form.is_valid():
                fallback_step_save_mapping(step=step, mapping=form.mapping())
                messages.success(
                    request, gettext("Fallback parameters saved; see the check below.")
                )
                return HttpResponseRedirect(self._url(campaign, position) + "#fallback-check")
            request.fallback_forms = {"mapping": form}
        return None

    def _page(self, request, campaign, position, step, previous):
        bound = getattr(request, "fallback_forms", {})
        channel_form = bound.get("channel") or FallbackChannelForm(
            exclude_channel_ids=[previous.pk],
            native=_native(previous, position),
            initial={
                "mode": step.mode if step else FallbackStep.Mode.LOA,
                "channel": step.channel_id if step else None,
                "on_unreachable": step.on_unreachable if step else True,
                "receipt_minutes": (step.receipt_minutes if step else 30),
            },
        )
        message_form = mapping_form = checks = None
        rows = []
        if step is not None:
            message_form = bound.get("message") or _message_form(step)
            if step.template_id or step.content:
                view = campaign_step_view(campaign, step)
                params = list(campaign_params(view))
                initial = dict(step.param_mapping or {})
                keys = audience_attribute_keys(campaign=campaign)
                for p in params:
                    initial.setdefault(p.name, param_spec_suggest(param=p, keys=keys))
                mapping_form = bound.get("mapping") or MappingStepForm(
                    params=params, initial_mapping=initial, prefix="fm"
                )
                rows = mapping_form.rows() if params else []
                checks = fallback_step_checks(campaign=campaign, step=step)
        account = previous.account
        context = self.wizard._context(
            request,
            campaign,
            STEP_REVIEW,
            subtitle=gettext("Fallback step {n}: if “{channel}” does not reach someone").format(
                n=position, channel=previous.name
            ),
            position=position,
            fallback_step=step,
            previous=previous,
            channel_form=channel_form,
            message_form=message_form,
            mapping_form=mapping_form,
            rows=rows,
            checks=checks,
            contact_fields=[(f, f) for f in CONTACT_FIELDS],
            previous_codes=codes_table(account.kind),
            previous_receipts=sends_receipts(account.kind, previous.kind),
            native_offered=NATIVE_FALLBACK.get(account.kind, ""),
            native_mode=step is not None and step.mode == FallbackStep.Mode.PROVIDER,
            native_errors=native_step_errors(campaign=campaign, step=step) if step else [],
            can_add_second=position == 1
            and step is not None
            and step.mode != FallbackStep.Mode.PROVIDER,
        )
        return self.wizard._render(request, "fallback", context)
