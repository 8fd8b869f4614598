"""The review step's "Send a test" box (issue 17, item 1): the campaign sent to a few phones,
with a chosen contact's data or typed values, by anyone who may send the campaign. Thin: the
form reads what was typed, campaigns.testsends sends and records, a refusal becomes an error
message. The numbers typed are remembered in the session ("to me": a User has no phone)."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from campaigns.contacts.search import contact_search
from campaigns.engine.audience import campaign_audience
from campaigns.engine.validation import campaign_params
from campaigns.models import Campaign, CampaignTestSend, Contact
from campaigns.testsends import (
    MAX_PHONES,
    campaign_test_send,
    daily_test_send_limit,
    daily_test_sends_left,
    explain_test_send,
)
from providers.shared.errors import Refused
from templates_app.validation import RecipientChecker

SESSION_PHONES = "loa_test_send_phones"
SESSION_RESULTS = "loa_test_send_results"
CONTACT_CHOICES = 10


class CampaignTestSendForm(forms.Form):
    phones = forms.CharField(
        label=_("Send to"),
        widget=forms.Textarea(attrs={"rows": 3, "cols": 24}),
        help_text=_("Your own phone, or up to 3 numbers, one per line."),
    )
    source = forms.ChoiceField(
        label=_("Fill the parameters with"),
        choices=[("contact", _("a contact's data")), ("values", _("values I type"))],
        initial="contact",
        widget=forms.RadioSelect,
        required=False,
    )
    contact = forms.IntegerField(required=False)

    def __init__(self, *args, params=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.param_names = [p.name for p in params]
        for name in self.param_names:
            self.fields[f"value__{name}"] = forms.CharField(label=name, required=False)

    def clean_phones(self) -> list[str]:
        text = self.cleaned_data["phones"].replace(",", "\n").replace(";", "\n")
        return [line.strip() for line in text.splitlines() if line.strip()]

    def values(self) -> dict:
        return {n: self.cleaned_data.get(f"value__{n}", "") for n in self.param_names}


def _may_test(model_admin, request) -> None:
    """Anyone who may send campaigns (the send permission) and see this one."""
    if not (
        model_admin.has_view_or_change_permission(request)
        and request.user.has_perm("campaigns.send_campaign")
    ):
        raise PermissionDenied


def _campaign(pk: int) -> Campaign:
    return get_object_or_404(
        Campaign.objects.select_related(
            "channel__account", "channel__official_account", "template"
        ),
        pk=pk,
    )


def _back(campaign: Campaign) -> str:
    if campaign.status == Campaign.Status.DRAFT:
        return reverse("admin:campaigns_campaign_wizard", args=[campaign.pk, 5]) + "#test-send"
    return reverse("admin:campaigns_campaign_change", args=[campaign.pk]) + "#test-sends"


def testsend_view(model_admin, request, pk: int):
    """POST: send the test, keep its rows' ids for the page that follows."""
    _may_test(model_admin, request)
    campaign = _campaign(pk)
    if request.method != "POST":
        return HttpResponseRedirect(_back(campaign))
    form = CampaignTestSendForm(request.POST, params=campaign_params(campaign))
    if not form.is_valid():
        messages.error(request, gettext("Enter at least one phone number."))
        return HttpResponseRedirect(_back(campaign))
    phones = form.cleaned_data["phones"]
    request.session[SESSION_PHONES] = phones[:MAX_PHONES]
    contact = None
    values = None
    if form.cleaned_data.get("source") == "values":
        values = form.values()
    elif form.cleaned_data.get("contact"):
        contact = Contact.objects.filter(pk=form.cleaned_data["contact"]).first()
    try:
        rows = campaign_test_send(
            campaign=campaign, user=request.user, phones=phones, contact=contact, values=values
        )
    except Refused as exc:
        messages.error(request, exc.message)
        return HttpResponseRedirect(_back(campaign))
    request.session[SESSION_RESULTS] = {"campaign": campaign.pk, "ids": [r.pk for r in rows]}
    accepted = sum(1 for r in rows if r.outcome == CampaignTestSend.Outcome.ACCEPTED)
    level = messages.SUCCESS if accepted == len(rows) else messages.WARNING
    messages.add_message(
        request,
        level,
        ngettext(
            "Test sent: {accepted} of {n} number accepted by the provider.",
            "Test sent: {accepted} of {n} numbers accepted by the provider.",
            len(rows),
        ).format(accepted=accepted, n=len(rows)),
    )
    return HttpResponseRedirect(_back(campaign))


def testsend_contacts_view(model_admin, request, pk: int):
    """JSON for the contact picker: contacts by name or phone, the audience's first by default."""
    _may_test(model_admin, request)
    campaign = _campaign(pk)
    term = request.GET.get("q", "")
    if term.strip():
        qs = contact_search(queryset=Contact.objects.all(), term=term).order_by("pk")
    else:
        qs = campaign_audience(campaign).order_by("pk")
    return JsonResponse({"results": [{"id": c.pk, "text": str(c)} for c in qs[:CONTACT_CHOICES]]})


def testsend_context(request, campaign: Campaign) -> dict:
    """What the review step's "Send a test" box shows: the form prefilled (remembered numbers,
    the first recipient's data), the last results, the tests left today."""
    params = campaign_params(campaign)
    contacts = list(campaign_audience(campaign).order_by("pk")[:CONTACT_CHOICES])
    # As typed: reformatting "+855 12 345 678" to its local "012 345 678" would have it read
    # as a Vietnamese number next time, on a channel whose country is Vietnam.
    initial = {"phones": "\n".join(_remembered(request))}
    if contacts and params:
        first = contacts[0]
        rendered = RecipientChecker(campaign.param_mapping or {}, params).render(
            first.phone, first.name, first.attributes
        )
        initial.update({f"value__{k}": v for k, v in rendered.items()})
    form = CampaignTestSendForm(initial=initial, params=params)
    return {
        "test_send": {
            "form": form,
            "value_fields": [form[f"value__{p.name}"] for p in params],
            "contacts": contacts,
            "results": _results(request, campaign),
            "left": daily_test_sends_left(user=request.user),
            "limit": daily_test_send_limit(),
            "max_phones": MAX_PHONES,
            "url": reverse("admin:campaigns_campaign_test_send", args=[campaign.pk]),
            "contacts_url": reverse(
                "admin:campaigns_campaign_test_send_contacts", args=[campaign.pk]
            ),
        }
    }


def _remembered(request) -> list[str]:
    phones = request.session.get(SESSION_PHONES) or []
    return [str(p) for p in phones if isinstance(p, str)][:MAX_PHONES]


def _results(request, campaign: Campaign) -> list[dict]:
    """The rows of this user's last test of this campaign (shown once)."""
    last = request.session.get(SESSION_RESULTS) or {}
    if last.get("campaign") != campaign.pk:
        return []
    request.session.pop(SESSION_RESULTS, None)
    rows = CampaignTestSend.objects.filter(pk__in=last.get("ids") or [], campaign=campaign)
    return [testsend_row(r) for r in rows.order_by("pk")]


def testsend_row(row: CampaignTestSend) -> dict:
    """One test send as the pages show it."""
    return {
        "row": row,
        "outcome": row.get_outcome_display(),
        "ok": row.outcome == CampaignTestSend.Outcome.ACCEPTED,
        "explanation": explain_test_send(row),
        "by": row.user.get_username() if row.user_id else "-",
    }
