"""The campaign wizard: channel -> template -> audience -> parameters -> review and send.

The Campaign row is created (status draft) at step 1 and saved at every step, so a marketer can
leave and come back where they stopped. CampaignAdmin.get_urls wraps the views below in
admin_site.admin_view (login, staff, CSRF as every admin page); the views stay thin: forms
validate, the `campaign_draft_*` functions write, campaigns.engine.lifecycle sends or schedules.

Segments come from another part of the house: when campaigns.models has a Segment model and
Campaign a `segments` field, the audience step offers them; otherwise it offers lists only.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta

from django import forms
from django.apps import apps
from django.contrib import messages
from django.core.exceptions import FieldDoesNotExist, PermissionDenied, ValidationError
from django.db import connection, transaction
from django.db.models import Q
from django.http import HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop
from django.utils.translation import gettext_lazy as _

from campaigns import selectors
from campaigns.contacts.segments import segment_queryset
from campaigns.engine.audience import campaign_audience
from campaigns.engine.lifecycle import campaign_schedule, campaign_send_now, campaign_transition
from campaigns.models import Campaign, Contact, ContactList, ContactListMembership, OptOut
from campaigns.notes import Note
from providers.models import Channel, ChannelKind
from providers.shared.errors import Refused
from providers.shared.text import fold
from templates_app import rendering
from templates_app.formatting import FORMAT_CHOICES
from templates_app.models import Template, TemplateParam
from templates_app.rendering import (
    CONTACT_FIELDS,
    ContactData,
    render_body,
    render_params,
    validate_mapping,
)

logger = logging.getLogger("loa.wizard")

STEPS = [
    (1, _("Channel")),
    (2, _("Template")),
    (3, _("Audience")),
    (4, _("Parameters")),
    (5, _("Review and send")),
]
LAST_STEP = len(STEPS)

# The mapping vocabulary belongs to templates_app.rendering; these are the fallbacks for a
# rendering module that does not declare its choices.
SOURCE_CHOICES = getattr(
    rendering,
    "SOURCE_CHOICES",
    [
        ("field", _("Contact field")),
        ("attribute", _("Contact attribute")),
        ("constant", _("Fixed text")),
    ],
)
FIELD_LABELS = {"name": _("name"), "phone": _("phone")}

# Decree 91/2020/ND-CP: advertising messages only between 07:00 and 22:00 local time.
PROMOTION_HOURS = (7, 22)
# Zalo error -133: some templates are refused 22:00-06:00; the engine defers them to 06:00.
ZALO_NIGHT = (22, 6)


# ---- segments: optional, provided by another module when present ----------------------------


def segment_model():
    try:
        return apps.get_model("campaigns", "Segment")
    except LookupError:
        return None


def segments_enabled() -> bool:
    """Segments are offered only when the model and the campaign's link to it both exist."""
    if segment_model() is None:
        return False
    try:
        Campaign._meta.get_field("segments")
    except FieldDoesNotExist:
        return False
    return True


def _segment_queryset(segment):
    return segment_queryset(segment)


# ---- reads -------------------------------------------------------------------------------------


def wizard_channels():
    return (
        Channel.objects.filter(is_active=True, account__is_active=True)
        .select_related("account", "official_account")
        .order_by("name")
    )


def wizard_templates(*, channel: Channel):
    """Approved templates this channel can send: same provider account, and the channel's OA or
    none (a template registered for another OA would be refused by Zalo with -117)."""
    qs = Template.objects.filter(account_id=channel.account_id, status=Template.Status.APPROVED)
    if any(f.name == "channel_kind" for f in Template._meta.fields):
        qs = qs.filter(channel_kind=channel.kind)  # a ZNS template cannot go out as an SMS
    if channel.official_account_id:
        qs = qs.filter(
            Q(official_account__isnull=True) | Q(official_account_id=channel.official_account_id)
        )
    return qs.prefetch_related("params").order_by("name")


def channel_allows_free_text(channel: Channel) -> bool:
    """ZNS only sends approved templates; the other kinds may send a free text."""
    return channel.kind != ChannelKind.ZALO_ZNS


def audience_contacts(*, list_ids, segment_ids=()):
    """Contacts in any chosen list or segment (no duplicates: a semi-join, not a DISTINCT)."""
    cond = Q(
        pk__in=ContactListMembership.objects.filter(contact_list_id__in=list(list_ids)).values(
            "contact_id"
        )
    )
    Segment = segment_model()
    if Segment is not None and segment_ids:
        for segment in Segment.objects.filter(pk__in=list(segment_ids)):
            cond |= Q(pk__in=_segment_queryset(segment).values("pk"))
    return Contact.objects.filter(cond)


def audience_count(*, channel: Channel, list_ids, segment_ids=()) -> dict:
    """Live count for the audience step: contacts chosen, opted out of this channel, recipients.

    Lists of millions make an exact count slow: on PostgreSQL it runs under a statement timeout
    and falls back to the lists' stored sizes, marked approximate.
    """
    list_ids = [int(i) for i in list_ids]
    segment_ids = [int(i) for i in segment_ids]
    if not list_ids and not segment_ids:
        return {"contacts": 0, "opted_out": 0, "recipients": 0, "approximate": False}
    contacts = audience_contacts(list_ids=list_ids, segment_ids=segment_ids)
    opted = OptOut.objects.filter(channel_kind__in=[channel.kind, OptOut.ALL]).values("contact_id")

    def exact():
        total = contacts.count()
        recipients = contacts.exclude(pk__in=opted).count()
        return {
            "contacts": total,
            "opted_out": total - recipients,
            "recipients": recipients,
            "approximate": False,
        }

    if connection.vendor != "postgresql":
        return exact()
    from django.db import OperationalError

    try:
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute("SET LOCAL statement_timeout = 2000")
            return exact()
    except OperationalError:
        stored = sum(
            ContactList.objects.filter(pk__in=list_ids).values_list("contact_count", flat=True)
        )
        return {"contacts": stored, "opted_out": 0, "recipients": stored, "approximate": True}


def attribute_keys(*, campaign: Campaign, sample: int = 200) -> list[str]:
    """Attribute names seen on a sample of the audience: suggestions for the mapping step."""
    keys: set[str] = set()
    qs = campaign_audience(campaign).values_list("attributes", flat=True)[:sample]
    for attrs in qs:
        if isinstance(attrs, dict):
            keys.update(str(k) for k in attrs)
    return sorted(keys)


def suggest_spec(param: TemplateParam, keys: list[str]) -> dict:
    """A first guess for one parameter, so most templates need no typing at all: the rendering
    module's suggestion when it has one, corrected to an attribute the audience really has."""
    suggest = getattr(rendering, "mapping_suggest", None)
    spec = dict(suggest([param])[param.name]) if suggest else {}
    if spec.get("source") in ("field", "attribute") and (
        spec["source"] == "field" or spec.get("value") in keys
    ):
        return spec
    key = _attribute_for(param.name, keys)
    if key:
        return {**spec, "source": "attribute", "value": key}
    if not spec:
        t = TemplateParam.Type
        if param.param_type == t.CUSTOMER_NAME:
            return {"source": "field", "value": "name", "format": "trim"}
        if param.param_type == t.PHONE:
            return {"source": "field", "value": "phone"}
    return {"source": "constant", "value": "", "format": spec.get("format", "")}


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", fold(text).lower()).strip("_")


def _attribute_for(param_name: str, keys: list[str]) -> str | None:
    """The audience attribute a parameter most likely means: the same name ("Thành phố" is
    thanh_pho), else the only attribute named like one word of it (order_code -> order)."""
    wanted = _norm(param_name)
    same = [k for k in keys if _norm(k) == wanted]
    if same:
        return same[0]
    words = set(wanted.split("_"))
    partial = [k for k in keys if _norm(k) in words]
    return partial[0] if len(partial) == 1 else None


def value_problems(params: list[TemplateParam], data: dict[str, str]) -> dict[str, str]:
    """{param: why its value would be refused}; the full per-type rules when templates_app has
    them (templates_app.validation), required/length otherwise."""
    try:
        from templates_app.validation import validate_data
    except ImportError:
        validate_data = None
    if validate_data is not None:
        return validate_data(params, data)
    out = {}
    for p in params:
        value = data.get(p.name, "")
        if p.required and not value:
            out[p.name] = gettext("empty")
        elif p.max_length and len(value) > p.max_length:
            out[p.name] = gettext("{n} characters; at most {max}").format(
                n=len(value), max=p.max_length
            )
    return out


def sample_previews(*, campaign: Campaign, limit: int = 3) -> list[dict]:
    """The message as the first few recipients will see it, with per-parameter problems."""
    if campaign.template_id is None:
        return []
    params = list(campaign.template.params.all())
    out = []
    rows = campaign_audience(campaign).order_by("pk")[:limit]
    for contact in rows:
        data = render_params(
            campaign.param_mapping or {},
            ContactData(
                phone=contact.phone, name=contact.name, attributes=contact.attributes or {}
            ),
        )
        problems = [f"“{name}”: {why}" for name, why in value_problems(params, data).items()]
        out.append(
            {
                "contact": contact,
                "data": data,
                "body": render_body(campaign.template.body, data),
                "problems": problems,
            }
        )
    return out


def validation_summary(*, campaign: Campaign) -> dict:
    """Per-row validation from templates_app when it offers one; structural checks otherwise."""
    result = {"errors": [], "summary": None}
    if campaign.template_id is None:
        return result
    result["errors"] = validate_mapping(
        campaign.param_mapping or {}, list(campaign.template.ordered_param_names())
    )
    try:
        from campaigns.engine.validation import campaign_validation_summary
    except ImportError:
        return result
    if result["errors"]:
        return result  # per-row checks mean nothing while the mapping itself is incomplete
    try:
        result["summary"] = campaign_validation_summary(campaign=campaign)
    except Exception:  # a report, not a gate: the wizard must still render (the log has why)
        logger.exception("validation summary failed for campaign %s", campaign.pk)
    return result


def campaign_preflight(*, campaign: Campaign) -> dict:
    """selectors.campaign_preflight, with "contacts in the audience" counted over lists and
    segments alike (the base selector counts list members only)."""
    data = dict(selectors.campaign_preflight(campaign=campaign))
    if segments_enabled() and campaign.segments.exists():
        total = campaign_audience(campaign, include_opted_out=True).count()
        data["in_lists"] = total
        data["opted_out"] = max(0, total - data["recipients"])
    return data


# Why contacts were left out when the campaign was built (Campaign.excluded keys).
EXCLUDED_LABELS = {
    "opted_out": _("opted out of this channel"),
    "invalid": _("refused by the template's rules"),
    "invalid_params": _("refused by the template's rules"),
    "frequency": _("already got the most promotion messages allowed"),
    "frequency_cap": _("already got the most promotion messages allowed"),
}


def excluded_reasons(campaign: Campaign) -> list[tuple[str, int]]:
    excluded = getattr(campaign, "excluded", None) or {}
    return [
        (str(EXCLUDED_LABELS.get(k, k)), n)
        for k, n in excluded.items()
        if isinstance(n, int) and n > 0
    ]


def reachable_step(campaign: Campaign | None) -> int:
    """The furthest step this draft may open: each step needs what the previous ones chose."""
    if campaign is None:
        return 1
    if campaign.template_id is None and not campaign.content:
        return 2
    has_segments = segments_enabled() and campaign.segments.exists()
    if not campaign.lists.exists() and not has_segments:
        return 3
    if campaign.template_id is not None and validate_mapping(
        campaign.param_mapping or {}, list(campaign.template.ordered_param_names())
    ):
        return 4
    return LAST_STEP


def quiet_hours_note(*, campaign: Campaign, when: datetime | None = None) -> dict | None:
    """What the sending hours rules mean for this campaign at `when` (default: now)."""
    if campaign.template_id is None:
        return None
    local = timezone.localtime(when or timezone.now())
    promotion = campaign.template.tag == Template.Tag.PROMOTION
    start, end = PROMOTION_HOURS
    outside_ad_hours = not (start <= local.hour < end)
    zalo_night = campaign.channel.kind == ChannelKind.ZALO_ZNS and (
        local.hour >= ZALO_NIGHT[0] or local.hour < ZALO_NIGHT[1]
    )
    if not promotion and not zalo_night:
        return None
    return {
        "promotion": promotion,
        "blocked": promotion and outside_ad_hours,
        "zalo_night": zalo_night,
    }


# ---- writes ------------------------------------------------------------------------------------


def campaign_draft_create(
    *, name: str, channel: Channel, user, test_mode: bool = False
) -> Campaign:
    return Campaign.objects.create(
        name=name,
        channel=channel,
        test_mode=test_mode,
        status=Campaign.Status.DRAFT,
        created_by=user,
    )


def campaign_draft_update(*, campaign: Campaign, **fields) -> Campaign:
    """Save one step's choices onto a draft; refuses anything but a draft (the form can be stale)."""
    m2m = {k: fields.pop(k) for k in ("lists", "segments") if k in fields}
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if locked.status != Campaign.Status.DRAFT:
            raise ValidationError(_("Only a draft can be edited in the wizard."))
        for k, v in fields.items():
            setattr(locked, k, v)
        if fields:
            locked.save(update_fields=[*fields, "updated_at"])
        for k, v in m2m.items():
            getattr(locked, k).set(v)
    return locked


def campaign_unschedule(*, campaign_id: int, user=None) -> bool:
    """Scheduled -> draft, so the campaign can be edited again before its time comes."""
    return campaign_transition(
        campaign_id=campaign_id,
        to=Campaign.Status.DRAFT,
        user=user,
        note=Note(gettext_noop("Back to draft")),
        expect={Campaign.Status.SCHEDULED},
    )


# ---- forms -------------------------------------------------------------------------------------


class ChannelStepForm(forms.Form):
    name = forms.CharField(
        label=_("Campaign name"),
        max_length=200,
        help_text=_("For you and your team; recipients never see it."),
    )
    channel = forms.ModelChoiceField(
        label=_("Send on"),
        queryset=Channel.objects.none(),
        widget=forms.RadioSelect,
        empty_label=None,
    )

    test_mode = forms.BooleanField(
        label=_("Provider test mode"),
        required=False,
        help_text=_("eSMS Sandbox / eTelecom development mode: nothing is delivered."),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["channel"].queryset = wizard_channels()
        self.fields["channel"].label_from_instance = _channel_label


def _channel_label(ch: Channel) -> str:
    parts = [ch.name, str(ch.get_kind_display())]
    if ch.official_account_id:
        parts.append(ch.official_account.name)
    return " · ".join(parts)


class TemplateStepForm(forms.Form):
    template = forms.ModelChoiceField(
        label=_("Template"),
        queryset=Template.objects.none(),
        widget=forms.RadioSelect,
        required=False,
        empty_label=None,
    )
    content = forms.CharField(
        label=_("…or write the message"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "cols": 60}),
        help_text=_("Free text, for SMS, Viber and email channels only."),
    )

    def __init__(self, *args, channel: Channel, **kwargs):
        super().__init__(*args, **kwargs)
        self.channel = channel
        self.fields["template"].queryset = wizard_templates(channel=channel)
        if not channel_allows_free_text(channel):
            del self.fields["content"]

    def clean(self):
        data = super().clean()
        if not data.get("template") and not data.get("content"):
            if "content" in self.fields:
                raise ValidationError(_("Choose a template or write the message."))
            raise ValidationError(_("Choose a template."))
        return data


class AudienceStepForm(forms.Form):
    lists = forms.ModelMultipleChoiceField(
        label=_("Contact lists"),
        queryset=ContactList.objects.order_by("name"),
        widget=forms.CheckboxSelectMultiple,
        required=False,
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["lists"].label_from_instance = lambda cl: cl.name
        if segments_enabled():
            self.fields["segments"] = forms.ModelMultipleChoiceField(
                label=_("Segments"),
                queryset=segment_model().objects.all(),
                widget=forms.CheckboxSelectMultiple,
                required=False,
            )

    def clean(self):
        data = super().clean()
        if not data.get("lists") and not data.get("segments"):
            raise ValidationError(_("Choose at least one list or segment."))
        return data


class MappingStepForm(forms.Form):
    """One row per template parameter: where its value comes from, the value, a format."""

    def __init__(self, *args, params: list[TemplateParam], initial_mapping: dict, **kwargs):
        super().__init__(*args, **kwargs)
        self.params = params
        for i, p in enumerate(params):
            spec = initial_mapping.get(p.name) or {}
            self.fields[f"p{i}_source"] = forms.ChoiceField(
                label=_("Source"), choices=SOURCE_CHOICES, initial=spec.get("source", "constant")
            )
            self.fields[f"p{i}_value"] = forms.CharField(
                label=_("Value"), required=False, max_length=500, initial=spec.get("value", "")
            )
            fmt = spec.get("format", "") or ""
            choices = list(FORMAT_CHOICES)
            if fmt not in {k for k, _label in choices}:
                choices.append((fmt, fmt))  # a chain such as "trim|upper" typed elsewhere
            self.fields[f"p{i}_format"] = forms.ChoiceField(
                label=_("Format"), choices=choices, required=False, initial=fmt
            )

    def rows(self):
        return [
            {
                "param": p,
                "source": self[f"p{i}_source"],
                "value": self[f"p{i}_value"],
                "format": self[f"p{i}_format"],
                "errors": self.errors.get(f"p{i}_value"),
            }
            for i, p in enumerate(self.params)
        ]

    def clean(self):
        data = super().clean()
        for i, p in enumerate(self.params):
            source = data.get(f"p{i}_source")
            value = (data.get(f"p{i}_value") or "").strip()
            data[f"p{i}_value"] = value
            if source is None:
                continue
            if source == "field" and value not in CONTACT_FIELDS:
                self.add_error(
                    f"p{i}_value",
                    _("Choose a contact field: {fields}.").format(fields=", ".join(CONTACT_FIELDS)),
                )
                continue
            if source != "constant" and not value:
                self.add_error(f"p{i}_value", _("Type the attribute, column or expression."))
                continue
            spec = self._spec(i, data)
            errors = validate_mapping({p.name: spec}, [p.name])
            if errors:
                self.add_error(f"p{i}_value", errors)
            elif source == "constant":
                # The same text for everyone: check it now against the parameter's rules.
                rendered = render_params({p.name: spec}, ContactData("", "", {}))
                if p.required and not rendered.get(p.name):
                    self.add_error(f"p{i}_value", _("This parameter is required: type its text."))
                else:
                    why = value_problems([p], rendered).get(p.name)
                    if why:
                        self.add_error(f"p{i}_value", why)
        return data

    def _spec(self, i: int, data: dict) -> dict:
        spec = {"source": data[f"p{i}_source"], "value": data[f"p{i}_value"]}
        if data.get(f"p{i}_format"):
            spec["format"] = data[f"p{i}_format"]
        return spec

    def mapping(self) -> dict:
        return {p.name: self._spec(i, self.cleaned_data) for i, p in enumerate(self.params)}


class ReviewStepForm(forms.Form):
    ACTIONS = ("send_now", "schedule")

    action = forms.ChoiceField(choices=[(a, a) for a in ACTIONS], widget=forms.HiddenInput)
    scheduled_at = forms.DateTimeField(
        label=_("Send at"),
        required=False,
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%d/%m/%Y %H:%M"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text=_("Local time, Asia/Ho_Chi_Minh (UTC+7)."),
    )

    def __init__(self, *args, campaign: Campaign, **kwargs):
        super().__init__(*args, **kwargs)
        self.campaign = campaign

    def clean(self):
        data = super().clean()
        action = data.get("action")
        when = data.get("scheduled_at")
        if action == "schedule":
            if when is None:
                self.add_error("scheduled_at", _("Choose the date and time to send."))
                return data
            now = timezone.now()
            if when <= now + timedelta(minutes=1):
                self.add_error("scheduled_at", _("Choose a time in the future."))
            elif when > now + timedelta(days=366):
                self.add_error("scheduled_at", _("Choose a time within the next year."))
        if action in ("send_now", "schedule"):
            note = quiet_hours_note(
                campaign=self.campaign, when=when if action == "schedule" else None
            )
            if note and note["blocked"]:
                self.add_error(
                    "scheduled_at" if action == "schedule" else None,
                    _(
                        "Promotional messages may only be sent between 07:00 and 22:00 "
                        "(Decree 91/2020/ND-CP). Schedule it for the daytime."
                    ),
                )
        return data


# ---- views -------------------------------------------------------------------------------------


class CampaignWizard:
    """The wizard's views, bound to the CampaignAdmin that registers their URLs."""

    template_dir = "admin/campaigns/wizard"

    def __init__(self, model_admin):
        self.model_admin = model_admin

    # helpers
    def _context(self, request, campaign: Campaign | None, step: int, **extra):
        admin_site = self.model_admin.admin_site
        reach = reachable_step(campaign)
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
        reach = reachable_step(campaign)
        if step > reach:
            messages.info(request, gettext("Finish this step first."))
            return HttpResponseRedirect(self._step_url(campaign, reach))
        handler = {
            1: self._channel,
            2: self._template,
            3: self._audience,
            4: self._mapping,
            5: self._review,
        }[step]
        try:
            return handler(request, campaign)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
            return HttpResponseRedirect(self._step_url(campaign, step))
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
                if not channel_allows_free_text(channel):
                    fields["content"] = ""
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
            initial={"template": campaign.template_id, "content": campaign.content},
        )
        if request.method == "POST" and form.is_valid():
            template = form.cleaned_data.get("template")
            fields = {"template": template, "content": form.cleaned_data.get("content", "")}
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
                free_text=channel_allows_free_text(channel),
                can_view_templates=request.user.has_perm("templates_app.view_template"),
            ),
        )

    def _audience(self, request, campaign):
        initial = {"lists": list(campaign.lists.values_list("pk", flat=True))}
        if segments_enabled():
            initial["segments"] = list(campaign.segments.values_list("pk", flat=True))
        form = AudienceStepForm(request.POST or None, initial=initial)
        if request.method == "POST" and form.is_valid():
            fields = {"lists": form.cleaned_data["lists"]}
            if "segments" in form.cleaned_data:
                fields["segments"] = form.cleaned_data["segments"]
            campaign_draft_update(campaign=campaign, **fields)
            return self._advance(request, campaign, 3)
        count = audience_count(
            channel=campaign.channel,
            list_ids=initial["lists"],
            segment_ids=initial.get("segments", []),
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
                segments=segments_enabled(),
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
        keys = attribute_keys(campaign=campaign)
        initial = dict(campaign.param_mapping or {})
        for p in params:
            initial.setdefault(p.name, suggest_spec(p, keys))
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
                validation=validation_summary(campaign=campaign) if saved else None,
                previews=sample_previews(campaign=campaign) if saved else [],
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
            if not request.user.has_perm("campaigns.send_campaign"):
                raise PermissionDenied
            if action == "send_now":
                n = campaign_send_now(campaign_id=campaign.pk, user=request.user)
                messages.success(
                    request,
                    gettext("Sending started to {n} recipients.").format(n=_intcomma(n)),
                )
            else:
                when = form.cleaned_data["scheduled_at"]
                campaign_schedule(campaign_id=campaign.pk, when=when, user=request.user)
                messages.success(
                    request,
                    gettext("Scheduled for {when}.").format(
                        when=timezone.localtime(when).strftime("%H:%M %d/%m/%Y")
                    ),
                )
            return HttpResponseRedirect(
                reverse("admin:campaigns_campaign_change", args=[campaign.pk])
            )
        preflight = campaign_preflight(campaign=campaign)
        return self._render(
            request,
            "step_review",
            self._context(
                request,
                campaign,
                5,
                form=form,
                preflight=preflight,
                quiet=quiet_hours_note(campaign=campaign),
                validation=validation_summary(campaign=campaign),
                lists=list(campaign.lists.all()),
                segment_list=list(campaign.segments.all()) if segments_enabled() else [],
                tz_name=timezone.get_default_timezone_name(),
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


def _intcomma(n: int) -> str:
    from django.contrib.humanize.templatetags.humanize import intcomma

    return intcomma(n)


def audience_count_text(data: dict) -> str:
    if data["approximate"]:
        return gettext("About {n} contacts (exact count after the next step).").format(
            n=_intcomma(data["contacts"])
        )
    return gettext("{recipients} recipients — {opted} opted out of this channel, excluded.").format(
        recipients=_intcomma(data["recipients"]), opted=_intcomma(data["opted_out"])
    )
