"""The automation's create/edit form and the preview's day: they check what a person typed; the
services (services.py) schedule it."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from campaigns.automations.models import Automation
from campaigns.contacts.typed import declared_types
from campaigns.models import Campaign
from campaigns.selectors.wizard import channel_allows_free_text, wizard_channels
from templates_app.models import Template
from templates_app.rendering import validate_mapping

K = Automation.Kind


class AutomationForm(forms.ModelForm):
    # The wizard builds a message with its parameter screen; an automation can start from one.
    from_campaign = forms.ModelChoiceField(
        label=_("Copy the message from a campaign"),
        queryset=Campaign.objects.none(),
        required=False,
        help_text=_(
            "Optional: the channel, template, parameter mapping, text and audience of a campaign "
            "you built in the wizard fill the fields you left empty."
        ),
    )
    param_mapping = forms.JSONField(
        label=_("Parameter mapping"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "cols": 70}),
        help_text=_(
            "The same mapping as a campaign's, one entry per template parameter, e.g. "
            '{"customer_name": {"source": "field", "value": "name"}, "voucher": {"source": '
            '"constant", "value": "SN2026"}}. Sources: field, attribute, constant.'
        ),
    )

    class Meta:
        model = Automation
        fields = [
            "name",
            "kind",
            "channel",
            "template",
            "content",
            "subject",
            "param_mapping",
            "lists",
            "segments",
            "send_time",
            "frequency",
            "weekday",
            "month_day",
            "attribute_key",
            "direction",
            "offset_days",
            "ignore_year",
            "lunar_date",
            "feb29",
            "lunar_day",
            "lunar_month",
            "holiday_policy",
            "end_date",
            "max_runs",
        ]
        widgets = {
            "lists": forms.CheckboxSelectMultiple,
            "segments": forms.CheckboxSelectMultiple,
            "send_time": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
            "end_date": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["channel"].queryset = wizard_channels()
        self.fields["channel"].required = False  # clean(): given, or copied from a campaign
        self.fields["from_campaign"].queryset = Campaign.objects.order_by("-created_at")
        self.fields["template"].queryset = Template.objects.filter(
            status=Template.Status.APPROVED
        ).order_by("name")
        self.fields["send_time"].input_formats = ["%H:%M", "%H:%M:%S"]
        self.fields["end_date"].input_formats = ["%Y-%m-%d", "%d/%m/%Y"]
        self.fields["lunar_day"].validators.append(_between(1, 30))
        self.fields["lunar_month"].validators.append(_between(1, 12))
        self.fields["month_day"].validators.append(_between(1, 31))

    def clean(self):
        data = super().clean()
        self._copy_from_campaign(data)
        if data.get("channel") is None and "channel" not in self.errors:
            self.add_error("channel", _("Choose the channel (or a campaign to copy)."))
        self._clean_message(data)
        if not data.get("lists") and not data.get("segments"):
            self.add_error(None, _("Choose at least one contact list or segment."))
        kind = data.get("kind")
        if kind == K.RECURRING:
            frequency = data.get("frequency")
            if frequency == Automation.Frequency.WEEKLY and data.get("weekday") is None:
                self.add_error("weekday", _("Choose the weekday it runs on."))
            if frequency == Automation.Frequency.MONTHLY and not data.get("month_day"):
                self.add_error("month_day", _("Choose the day of the month it runs on."))
        elif kind == K.DATE_TRIGGER:
            key = (data.get("attribute_key") or "").strip()
            data["attribute_key"] = key
            if not key:
                self.add_error("attribute_key", _("Type the attribute that holds the date."))
            elif "__" in key:
                self.add_error("attribute_key", _('An attribute name cannot contain "__".'))
            if data.get("direction") == Automation.Direction.ON:
                data["offset_days"] = 0
            elif not data.get("offset_days"):
                self.add_error("offset_days", _("Type how many days before or after the date."))
            declared = declared_types(keys=[key]).get(key, ("", ""))[0] if key else ""
            if declared == "lunar_date":
                data["lunar_date"] = True  # declared a lunar date: read as one
            elif declared == "date" and data.get("lunar_date"):
                self.add_error(
                    "lunar_date",
                    _("“%(key)s” is declared a solar date in Attribute types.") % {"key": key},
                )
            elif declared == "number":
                self.add_error(
                    "attribute_key",
                    _("“%(key)s” is declared a number in Attribute types, not a date.")
                    % {"key": key},
                )
            if data.get("lunar_date"):
                data["ignore_year"] = True  # a lunar anniversary comes back every lunar year
        elif kind == K.LUNAR and not data.get("lunar_day"):
            self.add_error("lunar_day", _("Choose the lunar day (1-30)."))
        return data

    def _copy_from_campaign(self, data: dict) -> None:
        source = data.get("from_campaign")
        if source is None:
            return
        if data.get("channel") is None:
            data["channel"] = source.channel
        if data.get("channel") == source.channel and data.get("template") is None:
            data["template"] = source.template
            data["param_mapping"] = data.get("param_mapping") or source.param_mapping
        for name in ("content", "subject"):
            if not (data.get(name) or "").strip():
                data[name] = getattr(source, name)
        if not data.get("lists") and not data.get("segments"):
            data["lists"] = source.lists.all()
            data["segments"] = source.segments.all()

    def _clean_message(self, data: dict) -> None:
        channel, template = data.get("channel"), data.get("template")
        if channel is None:
            return
        if template is None and not (data.get("content") or "").strip():
            self.add_error(
                "template", _("Choose a template (or write the content for free-text channels).")
            )
            return
        if template is None:
            if not channel_allows_free_text(channel=channel):
                self.add_error("template", _("This channel sends approved templates only."))
            return
        if template.account_id != channel.account_id or template.channel_kind != channel.kind:
            self.add_error("template", _("This template cannot be sent on this channel."))
            return
        errors = validate_mapping(
            data.get("param_mapping") or {}, list(template.ordered_param_names())
        )
        for error in errors:
            self.add_error("param_mapping", error)


def _between(low: int, high: int):
    def check(value):
        if value is not None and not low <= value <= high:
            raise ValidationError(
                _("Choose a number from %(low)s to %(high)s."), params={"low": low, "high": high}
            )

    return check


class PreviewForm(forms.Form):
    day = forms.DateField(
        label=_("Day"),
        input_formats=["%Y-%m-%d", "%d/%m/%Y"],
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
