"""The wizard's five step forms: channel, template, audience, parameters, review. They validate
what a person typed; the views (views.py) save it through campaigns.drafts."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django import forms
from django.core.exceptions import ValidationError
from django.utils import formats, timezone
from django.utils.translation import gettext_lazy as _

from campaigns.contacts.typed import declared_types
from campaigns.models import Campaign, ContactList, Segment
from campaigns.selectors.wizard import (
    campaign_quiet_hours_note,
    campaign_rate_ceiling,
    channel_allows_free_text,
    wizard_channels,
    wizard_templates,
)
from providers.models import Channel, ChannelKind
from templates_app.formatting import FORMAT_CHOICES
from templates_app.models import Template, TemplateParam
from templates_app.rendering import (
    CONTACT_FIELDS,
    SOURCE_CHOICES,
    ContactData,
    render_params,
    validate_mapping,
)
from templates_app.validation import validate_data


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
    subject = forms.CharField(
        label=_("Email subject"),
        required=False,  # required with free text: clean()
        max_length=200,
        widget=forms.TextInput(attrs={"size": 60}),
        help_text=_(
            "Required when you write the message. It may contain the same {{placeholders}} "
            "as the message, filled in for each recipient."
        ),
    )

    def __init__(self, *args, channel: Channel, **kwargs):
        super().__init__(*args, **kwargs)
        self.channel = channel
        self.fields["template"].queryset = wizard_templates(channel=channel)
        if not channel_allows_free_text(channel=channel):
            del self.fields["content"]
        if channel.kind != ChannelKind.EMAIL:
            del self.fields["subject"]  # only an email has a subject

    def clean(self):
        data = super().clean()
        if not data.get("template") and not data.get("content"):
            if "content" in self.fields:
                raise ValidationError(_("Choose a template or write the message."))
            raise ValidationError(_("Choose a template."))
        if "subject" in self.fields:
            data["subject"] = (data.get("subject") or "").strip()
            if not data.get("content"):
                data["subject"] = ""  # a template's own subject is sent
            elif not data["subject"] and "subject" not in self.errors:
                self.add_error(
                    "subject", _("Write the email's subject: an email cannot be sent without one.")
                )
        return data


class AudienceStepForm(forms.Form):
    lists = forms.ModelMultipleChoiceField(
        label=_("Contact lists"),
        queryset=ContactList.objects.order_by("name"),
        widget=forms.CheckboxSelectMultiple,
        required=False,
    )
    segments = forms.ModelMultipleChoiceField(
        label=_("Segments"),
        queryset=Segment.objects.all(),
        widget=forms.CheckboxSelectMultiple,
        required=False,
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["lists"].label_from_instance = lambda cl: cl.name

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
        # Attributes declared dates are stored yyyy-mm-dd: shown dd/mm/yyyy unless a format is
        # chosen (a message reads "05/02/1990", never "1990-02-05").
        self.date_keys = {k for k, (kind, _fmt) in declared_types().items() if kind == "date"}
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
                    why = validate_data([p], rendered).get(p.name)
                    if why:
                        self.add_error(f"p{i}_value", why)
        return data

    def _spec(self, i: int, data: dict) -> dict:
        spec = {"source": data[f"p{i}_source"], "value": data[f"p{i}_value"]}
        if data.get(f"p{i}_format"):
            spec["format"] = data[f"p{i}_format"]
        elif spec["source"] == "attribute" and spec["value"] in self.date_keys:
            spec["format"] = "date"
        return spec

    def mapping(self) -> dict:
        return {p.name: self._spec(i, self.cleaned_data) for i, p in enumerate(self.params)}


class ReviewStepForm(forms.Form):
    # save_choice: keep the invalid-recipients choice on the draft and stay on the step;
    # save_speed: keep the speed (Campaign.rate_limit) on the draft and stay on the step
    # save_consent: keep the advertising-consent rule (Campaign.requires_advertising_consent)
    ACTIONS = ("send_now", "schedule", "save_choice", "save_speed", "save_consent")
    PER_SECOND, PER_MINUTE = "second", "minute"

    action = forms.ChoiceField(choices=[(a, a) for a in ACTIONS], widget=forms.HiddenInput)
    invalid_recipients = forms.ChoiceField(
        label=_("Recipients that fail the template's rules or that the channel cannot reach"),
        choices=Campaign.InvalidRecipients.choices,
        widget=forms.RadioSelect,
        required=False,
    )
    requires_advertising_consent = forms.BooleanField(
        label=_("Only contacts with advertising consent for this channel"),
        required=False,
        help_text=_(
            "Contacts without a current advertising consent for this channel are left out, and "
            "skipped at send time if their consent is withdrawn meanwhile."
        ),
    )
    scheduled_at = forms.DateTimeField(
        label=_("Send at"),
        required=False,
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%d/%m/%Y %H:%M"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text=_("Local time, Asia/Ho_Chi_Minh (UTC+7)."),
    )

    speed = forms.DecimalField(
        label=_("Speed"),
        required=False,
        min_value=Decimal("0.01"),
        max_digits=12,
        decimal_places=2,
        widget=forms.NumberInput(attrs={"step": "any", "min": "0.01", "size": 8}),
    )
    speed_unit = forms.ChoiceField(
        label=_("Unit"),
        choices=[
            (PER_SECOND, _("messages per second")),
            (PER_MINUTE, _("messages per minute")),
        ],
        required=False,
    )

    def __init__(self, *args, campaign: Campaign, **kwargs):
        super().__init__(*args, **kwargs)
        self.campaign = campaign
        self.fields["invalid_recipients"].initial = campaign.invalid_recipients
        self.fields["requires_advertising_consent"].initial = campaign.requires_advertising_consent
        # The account's limit is the ceiling and the default (campaigns.engine.driver paces at
        # the slower of the two); below one a second, a speed reads better per minute.
        self.ceiling = campaign_rate_ceiling(campaign=campaign)
        rate = campaign.rate_limit or self.ceiling
        per_minute = bool(rate) and rate < 1
        self.fields["speed_unit"].initial = self.PER_MINUTE if per_minute else self.PER_SECOND
        if rate:
            shown = Decimal(str(rate * 60 if per_minute else rate)).quantize(Decimal("0.01"))
            self.fields["speed"].initial = format(shown.normalize(), "f")  # 10, not 1E+1
        if self.is_bound and self.data.get("action") != "save_speed":
            # Another of the step's forms was posted: show the saved speed, not an empty box.
            self.data = self.data.copy()
            self.data.setdefault("speed", self.fields["speed"].initial or "")
            self.data.setdefault("speed_unit", self.fields["speed_unit"].initial)
        if self.ceiling:
            self.fields["speed"].help_text = _(
                "At most {n} messages per second ({m} per minute): the provider account's limit."
            ).format(n=speed_number(self.ceiling), m=speed_number(self.ceiling * 60))
        else:
            self.fields["speed"].help_text = _(
                "Empty: as fast as the provider answers (the provider account sets no limit)."
            )

    def clean(self):
        data = super().clean()
        action = data.get("action")
        if action == "save_speed":
            speed = data.get("speed")
            if speed is None:
                data["rate_limit"] = None
                return data
            per_minute = data.get("speed_unit") == self.PER_MINUTE
            rate = float(speed) / (60 if per_minute else 1)
            if self.ceiling and rate > self.ceiling * (1 + 1e-9):
                self.add_error(
                    "speed",
                    _(
                        "The provider account allows at most {n} messages per second "
                        "({m} per minute): choose a slower speed."
                    ).format(n=speed_number(self.ceiling), m=speed_number(self.ceiling * 60)),
                )
            data["rate_limit"] = rate
            return data
        if action == "save_consent":
            return data
        if action == "save_choice":
            if not data.get("invalid_recipients"):
                self.add_error("invalid_recipients", _("Choose what to do with them."))
            return data
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
            note = campaign_quiet_hours_note(
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


def speed_number(value: float) -> str:
    """A speed in the reader's language: 2,5 in Vietnamese, 2.5 in English, 120 without ",0"."""
    value = round(value, 2)
    return formats.number_format(
        int(value) if value == int(value) else value, use_l10n=True, force_grouping=True
    )
