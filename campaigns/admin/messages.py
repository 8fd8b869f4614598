"""Messages in the admin: the list (filtered by campaign or error class, searched by phone,
provider id, idempotency key or error code, counted from the campaign's own counters) and the
read-only message page with its HTTP attempts. Messages are the record of what was sent: never
added, edited or deleted here."""

from __future__ import annotations

from django.contrib import admin
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from campaigns.admin.paginators import EstimatedCountPaginator
from campaigns.engine.keys import idempotency_key_parse
from campaigns.models import Campaign, Contact, Message, MessageAttempt
from campaigns.selectors.campaign import campaign_id_range
from providers.base import ErrorClass
from providers.errors import explain
from providers.shared.phone_display import phone_html
from providers.shared.phones import format_local, phone_candidates
from templates_app.formatting import format_vnd


class MessageAttemptInline(admin.TabularInline):
    model = MessageAttempt
    fields = [
        "created_at",
        "status_code",
        "duration_ms",
        "error_class",
        "error",
        "in_flight",
        "state",
        "request_body",
        "response_body",
    ]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description=_("State"))
    def state(self, obj):
        return obj.state_text()


class CampaignFilter(admin.SimpleListFilter):
    """Messages of one campaign. Offers the recent campaigns (never all of them: the sidebar must
    not grow with the history) plus the one selected."""

    title = _("campaign")
    parameter_name = "campaign__id__exact"
    RECENT = 15

    def lookups(self, request, model_admin):
        recent = list(
            Campaign.objects.order_by("-created_at").values_list("pk", "name")[: self.RECENT]
        )
        chosen = self.value()
        if chosen and chosen.isdigit() and int(chosen) not in {pk for pk, _name in recent}:
            recent += list(Campaign.objects.filter(pk=int(chosen)).values_list("pk", "name"))
        return [(str(pk), name) for pk, name in recent]

    def queryset(self, request, queryset):
        value = self.value()
        if value and value.isdigit():
            queryset = queryset.filter(campaign_id=int(value))
            # The campaign's id range too (two index probes): the list is ordered by id, and
            # PostgreSQL would otherwise walk the primary key back from the newest message
            # until it met this campaign's, 34 s for an older campaign at 50M messages.
            span = campaign_id_range(campaign=Campaign(pk=int(value)))
            if span is None:
                return queryset.none()
            return queryset.filter(pk__range=span)
        return queryset


class ErrorClassFilter(admin.SimpleListFilter):
    """The engine's error classes, from the enum: the automatic filter would run a DISTINCT over
    every message to discover five known values."""

    title = _("error class")
    parameter_name = "error_class__exact"

    def lookups(self, request, model_admin):
        labels = {
            ErrorClass.RETRYABLE: _("Retryable"),
            ErrorClass.AMBIGUOUS: _("Outcome unknown"),
            ErrorClass.DEFERRED: _("Deferred (quota, night)"),
            ErrorClass.PERMANENT: _("Permanent"),
            ErrorClass.CONFIGURATION: _("Configuration"),
        }
        return [(c.value, labels.get(c, c.value)) for c in ErrorClass]

    def queryset(self, request, queryset):
        return queryset.filter(error_class=self.value()) if self.value() else queryset


class CampaignCountPaginator(EstimatedCountPaginator):
    """When the list shows exactly one campaign's messages (or its failures), the campaign row
    already knows how many there are: no COUNT(*) over a million rows."""

    known_count: int | None = None

    @cached_property
    def count(self) -> int:
        if self.known_count is not None:
            return self.known_count
        return super().count


class StepFilter(admin.SimpleListFilter):
    """A fallback chain's step, from a fixed list (a field filter would read every distinct
    value of the message table)."""

    title = _("step")
    parameter_name = "step__exact"

    def lookups(self, request, model_admin):
        return [("0", _("First")), ("1", _("Fallback 1")), ("2", _("Fallback 2"))]

    def queryset(self, request, queryset):
        if self.value() in ("0", "1", "2"):
            return queryset.filter(step=int(self.value()))
        return queryset


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = [
        "local_phone",
        "campaign_name",
        "step",
        "status",
        "error",
        "sent_at",
        "delivered_at",
        "read_at",
        "fee_vnd",
    ]
    # 50 rows: rendering a row costs more than finding it; a million-row list stays fast.
    list_per_page = 50
    # "step": a fallback chain's steps (0 = the campaign's own channel; campaigns.engine.fallback)
    list_filter = [CampaignFilter, StepFilter, "status", ErrorClassFilter]
    # A phone and an idempotency key are searched in get_search_results, through indexes (the
    # message's own phone and key have none: a million-row materialization would pay for them).
    search_fields = ["=provider_message_id", "=error_code"]
    search_help_text = _(
        "A phone (any format), provider message id, idempotency key or error code (error codes: "
        "choose a campaign first)."
    )
    list_select_related = ["campaign"]
    raw_id_fields = ["campaign", "contact"]
    show_full_result_count = False
    paginator = CampaignCountPaginator
    inlines = [MessageAttemptInline]
    readonly_fields = [
        "campaign_link",
        "contact_link",
        "step",
        "phone",
        "phone_local_form",
        "template_data",
        "idempotency_key",
        "provider_message_id",
        "status",
        "error_class",
        "error_code",
        "explained_error",
        "error_message",
        "fee_vnd",
        "attempts",
        "next_attempt_at",
        "claimed_at",
        "sent_at",
        "delivered_at",
        "read_at",
        "failed_at",
        "created_at",
        "updated_at",
    ]
    fields = readonly_fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        # Messages are the record of what was sent (and paid for): never deleted by hand.
        return False

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        ids = idempotency_key_parse(term)
        if ids is not None:
            found = queryset.filter(campaign_id=ids[0], contact_id=ids[1], idempotency_key=term)
            return found, False
        # A local form (0971234567) may be Vietnamese or Cambodian: both are searched.
        phones = phone_candidates(term) if term else []
        if phones:
            # "Did this customer get our message?": the contact by its unique phone, then its
            # messages by the contact index (measured at 2M messages: 5.6 s scanning them, about 1 ms this way).
            contacts = Contact.objects.filter(phone__in=phones).values_list("pk", flat=True)
            found = queryset.filter(contact_id__in=list(contacts), phone__in=phones)
            return found, False
        return super().get_search_results(request, queryset, search_term)

    # Message.campaign and .contact have no verbose names (one needs a migration): their columns
    # and labels are named here, or the Vietnamese page shows "CAMPAIGN" and "Contact:".
    @admin.display(description=_("campaign"), ordering="campaign")
    def campaign_name(self, obj):
        return obj.campaign.name

    @admin.display(description=_("campaign"))
    def campaign_link(self, obj):
        url = reverse("admin:campaigns_campaign_change", args=[obj.campaign_id])
        return format_html('<a href="{}">{}</a>', url, obj.campaign.name)

    @admin.display(description=_("contact"))
    def contact_link(self, obj):
        url = reverse("admin:campaigns_contact_change", args=[obj.contact_id])
        return format_html('<a href="{}">{}</a>', url, obj.contact)

    @admin.display(description=_("phone"), ordering="phone")
    def local_phone(self, obj):
        """The local form (0912 345 678); the international one, as sent, is its title."""
        return phone_html(obj.phone)

    @admin.display(description=_("Local form"))
    def phone_local_form(self, obj):
        return format_local(obj.phone)

    @admin.display(description=_("fee"), ordering="fee")
    def fee_vnd(self, obj):
        return format_vnd(obj.fee) if obj.fee is not None else "-"

    @admin.display(description=_("Meaning"))
    def explained_error(self, obj):
        return explain(obj.error_code) if obj.error_code else ""

    @admin.display(description=_("Error"), ordering="error_code")
    def error(self, obj):
        if not obj.error_code:
            return ""
        meaning = explain(obj.error_code)
        if not meaning:
            return obj.error_code
        return format_html("<code>{}</code> {}", obj.error_code, meaning)

    def get_paginator(self, request, queryset, per_page, orphans=0, allow_empty_first_page=True):
        paginator = super().get_paginator(
            request, queryset, per_page, orphans, allow_empty_first_page
        )
        paginator.known_count = _known_message_count(request.GET)
        return paginator


# Parameters that do not change which rows a changelist shows.
_NEUTRAL_PARAMS = {"p", "o", "_changelist_filters"}


def _known_message_count(params) -> int | None:
    """The campaign's own counter when the list is exactly "messages of campaign X" or "failed
    messages of campaign X"; None (count for real, with a timeout) for anything else."""
    keys = set(params) - _NEUTRAL_PARAMS
    campaign = params.get("campaign__id__exact", "")
    if not campaign.isdigit() or params.get("q"):
        return None
    counters = (
        Campaign.objects.filter(pk=int(campaign)).values("total_count", "failed_count").first()
    )
    if counters is None:
        return 0
    if keys == {"campaign__id__exact"}:
        return counters["total_count"]
    if keys == {"campaign__id__exact", "status__exact"} and params.get("status__exact") == "failed":
        return counters["failed_count"]
    return None
