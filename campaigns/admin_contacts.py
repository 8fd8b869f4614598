"""Admin for contacts, lists, imports, segments and opt-outs (the Contact staff's rooms).

Built for a million contacts: no full COUNT(*) (EstimatedCountPaginator), no sorting on
unindexed columns, search through one indexed column (a trigram index on PostgreSQL), related
objects through raw-id or autocomplete widgets, never a <select> of every contact.
"""

import unicodedata

from django import forms
from django.contrib import admin, messages
from django.db.models import Q
from django.http import HttpResponseRedirect
from django.urls import path, reverse
from django.utils.decorators import method_decorator
from django.utils.formats import date_format
from django.utils.functional import cached_property
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.timezone import localtime
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.csrf import csrf_exempt

from campaigns import import_views, selectors
from campaigns.contacts.importing.files import DELIMITER_LABELS, ENCODING_LABELS
from campaigns.contacts.optout import contacts_opt_out
from campaigns.contacts.search import contact_search_text
from campaigns.contacts.segments import segment_count, segment_queryset
from campaigns.models import (
    Contact,
    ContactImport,
    ContactList,
    ContactListMembership,
    OptOut,
    Segment,
)
from campaigns.paginator import EstimatedCountPaginator
from providers.shared.phones import normalize_phone
from providers.shared.text import fold

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


class MembershipInline(admin.TabularInline):
    model = ContactListMembership
    fields = ["contact_list", "added_at"]
    readonly_fields = ["added_at"]
    autocomplete_fields = ["contact_list"]
    extra = 0


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
    class Meta:
        model = Contact
        fields = ["phone", "name", "attributes"]

    def clean_phone(self):
        result = normalize_phone(self.cleaned_data.get("phone"), mobile_only=False)
        if not result.ok:
            raise forms.ValidationError(result.error)
        return result.phone

    def clean_attributes(self):
        value = self.cleaned_data.get("attributes")
        if value in (None, ""):
            return {}
        if not isinstance(value, dict):
            raise forms.ValidationError(_('Attributes must be an object, like {"city": "Huế"}.'))
        return value


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


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    form = ContactForm
    change_list_template = "admin/campaigns/contact/change_list.html"
    list_display = ["phone", "name", "source", "created_at"]
    list_filter = [OptedOutFilter, ListFilter]
    # Only indexed orderings: sorting a million rows by name would scan them all.
    sortable_by = ["phone"]
    search_fields = ["search_text"]  # the box shows; get_search_results does the work
    search_help_text = gettext_lazy(
        "Search by name (accents optional: “nguyen” finds “Nguyễn”) or by phone (any format)."
    )
    readonly_fields = [
        "source",
        "source_import",
        "source_row",
        "created_at",
        "updated_at",
        "sent_messages",  # shown only to those who may view messages (get_fields)
        "replies",
    ]
    fields = [
        "phone",
        "name",
        "attributes",
        "source",
        "source_import",
        "source_row",
        "created_at",
        "updated_at",
        "replies",
    ]
    inlines = [OptOutInline, MembershipInline]
    paginator = ContactPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # a count per filter choice over a million rows
    list_per_page = 50
    list_select_related = []  # nothing related is shown: no join
    actions = ["opt_out_all", "export_selected"]

    def _shows_messages(self, request, obj) -> bool:
        # Contact staff manage contacts, not campaigns: the messages are for those who may see them.
        return obj is not None and request.user.has_perm("campaigns.view_message")

    def get_fields(self, request, obj=None):
        fields = list(self.fields)
        if self._shows_messages(request, obj):
            fields.insert(fields.index("replies"), "sent_messages")
        return fields

    @admin.display(description=gettext_lazy("Messages sent"))
    def sent_messages(self, obj):
        """The last messages Loa sent this contact: campaign, status, error, times."""
        rows = selectors.contact_messages(contact=obj)
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
        rows = selectors.contact_replies(contact=obj)
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

    def get_search_results(self, request, queryset, search_term):
        return contact_search(queryset, search_term), False

    def save_model(self, request, obj, form, change):
        obj.search_text = contact_search_text(obj.name)
        if not change:
            obj.source = obj.source or f"admin:{request.user.get_username()}"[:255]
        super().save_model(request, obj, form, change)

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("export/", wrap(self.export_view), name="campaigns_contact_export"),
            *super().get_urls(),
        ]

    def export_view(self, request):
        """Export what the changelist shows (its filters and search), streamed."""
        if not self.has_view_permission(request):
            return HttpResponseRedirect(reverse("admin:index"))
        changelist = self.get_changelist_instance(request)
        queryset = changelist.get_queryset(request)
        return import_views.export_response(queryset, name=_("contacts"))

    @admin.action(description=gettext_lazy("Opt out of all channels"), permissions=["change"])
    def opt_out_all(self, request, queryset):
        n = contacts_opt_out(
            contact_ids=queryset.values_list("pk", flat=True),
            channel_kind=OptOut.ALL,
            reason=_("Opted out in the admin by {user}").format(user=request.user.get_username()),
            source=OptOut.Source.ADMIN,
        )
        self.message_user(request, _("{n} contacts opted out.").format(n=n), messages.SUCCESS)

    @admin.action(description=gettext_lazy("Export selected contacts (CSV)"), permissions=["view"])
    def export_selected(self, request, queryset):
        return import_views.export_response(queryset, name=_("contacts"))


def contact_search(queryset, term: str):
    """Phones by their normalized prefix (an index range), names through the folded text."""
    term = (term or "").strip()
    if not term:
        return queryset
    compact = term.replace(" ", "").replace(".", "").replace("-", "")
    digits = compact.lstrip("+")
    if digits.isdigit():
        if len(digits) >= 9:
            phone = normalize_phone(term, mobile_only=False).phone
            if phone:
                return queryset.filter(phone=phone)
        # A prefix typed as the user knows it: 0987…, 84987…, +84 987…
        if digits.startswith("84"):
            prefix = digits
        elif digits.startswith("0"):
            prefix = "84" + digits[1:]
        else:
            # Digits from the middle or the end of a number: no index can help, but the
            # paginator stops at the first page of matches.
            return queryset.filter(phone__contains=digits)
        # A range on the unique index: works under any collation, unlike LIKE 'x%'.
        upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        return queryset.filter(phone__gte=prefix, phone__lt=upper)
    folded = fold(term).lower()
    q = Q()
    for word in folded.split():
        q &= Q(search_text__contains=word)
    return queryset.filter(q)


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
        fields = ["name", "description", "tags"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        tags = self.instance.tags if isinstance(self.instance.tags, list) else []
        self.initial["tags"] = ", ".join(str(t) for t in tags)

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
    fields = ["name", "description", "tags", "contact_count", "created_at", "links"]
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
        name = queryset.first().name if queryset.count() == 1 else _("lists")
        return import_views.export_response(contacts, name=name)


# ---- imports ---------------------------------------------------------------------------------------


@admin.register(ContactImport)
class ContactImportAdmin(admin.ModelAdmin):
    change_form_template = "admin/campaigns/contactimport/change_form.html"
    list_display = [
        "original_name",
        "contact_list",
        "status",
        "total_rows",
        "imported_count",
        "updated_count",
        "duplicate_count",
        "invalid_count",
        "created_by",
        "created_at",
    ]
    list_filter = ["status"]
    list_select_related = ["contact_list", "created_by"]
    search_fields = ["original_name", "contact_list__name"]
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    # The counts, warnings and error are in the panel above the fields (change_form.html).
    readonly_fields = [
        "original_name",
        "contact_list",
        "status",
        "merge_policy",
        "encoding_label",
        "delimiter_label",
        "mapping_label",
        "created_by",
        "created_at",
        "started_at",
        "finished_at",
    ]
    fields = readonly_fields

    @admin.display(description=gettext_lazy("Encoding"))
    def encoding_label(self, obj):
        return ENCODING_LABELS.get(obj.encoding, obj.encoding) or "XLSX"

    @admin.display(description=gettext_lazy("Delimiter"))
    def delimiter_label(self, obj):
        return DELIMITER_LABELS.get(obj.delimiter, obj.delimiter) or "-"

    @admin.display(description=gettext_lazy("Columns"))
    def mapping_label(self, obj):
        """The mapping as people read it: "column 1 → phone", not the stored JSON."""
        m = obj.mapping or {}
        if m.get("phone") is None:
            return "-"
        parts = [(m["phone"], gettext_lazy("phone"))]
        if m.get("name") is not None:
            parts.append((m["name"], gettext_lazy("name")))
        parts += [(int(i), f"“{key}”") for i, key in (m.get("attributes") or {}).items()]
        return format_html_join(
            " · ",
            "{} {} → {}",
            (
                (gettext_lazy("column"), int(i) + 1, role)
                for i, role in sorted(parts, key=lambda p: p[0])
            ),
        )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.views = import_views.ImportViews(self)

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("<int:pk>/map/", wrap(self.views.map_view), name="campaigns_contactimport_map"),
            path(
                "<int:pk>/progress/",
                wrap(self.views.progress_view),
                name="campaigns_contactimport_progress",
            ),
            path(
                "<int:pk>/errors.csv",
                wrap(self.views.errors_view),
                name="campaigns_contactimport_errors",
            ),
            *super().get_urls(),
        ]

    @method_decorator(csrf_exempt)  # checked inside, once the size limit is in place
    def add_view(self, request, form_url="", extra_context=None):
        return self.views.upload_view(request, form_url, extra_context)

    def has_change_permission(self, request, obj=None):
        return False  # an import is a record; its pages are the upload, mapping and result

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, object_id)
        extra = dict(extra_context or {})
        if obj is not None:
            if obj.status == ContactImport.Status.UPLOADED and self.has_add_permission(request):
                return HttpResponseRedirect(
                    reverse("admin:campaigns_contactimport_map", args=[obj.pk])
                )
            extra["progress"] = import_views.import_progress(obj)
            extra["import"] = obj
        return super().change_view(request, object_id, form_url, extra)


# ---- opt-outs ----------------------------------------------------------------------------------


@admin.register(OptOut)
class OptOutAdmin(admin.ModelAdmin):
    change_list_template = "admin/campaigns/contact/optout_change_list.html"
    list_display = ["contact", "channel_kind", "source", "reason", "created_at"]
    list_filter = ["channel_kind", "source"]
    list_select_related = ["contact"]
    raw_id_fields = ["contact"]
    search_fields = ["=contact__phone"]
    search_help_text = gettext_lazy("The full phone number, in any format.")
    readonly_fields = ["created_at"]
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.views = import_views.OptOutViews(self)

    def get_search_results(self, request, queryset, search_term):
        if not search_term.strip():
            return queryset, False
        phone = normalize_phone(search_term, mobile_only=False).phone
        return queryset.filter(contact__phone=phone or search_term.strip()), False

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path(
                "upload/",
                wrap(self.views.upload_view),
                name="campaigns_optout_upload",
            ),
            *super().get_urls(),
        ]


# ---- segments ----------------------------------------------------------------------------------


class SegmentForm(forms.ModelForm):
    class Meta:
        model = Segment
        fields = ["name", "description", "contact_lists", "match", "rules"]
        widgets = {"rules": forms.Textarea(attrs={"rows": 6, "cols": 80})}


@admin.register(Segment)
class SegmentAdmin(admin.ModelAdmin):
    form = SegmentForm
    list_display = ["name", "match", "rule_summary", "updated_at"]
    search_fields = ["name"]
    filter_horizontal = ["contact_lists"]
    readonly_fields = ["live_count", "sample"]

    def get_fields(self, request, obj=None):
        fields = ["name", "description", "contact_lists", "match", "rules"]
        return [*fields, "live_count", "sample"] if obj is not None else fields

    @admin.display(description=gettext_lazy("Rules"))
    def rule_summary(self, obj):
        rules = obj.rules if isinstance(obj.rules, list) else []
        joiner = f" {_('and') if obj.match == Segment.Match.ALL else _('or')} "
        return joiner.join(
            f"{r.get('attribute')} {r.get('op')} {r.get('value', '')}".strip()
            for r in rules
            if isinstance(r, dict)
        )

    @admin.display(description=gettext_lazy("Contacts now"))
    def live_count(self, obj):
        n = segment_count(obj)
        if n is None:
            return _("More than can be counted quickly (the count timed out).")
        url = reverse("admin:campaigns_segment_export", args=[obj.pk])
        return format_html(
            '<strong id="segment-count">{}</strong> · <a href="{}">{}</a>',
            f"{n:,}",
            url,
            _("Export (CSV)"),
        )

    @admin.display(description=gettext_lazy("First contacts"))
    def sample(self, obj):
        rows = list(segment_queryset(obj).order_by("-pk").values_list("phone", "name")[:10])
        if not rows:
            return "-"
        return format_html("<ul>{}</ul>", format_html_join("", "<li>{} {}</li>", rows))

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("<int:pk>/export/", wrap(self.export_view), name="campaigns_segment_export"),
            *super().get_urls(),
        ]

    def export_view(self, request, pk):
        segment = self.get_object(request, str(pk))
        if segment is None or not self.has_view_permission(request, segment):
            return HttpResponseRedirect(reverse("admin:index"))
        return import_views.export_response(segment_queryset(segment), name=segment.name)
