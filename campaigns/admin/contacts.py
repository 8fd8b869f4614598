"""Admin for contacts, lists, segments and opt-outs (the Contact staff's rooms). The contact
import and the opt-out file upload are imports.py's pages.

Built for a million contacts: no full COUNT(*) (EstimatedCountPaginator), no sorting on
unindexed columns, search through one indexed column (a trigram index on PostgreSQL), related
objects through raw-id or autocomplete widgets, never a <select> of every contact.
"""

from __future__ import annotations

import json
import unicodedata

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponseRedirect, StreamingHttpResponse
from django.urls import path, reverse
from django.utils.formats import date_format
from django.utils.functional import cached_property
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.text import capfirst
from django.utils.timezone import localtime
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from campaigns.admin.downloads import audit_on_done, csv_download
from campaigns.admin.imports import OptOutViews
from campaigns.admin.kv_rows import KeyValueRowsField
from campaigns.admin.paginators import EstimatedCountPaginator
from campaigns.attribute_types import DMY, converter, expected_text
from campaigns.contacts.export import contacts_export_csv
from campaigns.contacts.importing.mapping import slugify_header
from campaigns.contacts.optout import contacts_opt_out, phone_opt_out
from campaigns.contacts.search import contact_search, contact_search_text
from campaigns.contacts.tags import contacts_tag, tag_display
from campaigns.contacts.typed import declared_types
from campaigns.models import (
    Contact,
    ContactList,
    ContactListMembership,
    OptOut,
)
from campaigns.privacy.admin_erasure import contact_privacy_urls
from campaigns.privacy.models import AuditAction, ConsentRecord
from campaigns.privacy.selectors import contact_advertising_channels, contact_consent_history
from campaigns.privacy.services import audit_record, contact_advertising_consent_set
from campaigns.selectors.contact import contact_messages, contact_replies
from providers.admin_mmp import zalo_consent_channels, zalo_consent_links
from providers.shared.phone_display import phone_html, phone_international
from providers.shared.phones import (
    COUNTRY_CHOICES,
    DEFAULT_COUNTRY,
    format_local,
    normalize_phone,
    phone_candidates,
    phone_country,
)


def export_response(
    queryset: QuerySet, *, name: str, request: HttpRequest, what: str, target=None
) -> StreamingHttpResponse:
    """A streamed, injection-safe CSV of contacts (memory flat whatever the size), written to
    the audit trail with its row count when the stream ends. `what`: which export ("changelist",
    "selected", "lists", "segment"), kept in the event's detail."""
    on_done = audit_on_done(
        request,
        action=AuditAction.EXPORT_CONTACTS,
        target=target,
        target_label=str(name),
        detail={"export": what, "filters": request.GET.urlencode()[:500]},
    )
    return csv_download(
        contacts_export_csv(queryset=queryset, on_done=on_done),
        name=slugify_header(name) or "contacts",
    )


# ---- contacts ------------------------------------------------------------------------------------


class ContactPaginator(EstimatedCountPaginator):
    """A searched or filtered list counts its matches only up to CAP (+1, meaning "more"): a
    LIMITed count stops early, where counting every "nguyen" among a million contacts would
    not (the unfiltered count stays the planner's estimate)."""

    CAP = 10_000

    @cached_property
    def count(self) -> int:
        qs = self.object_list
        if not qs.query.where:
            return super().count
        return qs.order_by()[: self.CAP + 1].count()


class OptOutInline(admin.TabularInline):
    model = OptOut
    fields = ["channel_kind", "reason", "source", "created_at"]
    readonly_fields = ["created_at"]
    extra = 0


class MembershipForm(forms.ModelForm):
    class Meta:
        model = ContactListMembership
        fields = ["contact_list"]
        # The model's fields have no verbose names (a migration for a label): named here.
        labels = {"contact_list": gettext_lazy("contact list")}


class MembershipInline(admin.TabularInline):
    model = ContactListMembership
    form = MembershipForm
    fields = ["contact_list", "added"]
    readonly_fields = ["added"]
    autocomplete_fields = ["contact_list"]
    extra = 0

    def get_fields(self, request, obj=None):
        # Read-only (a marketer): Django would label the column with the model field's name.
        if not self.has_change_permission(request, obj):
            return ["list_name", "added"]
        return super().get_fields(request, obj)

    def get_readonly_fields(self, request, obj=None):
        if not self.has_change_permission(request, obj):
            return ["list_name", "added"]
        return super().get_readonly_fields(request, obj)

    @admin.display(description=gettext_lazy("contact list"))
    def list_name(self, obj):
        return obj.contact_list.name if obj and obj.contact_list_id else "-"

    def get_queryset(self, request):
        # Each row is titled with its list and contact (ContactListMembership.__str__).
        return super().get_queryset(request).select_related("contact_list", "contact")

    @admin.display(description=gettext_lazy("added on"))
    def added(self, obj):
        return obj.added_at if obj else None


class OptedOutFilter(admin.SimpleListFilter):
    title = gettext_lazy("opted out")
    parameter_name = "opted_out"

    def lookups(self, request, model_admin):
        return [("any", _("Any channel")), *OptOut.CHANNEL_CHOICES]

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        optouts = OptOut.objects.all()
        if value != "any":
            optouts = optouts.filter(channel_kind=value)
        return queryset.filter(pk__in=optouts.values("contact_id"))


class ListFilter(admin.SimpleListFilter):
    title = gettext_lazy("list")
    parameter_name = "list"

    def lookups(self, request, model_admin):
        return [(str(pk), name) for pk, name in ContactList.objects.values_list("pk", "name")[:200]]

    def queryset(self, request, queryset):
        if not (self.value() or "").isdigit():
            return queryset
        return queryset.filter(
            pk__in=ContactListMembership.objects.filter(contact_list_id=self.value()).values(
                "contact_id"
            )
        )


class ContactForm(forms.ModelForm):
    # Where a phone written without +84/+855 is read (0971234567 is valid in both countries).
    country = forms.ChoiceField(
        label=gettext_lazy("Read a local number as"),
        choices=COUNTRY_CHOICES,
        initial=DEFAULT_COUNTRY,
        required=False,
        help_text=gettext_lazy(
            "For a phone written without +84 or +855; one written with it is read as written."
        ),
    )
    # country is cleaned before phone, which is read in it
    field_order = ["country", "phone"]
    # Name/value rows, the JSON only behind "Advanced" (kv_rows.py)
    attributes = KeyValueRowsField(
        label=capfirst(Contact._meta.get_field("attributes").verbose_name),
        required=False,
        help_text=gettext_lazy(
            "One row per piece of information, like city = Hà Nội. Campaigns use the names in "
            "their parameters and segments. An empty row is ignored."
        ),
    )

    # Consent (campaigns.privacy): the channels this person agreed to receive advertising on.
    # Ticking or unticking one records a consent or a withdrawal (the history is kept).
    advertising_consent = forms.MultipleChoiceField(
        label=gettext_lazy("Advertising consent on"),
        choices=ConsentRecord.CHANNEL_CHOICES,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=gettext_lazy(
            "Tick only the channels this person agreed to receive advertising on. A change is "
            "recorded with your name and the time; the history is below."
        ),
    )
    consent_note = forms.CharField(
        label=gettext_lazy("How the consent was given"),
        required=False,
        max_length=500,
        help_text=gettext_lazy("For example: paper form at the Hà Nội store, 12/03."),
    )

    class Meta:
        model = Contact
        fields = ["phone", "name", "attributes"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.phone and phone_country(self.instance.phone) in dict(COUNTRY_CHOICES):
            self.initial.setdefault("country", phone_country(self.instance.phone))
        if self.instance.pk:
            self.initial.setdefault(
                "advertising_consent", contact_advertising_channels(contact_id=self.instance.pk)
            )

    def clean_phone(self):
        country = self.cleaned_data.get("country") or DEFAULT_COUNTRY
        result = normalize_phone(self.cleaned_data.get("phone"), mobile_only=False, country=country)
        if not result.ok:
            raise forms.ValidationError(result.error)
        return result.phone

    def clean_attributes(self):
        value = self.cleaned_data.get("attributes")
        if value in (None, ""):
            return {}
        if not isinstance(value, dict):
            raise forms.ValidationError(_('Attributes must be an object, like {"city": "Huế"}.'))
        # Declared types (Attribute types): stored in the type's form, as imports store them. A
        # person types dates dd/mm/yyyy (or yyyy-mm-dd) whatever format files use.
        errors = []
        for key, (kind, _fmt) in declared_types([str(k) for k in value]).items():
            cell = value.get(key)
            if cell in (None, "") or (
                isinstance(cell, int | float) and not isinstance(cell, bool) and kind == "number"
            ):
                continue  # a number row stays a JSON number
            out = converter(kind, DMY)(str(cell).strip())
            if out is None:
                errors.append(
                    _("“{key}” must be {expected}.").format(
                        key=key, expected=expected_text(kind, DMY)
                    )
                )
            else:
                value[key] = out
        if errors:
            raise forms.ValidationError(errors)
        return value


def _attribute_text(value) -> str:
    """An attribute's value as people read it: a list of words joined, other non-text as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value):
        return ", ".join(str(v) for v in value)
    return json.dumps(value, ensure_ascii=False)


def _when(value) -> str:
    return date_format(localtime(value), "SHORT_DATETIME_FORMAT") if value else "—"


def _table(headers, row_format: str, rows, *, table_id: str = ""):
    """A small read-only table on a contact's page (messages sent, replies)."""
    return format_html(
        '<table class="loa-replies"{}><thead><tr>{}</tr></thead><tbody>{}</tbody></table>',
        format_html(' id="{}"', table_id) if table_id else "",
        format_html_join("", "<th>{}</th>", ((h,) for h in headers)),
        format_html_join("", row_format, rows),
    )


class TagActionForm(ActionForm):
    tags = forms.CharField(
        label=gettext_lazy("Tags"),
        required=False,
        widget=forms.TextInput(attrs={"placeholder": gettext_lazy("VIP, Online"), "size": 16}),
    )


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    form = ContactForm
    change_form_template = "admin/campaigns/contact/change_form.html"  # its "Opt out" button
    change_list_template = "admin/campaigns/contact/change_list.html"
    # The phone as marketers write it (0912 345 678), and the stored international form beside it.
    list_display = ["local_phone", "international_phone", "name", "source", "created_at"]
    list_filter = [OptedOutFilter, ListFilter]
    # Only indexed orderings: sorting a million rows by name would scan them all.
    sortable_by = ["local_phone"]
    search_fields = ["search_text"]  # the box shows; get_search_results does the work
    search_help_text = gettext_lazy(
        "Search by name (accents optional: “nguyen” finds “Nguyễn”) or by phone (any format)."
    )
    readonly_fields = [
        "phone_local_form",
        "source",
        "source_import",
        "source_row",
        "created_at",
        "updated_at",
        "sent_messages",  # shown only to those who may view messages (get_fields)
        "replies",
        "zalo_consent",  # shown only to those who may use MMP Zalo channels (get_fields)
        "contact_tags",  # set by imports and the "Add tags" action (campaigns.contacts.tags)
        "attributes_table",  # in place of the attributes for those who may only view (get_fields)
        "consent_history",
    ]
    fields = [
        "phone",
        "country",
        "phone_local_form",
        "name",
        "attributes",
        "contact_tags",
        "source",
        "source_import",
        "source_row",
        "created_at",
        "updated_at",
        "replies",
        "advertising_consent",
        "consent_note",
        "consent_history",
    ]
    inlines = [OptOutInline, MembershipInline]
    paginator = ContactPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # a count per filter choice over a million rows
    list_per_page = 50
    list_select_related = []  # nothing related is shown: no join
    actions = ["opt_out_all", "export_selected", "add_tags", "remove_tags"]
    action_form = TagActionForm  # the action bar's "Tags" box, read by add_tags/remove_tags

    @admin.display(description=gettext_lazy("phone"), ordering="phone")
    def local_phone(self, obj):
        return phone_html(obj.phone)

    @admin.display(description=gettext_lazy("Local form"))
    def phone_local_form(self, obj):
        """Below the phone field, which keeps the stored international form: that is what
        providers are sent and what tells the country (the field reads any form on save)."""
        if obj is None or not obj.phone:
            return "—"
        country = dict(COUNTRY_CHOICES).get(phone_country(obj.phone), "")
        return format_html(
            '<strong id="contact-local-phone">{}</strong>{}',
            format_local(obj.phone),
            format_html(" · {}", country) if country else "",
        )

    @admin.display(description=gettext_lazy("International"))
    def international_phone(self, obj):
        return phone_international(obj.phone)

    def _shows_messages(self, request, obj) -> bool:
        # Contact staff manage contacts, not campaigns: the messages are for those who may see them.
        return obj is not None and request.user.has_perm("campaigns.view_message")

    def get_fields(self, request, obj=None):
        fields = list(self.fields)
        if obj is not None and not self.has_change_permission(request, obj):
            fields[fields.index("attributes")] = "attributes_table"
            # Those who may only view see the consents in the history, not as checkboxes.
            fields = [f for f in fields if f not in ("advertising_consent", "consent_note")]
        if obj is None:
            fields.remove("consent_history")
        if self._shows_messages(request, obj):
            fields.insert(fields.index("replies"), "sent_messages")
        if (
            obj is not None
            and request.user.has_perm("providers.change_channel")
            and zalo_consent_channels()
        ):
            fields.append("zalo_consent")
        return fields

    @admin.display(description=gettext_lazy("Attributes"))
    def attributes_table(self, obj):
        """The attributes as name/value rows for those who may only view the contact."""
        attributes = obj.attributes if isinstance(obj.attributes, dict) else {}
        if not attributes:
            return "—"
        return format_html(
            '<table class="loa-kv-rows" id="contact-attributes"><tbody>{}</tbody></table>',
            format_html_join(
                "",
                '<tr><th scope="row">{}</th><td>{}</td></tr>',
                ((k, _attribute_text(v)) for k, v in attributes.items()),
            ),
        )

    @admin.display(description=gettext_lazy("Tags"))
    def contact_tags(self, obj):
        names = tag_display(obj.tags) if obj is not None else []
        return ", ".join(names) if names else "—"

    @admin.display(description=gettext_lazy("Zalo consent"))
    def zalo_consent(self, obj):
        """Links to the consent page of each MMP Zalo channel, with this contact's phone."""
        return zalo_consent_links(obj.phone)

    @admin.display(description=gettext_lazy("Messages sent"))
    def sent_messages(self, obj):
        """The last messages Loa sent this contact: campaign, status, error, times."""
        rows = contact_messages(contact=obj)
        if not rows:
            return _("No message yet.")
        table = _table(
            [_("Campaign"), _("Status"), _("Error"), _("Sent"), _("Delivered"), _("Read")],
            '<tr><td><a href="{}">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>'
            "<td>{}</td></tr>",
            (
                (
                    reverse("admin:campaigns_message_change", args=[m.pk]),
                    m.campaign.name,
                    m.get_status_display(),
                    m.error_code or "",
                    _when(m.sent_at),
                    _when(m.delivered_at),
                    _when(m.read_at),
                )
                for m in rows
            ),
            table_id="contact-messages",
        )
        every = reverse("admin:campaigns_message_changelist") + "?" + urlencode({"q": obj.phone})
        return format_html('{}<p><a href="{}">{}</a></p>', table, every, _("All messages"))

    @admin.display(description=gettext_lazy("Replies"))
    def replies(self, obj):
        """What the contact wrote back (MMP conversation webhooks), newest first."""
        rows = contact_replies(contact=obj)
        if not rows:
            return _("No replies.")
        return _table(
            [_("Received"), _("Channel"), _("Text")],
            "<tr><td>{}</td><td>{}</td><td>{}{}</td></tr>",
            (
                (
                    _when(r.received_at),
                    r.channel or "—",
                    r.text,
                    format_html(" <strong>({})</strong>", _("opt-out")) if r.opted_out else "",
                )
                for r in rows
            ),
        )

    @admin.display(description=gettext_lazy("Consent history"))
    def consent_history(self, obj):
        """Every consent given or withdrawn, newest first (campaigns.privacy)."""
        rows = list(contact_consent_history(contact_id=obj.pk)[:50]) if obj else []
        if not rows:
            return _("No consent recorded.")
        return _table(
            [_("When"), _("Channel"), _("Purpose"), _("Consent"), _("Source"), _("By"), _("Note")],
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    _when(r.at),
                    r.get_channel_kind_display(),
                    r.get_purpose_display(),
                    _("granted") if r.granted else _("withdrawn"),
                    r.get_source_display() + (f" · {r.file_name}" if r.file_name else ""),
                    r.actor_label or "—",
                    r.note,
                )
                for r in rows
            ),
            table_id="contact-consents",
        )

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        if "advertising_consent" in form.changed_data:
            contact_advertising_consent_set(
                contact=form.instance,
                channels=form.cleaned_data["advertising_consent"],
                actor=request.user,
                note=form.cleaned_data.get("consent_note", ""),
            )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        response = super().change_view(request, object_id, form_url, extra_context)
        # Who looked at this person's data (the page shows phone, name, attributes, messages):
        # logged once the page was allowed and rendered, not for a refused or missing one.
        if request.method == "GET" and response.status_code == 200:
            contact = Contact.objects.filter(pk=object_id).only("pk", "phone", "name").first()
            if contact is not None:
                audit_record(action=AuditAction.CONTACT_VIEW, request=request, target=contact)
        return response

    def get_search_results(self, request, queryset, search_term):
        return contact_search(queryset=queryset, term=search_term), False

    def save_model(self, request, obj, form, change):
        obj.search_text = contact_search_text(obj.name)
        if not change:
            obj.source = obj.source or f"admin:{request.user.get_username()}"[:255]
        super().save_model(request, obj, form, change)

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("export/", wrap(self.export_view), name="campaigns_contact_export"),
            *contact_privacy_urls(self.admin_site),  # erase this person, export their data
            *super().get_urls(),
        ]

    def export_view(self, request):
        """Export what the changelist shows (its filters and search), streamed."""
        if not self.has_view_permission(request):
            return HttpResponseRedirect(reverse("admin:index"))
        changelist = self.get_changelist_instance(request)
        queryset = changelist.get_queryset(request)
        return export_response(queryset, name=_("contacts"), request=request, what="changelist")

    @admin.action(description=gettext_lazy("Opt out of all channels"), permissions=["change"])
    def opt_out_all(self, request, queryset):
        n = contacts_opt_out(
            contact_ids=queryset.values_list("pk", flat=True),
            channel_kind=OptOut.ALL,
            reason=_("Opted out in the admin by {user}").format(user=request.user.get_username()),
            source=OptOut.Source.ADMIN,
            actor=request.user,
        )
        self.message_user(request, _("{n} contacts opted out.").format(n=n), messages.SUCCESS)

    def _tag_action(self, request, queryset, *, remove: bool):
        text = request.POST.get("tags", "")
        if not text.strip():
            self.message_user(
                request,
                _("Type the tags in the “Tags” box next to the action, e.g. VIP, Online."),
                messages.WARNING,
            )
            return
        n = contacts_tag(queryset=queryset, text=text, remove=remove)
        done = _("Tags removed from {n} contacts.") if remove else _("Tags added to {n} contacts.")
        self.message_user(request, done.format(n=f"{n:,}"), messages.SUCCESS)

    @admin.action(description=gettext_lazy("Add tags"), permissions=["change"])
    def add_tags(self, request, queryset):
        self._tag_action(request, queryset, remove=False)

    @admin.action(description=gettext_lazy("Remove tags"), permissions=["change"])
    def remove_tags(self, request, queryset):
        self._tag_action(request, queryset, remove=True)

    @admin.action(description=gettext_lazy("Export selected contacts (CSV)"), permissions=["view"])
    def export_selected(self, request, queryset):
        return export_response(queryset, name=_("contacts"), request=request, what="selected")


# ---- lists -----------------------------------------------------------------------------------------


MAX_TAG = 50


class ContactListForm(forms.ModelForm):
    """Tags typed as people type them ("vip, Hà Nội"), kept as a JSON list."""

    tags = forms.CharField(
        label=gettext_lazy("Tags"),
        required=False,
        help_text=gettext_lazy("Separated by commas, for example: vip, Hà Nội, khách cũ."),
    )

    class Meta:
        model = ContactList
        fields = ["name", "description", "tags", "default_country"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        tags = self.instance.tags if isinstance(self.instance.tags, list) else []
        self.initial["tags"] = ", ".join(str(t) for t in tags)
        if "default_country" in self.fields:  # left out (a script, an old form): Vietnam
            self.fields["default_country"].required = False

    def clean_default_country(self) -> str:
        return self.cleaned_data.get("default_country") or DEFAULT_COUNTRY

    def clean_tags(self) -> list[str]:
        tags: list[str] = []
        for part in (self.cleaned_data.get("tags") or "").split(","):
            tag = unicodedata.normalize("NFC", " ".join(part.split()))
            if len(tag) > MAX_TAG:
                raise forms.ValidationError(
                    _("A tag is at most {n} characters: “{tag}”.").format(n=MAX_TAG, tag=tag)
                )
            if tag and tag.casefold() not in {t.casefold() for t in tags}:
                tags.append(tag)
        return tags


class TagFilter(admin.SimpleListFilter):
    title = gettext_lazy("tag")
    parameter_name = "tag"

    def lookups(self, request, model_admin):
        # Lists are few (hundreds, not millions): their tags are gathered here, on every
        # database (SQLite has no JSON containment lookup).
        tags = {
            str(t) for ts in ContactList.objects.values_list("tags", flat=True) for t in ts or []
        }
        return [(t, t) for t in sorted(tags, key=str.casefold)]

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        ids = [
            pk
            for pk, tags in queryset.values_list("pk", "tags")
            if isinstance(tags, list) and self.value() in tags
        ]
        return queryset.filter(pk__in=ids)


@admin.register(ContactList)
class ContactListAdmin(admin.ModelAdmin):
    form = ContactListForm
    list_display = ["name", "contact_count", "tag_list", "created_at", "links"]
    list_filter = [TagFilter]
    search_fields = ["name"]
    readonly_fields = ["contact_count", "created_at", "links"]
    fields = [
        "name",
        "description",
        "tags",
        "default_country",
        "contact_count",
        "created_at",
        "links",
    ]
    actions = ["export_lists"]

    @admin.display(description=gettext_lazy("Tags"))
    def tag_list(self, obj):
        return ", ".join(str(t) for t in obj.tags) if isinstance(obj.tags, list) else ""

    @admin.display(description=gettext_lazy("Contacts"))
    def links(self, obj):
        if not obj.pk:
            return "-"
        contacts = reverse("admin:campaigns_contact_changelist") + f"?list={obj.pk}"
        upload = reverse("admin:campaigns_contactimport_add") + f"?contact_list={obj.pk}"
        export = reverse("admin:campaigns_contact_export") + f"?list={obj.pk}"
        return format_html(
            '<a href="{}">{}</a> · <a href="{}">{}</a> · <a href="{}">{}</a>',
            contacts,
            _("View"),
            upload,
            _("Upload contacts"),
            export,
            _("Export (CSV)"),
        )

    @admin.action(description=gettext_lazy("Export the contacts of these lists (CSV)"))
    def export_lists(self, request, queryset):
        contacts = Contact.objects.filter(
            pk__in=ContactListMembership.objects.filter(contact_list__in=queryset).values(
                "contact_id"
            )
        )
        chosen = list(queryset)
        name = chosen[0].name if len(chosen) == 1 else _("lists")
        return export_response(
            contacts,
            name=name,
            request=request,
            what="lists",
            target=chosen[0] if len(chosen) == 1 else None,
        )


# ---- opt-outs ----------------------------------------------------------------------------------


class OptOutByPhoneForm(forms.ModelForm):
    """ "Add opt-out": the phone as people write it (0912 345 678, +84 912 345 678, 855...), read
    in the chosen country; the contact is found or created by the service (phone_opt_out)."""

    country = forms.ChoiceField(
        label=gettext_lazy("Read a local number as"),
        choices=COUNTRY_CHOICES,
        initial=DEFAULT_COUNTRY,
        required=False,
        help_text=gettext_lazy(
            "For a phone written without +84 or +855; one written with it is read as written."
        ),
    )
    phone = forms.CharField(
        label=gettext_lazy("Phone"),
        max_length=40,
        help_text=gettext_lazy(
            "In any format: 0912 345 678, +84 912 345 678, 84912345678. A phone that is not a "
            "contact yet is recorded too, so that a later import cannot make it reachable."
        ),
        widget=forms.TextInput(attrs={"autocomplete": "off", "inputmode": "tel"}),
    )
    field_order = ["country", "phone", "channel_kind", "reason"]  # country is read first

    class Meta:
        model = OptOut
        fields = ["channel_kind", "reason"]

    def clean_phone(self) -> str:
        country = self.cleaned_data.get("country") or DEFAULT_COUNTRY
        result = normalize_phone(self.cleaned_data.get("phone"), mobile_only=False, country=country)
        if not result.ok:
            raise forms.ValidationError(result.error)
        return result.phone


@admin.register(OptOut)
class OptOutAdmin(admin.ModelAdmin):
    change_list_template = "admin/campaigns/contact/optout_change_list.html"
    list_display = ["contact_phone", "channel_kind", "source", "reason", "created_at"]
    list_filter = ["channel_kind", "source"]
    list_select_related = ["contact"]
    search_fields = ["=contact__phone"]
    search_help_text = gettext_lazy("The full phone number, in any format.")
    readonly_fields = ["contact_phone", "source", "created_at"]
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.views = OptOutViews(self)

    @admin.display(description=gettext_lazy("contact"))
    def contact_phone(self, obj):
        contact = obj.contact
        return format_html("{} {}", phone_html(contact.phone), contact.name)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["country", "phone", "channel_kind", "reason"]
        return ["contact_phone", "channel_kind", "reason", "source", "created_at"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = OptOutByPhoneForm
        return super().get_form(request, obj, change=change, **kwargs)

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        # The phone was read by the form; the service finds or creates its contact and keeps
        # an earlier opt-out of the same channel as it was (its first reason is the evidence).
        saved, created = phone_opt_out(
            phone=form.cleaned_data["phone"],
            channel_kind=form.cleaned_data["channel_kind"],
            reason=form.cleaned_data["reason"]
            or _("Opted out in the admin by {user}").format(user=request.user.get_username()),
            source=OptOut.Source.ADMIN,
            actor=request.user,
        )
        obj.pk, obj.contact, obj.created_at = saved.pk, saved.contact, saved.created_at
        obj.reason, obj.source, obj._was_created = saved.reason, saved.source, created

    def save_related(self, request, form, formsets, change):
        if change:
            super().save_related(request, form, formsets, change)

    def response_add(self, request, obj, post_url_continue=None):
        """Back to the list, searched for that phone, with a sentence saying what happened."""
        phone = format_local(obj.contact.phone)
        text = (
            _("{phone} opted out of {channel}.")
            if getattr(obj, "_was_created", True)
            else _("{phone} had already opted out of {channel}.")
        ).format(phone=phone, channel=obj.get_channel_kind_display())
        self.message_user(request, text, messages.SUCCESS)
        if "_addanother" in request.POST:
            return HttpResponseRedirect(reverse("admin:campaigns_optout_add"))
        return HttpResponseRedirect(
            reverse("admin:campaigns_optout_changelist") + "?" + urlencode({"q": obj.contact.phone})
        )

    def get_search_results(self, request, queryset, search_term):
        if not search_term.strip():
            return queryset, False
        # A local form (0971234567) may be Vietnamese or Cambodian: both are searched.
        phones = phone_candidates(search_term) or [search_term.strip()]
        return queryset.filter(contact__phone__in=phones), False

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path(
                "upload/",
                wrap(self.views.upload_view),
                name="campaigns_optout_upload",
            ),
            path(
                "contact/<int:contact_id>/",
                wrap(self.views.contact_view),
                name="campaigns_optout_contact",
            ),
            *super().get_urls(),
        ]


# Segments: campaigns/admin/segments.py (the rule builder).
