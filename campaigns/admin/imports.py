"""Contact imports in the admin: ContactImportAdmin and its pages, upload -> preview and column
mapping -> progress -> result; and the opt-out file upload (a page of OptOutAdmin, contacts.py).
Thin: each calls one service of campaigns/contacts/ (importing/, optout). The pages are
registered by the ModelAdmins' get_urls, wrapped in admin_view."""

from __future__ import annotations

from functools import partial

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.http import FileResponse, Http404, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.decorators import method_decorator
from django.utils.html import format_html_join
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.csrf import csrf_exempt, csrf_protect

from campaigns.admin.paginators import EstimatedCountPaginator
from campaigns.contacts.importing.files import (
    DELIMITER_CHOICES,
    DELIMITER_LABELS,
    ENCODING_CHOICES,
    ENCODING_LABELS,
    ImportFileError,
)
from campaigns.contacts.importing.mapping import slugify_header, unique_key
from campaigns.contacts.importing.report import country_summary
from campaigns.contacts.importing.run import (
    contact_import_prepare,
    contact_import_preview,
    contact_import_retry,
    contact_import_set_mapping,
    contact_import_start,
)
from campaigns.contacts.optout import opt_out_file_process, phone_opt_out
from campaigns.models import AttributeDefinition, Contact, ContactImport, ContactList, OptOut
from campaigns.privacy.models import ConsentRecord
from providers.shared.phones import COUNTRY_CHOICES, DEFAULT_COUNTRY, format_local

IGNORE, PHONE, NAME, ATTRIBUTE = "ignore", "phone", "name", "attribute"


class UploadLimitHandler(FileUploadHandler):
    """Stops an upload at CONTACT_UPLOAD_MAX_BYTES: the rest of the body is read and dropped,
    never written to disk, and the page says why."""

    def __init__(self, request, limit: int):
        super().__init__(request)
        self.limit = limit
        self.exceeded = False

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        if content_length and content_length > self.limit + 64 * 1024:
            self.exceeded = True  # known from the header: stop at the first chunk

    def receive_data_chunk(self, raw_data, start):
        if self.exceeded or start + len(raw_data) > self.limit:
            self.exceeded = True
            raise StopUpload(connection_reset=False)
        return raw_data

    def file_complete(self, file_size):
        return None


class UploadForm(forms.Form):
    file = forms.FileField(
        label=gettext_lazy("File"),
        help_text=gettext_lazy(
            "CSV, TSV or Excel .xlsx, in any encoding (UTF-8, UTF-16 “Unicode Text”, "
            "Windows-1258). The first row may be a header."
        ),
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,.tsv,.txt,.xlsx"}),
    )
    contact_list = forms.ModelChoiceField(
        label=gettext_lazy("Add to the list"),
        queryset=ContactList.objects.order_by("name"),
        required=False,
    )
    new_list_name = forms.CharField(
        label=gettext_lazy("…or a new list named"), required=False, max_length=200
    )
    country = forms.ChoiceField(
        label=gettext_lazy("Read local numbers as"),
        choices=[("", gettext_lazy("The list's default")), *COUNTRY_CHOICES],
        required=False,
        help_text=gettext_lazy(
            "The country of phones written without +84/+855 (0971 234 567 is valid in both). "
            "Numbers written with +84, 0084, +855 or 00855 are read as written."
        ),
    )
    merge_policy = forms.ChoiceField(
        label=gettext_lazy("Contacts that already exist"),
        choices=ContactImport.MergePolicy.choices,
        initial=ContactImport.MergePolicy.FILL,
        help_text=gettext_lazy(
            "Keep: existing contacts are not changed (only added to the list). Overwrite: the "
            "file's non-empty cells replace their values. Fill blanks: only empty values are "
            "filled. Opt-outs are never cleared."
        ),
    )

    consent_channels = forms.MultipleChoiceField(
        label=gettext_lazy("These contacts consented to advertising on"),
        choices=ConsentRecord.CHANNEL_CHOICES,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=gettext_lazy(
            "Tick only if every person in the file agreed to receive advertising on these "
            "channels (Decree 91/2020): a consent is recorded for each, with this file as its "
            "source. Leave empty if not."
        ),
    )

    def clean(self):
        data = super().clean()
        if not data.get("contact_list") and not (data.get("new_list_name") or "").strip():
            raise forms.ValidationError(_("Choose a list or name a new one."))
        upload = data.get("file")
        if upload is not None and upload.size > settings.CONTACT_UPLOAD_MAX_BYTES:
            raise forms.ValidationError(
                _("The file is larger than the {mb} MB limit.").format(
                    mb=settings.CONTACT_UPLOAD_MAX_BYTES // (1024 * 1024)
                )
            )
        return data


class OptOutUploadForm(forms.Form):
    file = forms.FileField(
        label=gettext_lazy("File"),
        help_text=gettext_lazy("CSV, TSV or .xlsx with a phone column (“phone”, “SĐT”, …)."),
    )
    channel_kind = forms.ChoiceField(
        label=gettext_lazy("Opt out of"), choices=OptOut.CHANNEL_CHOICES, initial=OptOut.ALL
    )
    reason = forms.CharField(label=gettext_lazy("Reason"), max_length=300, required=False)
    country = forms.ChoiceField(
        label=gettext_lazy("Read local numbers as"),
        choices=COUNTRY_CHOICES,
        initial=DEFAULT_COUNTRY,
        required=False,
        help_text=gettext_lazy("Numbers written with +84 or +855 are read as written."),
    )


class OptOutContactForm(forms.Form):
    """The contact page's "Opt out": the contact is known, only the channel and the reason."""

    channel_kind = forms.ChoiceField(
        label=gettext_lazy("Opt out of"), choices=OptOut.CHANNEL_CHOICES, initial=OptOut.ALL
    )
    reason = forms.CharField(label=gettext_lazy("Reason"), max_length=300, required=False)


class ImportViews:
    """The extra pages of ContactImportAdmin."""

    def __init__(self, model_admin):
        self.model_admin = model_admin
        self.admin_site = model_admin.admin_site

    def _context(self, request, **extra):
        opts = ContactImport._meta
        return {
            **self.admin_site.each_context(request),
            "opts": opts,
            "app_label": opts.app_label,
            "has_view_permission": self.model_admin.has_view_permission(request),
            **extra,
        }

    def _require_add(self, request):
        if not self.model_admin.has_add_permission(request):
            raise PermissionDenied

    # ---- 1. upload ------------------------------------------------------------------------

    def upload_view(self, request, form_url="", extra_context=None):
        """Django has no upload size limit: this handler stops storing the body past ours.
        It must be installed before anything reads request.POST, CSRF checking included, so
        the admin page is csrf_exempt (ContactImportAdmin.add_view) and CSRF is checked here, after it."""
        limit = UploadLimitHandler(request, settings.CONTACT_UPLOAD_MAX_BYTES)
        request.upload_handlers.insert(0, limit)
        return csrf_protect(partial(self._upload, limit=limit))(request)

    def _upload(self, request, limit):
        self._require_add(request)
        # (reading request.FILES parses the body: only then does the handler know)
        if request.method == "POST" and (request.FILES is not None) and limit.exceeded:
            form = UploadForm(request.POST)
            form.is_valid()
            form.errors["file"] = form.error_class(
                [
                    _("The file is larger than the {mb} MB limit.").format(
                        mb=settings.CONTACT_UPLOAD_MAX_BYTES // (1024 * 1024)
                    )
                ]
            )
        elif request.method == "POST":
            form = UploadForm(request.POST, request.FILES)
            if form.is_valid():
                data = form.cleaned_data
                contact_list = data["contact_list"]
                if contact_list is None:
                    contact_list, _created = ContactList.objects.get_or_create(
                        name=data["new_list_name"].strip()
                    )
                upload = data["file"]
                try:
                    imp = contact_import_prepare(
                        file=upload,
                        filename=upload.name,
                        contact_list=contact_list,
                        merge_policy=data["merge_policy"],
                        user=request.user,
                        country=data["country"],
                        consent_channels=data["consent_channels"],
                    )
                except ImportFileError as exc:
                    form.add_error("file", str(exc))
                else:
                    return HttpResponseRedirect(
                        reverse("admin:campaigns_contactimport_map", args=[imp.pk])
                    )
        else:
            initial = {}
            if request.GET.get("contact_list", "").isdigit():
                initial["contact_list"] = request.GET["contact_list"]
                chosen = ContactList.objects.filter(pk=request.GET["contact_list"]).first()
                if chosen is not None:  # the select shows the list's own default
                    initial["country"] = chosen.default_country
            form = UploadForm(initial=initial)
        context = self._context(
            request,
            title=_("Upload contacts"),
            form=form,
            max_mb=settings.CONTACT_UPLOAD_MAX_BYTES // (1024 * 1024),
            max_rows=settings.CONTACT_UPLOAD_MAX_ROWS,
        )
        return TemplateResponse(request, "admin/campaigns/contactimport/upload.html", context)

    # ---- 2. preview and mapping -----------------------------------------------------------

    def map_view(self, request, pk):
        self._require_add(request)
        imp = get_object_or_404(ContactImport.objects.select_related("contact_list"), pk=pk)
        if request.method == "POST" and request.POST.get("retry"):
            contact_import_retry(import_id=imp.pk)
            return HttpResponseRedirect(request.path)
        if imp.status != ContactImport.Status.UPLOADED:
            return HttpResponseRedirect(
                reverse("admin:campaigns_contactimport_change", args=[imp.pk])
            )
        errors: list[str] = []
        if request.method == "POST" and request.POST.get("reread"):
            encoding = request.POST.get("encoding") or ""
            delimiter = request.POST.get("delimiter") or ""
            if encoding in ENCODING_CHOICES and (delimiter in DELIMITER_CHOICES):
                ContactImport.objects.filter(pk=imp.pk).update(
                    encoding=encoding, delimiter=delimiter, mapping={}
                )
                imp.refresh_from_db()
        try:
            preview = contact_import_preview(imp=imp)
        except ImportFileError as exc:
            messages.error(request, str(exc))
            # Back to the detected reading: a wrong manual choice must not lock the import.
            ContactImport.objects.filter(pk=imp.pk).update(encoding="", delimiter="", mapping={})
            return HttpResponseRedirect(request.path)
        if not imp.mapping:
            ContactImport.objects.filter(pk=imp.pk).update(mapping=preview.mapping)
            imp.mapping = preview.mapping
        ncols = len(preview.header)
        choices = self._choices(preview, ncols)
        if request.method == "POST" and not request.POST.get("reread"):
            mapping, errors = self._mapping_from_post(request.POST, preview, ncols)
            if not errors:
                try:
                    contact_import_set_mapping(imp=imp, mapping=mapping, ncols=ncols)
                except ImportFileError as exc:
                    errors = [str(exc)]
                else:
                    contact_import_start(import_id=imp.pk)
                    return HttpResponseRedirect(
                        reverse("admin:campaigns_contactimport_change", args=[imp.pk])
                    )
            choices = self._choices(preview, ncols, post=request.POST)
        context = self._context(
            request,
            title=_("Check the columns"),
            original=imp,
            preview=preview,
            columns=choices,
            errors=errors,
            encodings=[(e, ENCODING_LABELS[e]) for e in ENCODING_CHOICES],
            delimiters=[(d, DELIMITER_LABELS[d]) for d in DELIMITER_CHOICES],
            has_header=preview.mapping.get("has_header", True),
            typed=self._typed_columns(choices),
        )
        return TemplateResponse(request, "admin/campaigns/contactimport/map.html", context)

    @staticmethod
    def _typed_columns(columns) -> list:
        """The declared attribute types the file's attribute keys match (issue 20): said on the
        mapping page before the import converts them."""
        declared = {
            d.key: d
            for d in AttributeDefinition.objects.exclude(type=AttributeDefinition.Type.TEXT)
        }
        keys = [c["key"] for c in columns if c.get("role") == "attribute"]
        return [declared[k] for k in dict.fromkeys(keys) if k in declared]

    @staticmethod
    def _choices(preview, ncols, post=None):
        mapping = preview.mapping
        attrs = {int(k): v for k, v in (mapping.get("attributes") or {}).items()}
        columns = []
        for i in range(ncols):
            if post is not None:
                role = post.get(f"map_{i}", IGNORE)
                key = post.get(f"key_{i}", "")
            else:
                role = (
                    PHONE
                    if mapping.get("phone") == i
                    else NAME
                    if mapping.get("name") == i
                    else ATTRIBUTE
                    if i in attrs
                    else IGNORE
                )
                key = attrs.get(i) or slugify_header(preview.header[i]) or f"column_{i + 1}"
            columns.append(
                {
                    "index": i,
                    "title": preview.header[i],
                    "role": role,
                    "key": key,
                    "samples": [r[i] if i < len(r) else "" for r in preview.rows[:3]],
                }
            )
        return columns

    @staticmethod
    def _mapping_from_post(post, preview, ncols) -> tuple[dict, list[str]]:
        errors = []
        phone = name = None
        attributes: dict[str, str] = {}
        used: set[str] = set()
        for i in range(ncols):
            role = post.get(f"map_{i}", IGNORE)
            if role == PHONE:
                if phone is not None:
                    errors.append(_("Choose only one phone column."))
                phone = i
            elif role == NAME:
                if name is not None:
                    errors.append(_("Choose only one name column."))
                name = i
            elif role == ATTRIBUTE:
                key = slugify_header(post.get(f"key_{i}", "")) or (
                    slugify_header(preview.header[i]) or f"column_{i + 1}"
                )
                attributes[str(i)] = unique_key(key, used)
        if phone is None:
            errors.append(_("Choose the column that holds the phone numbers."))
        mapping = {
            "has_header": post.get("has_header") == "1",
            "phone": phone,
            "name": name,
            "attributes": attributes,
        }
        return mapping, sorted(set(errors))

    # ---- 3. progress and result -----------------------------------------------------------

    def progress_view(self, request, pk):
        if not self.model_admin.has_view_permission(request):
            raise PermissionDenied
        imp = get_object_or_404(ContactImport, pk=pk)
        return JsonResponse(import_progress(imp))

    def errors_view(self, request, pk):
        """The error report, through the admin (it holds personal data: never a public URL)."""
        if not self.model_admin.has_view_permission(request):
            raise PermissionDenied
        imp = get_object_or_404(ContactImport, pk=pk)
        if not imp.error_report:
            raise Http404
        name = f"{slugify_header(imp.original_name) or 'import'}-errors.csv"
        return FileResponse(
            imp.error_report.open("rb"),
            as_attachment=True,
            filename=name,
            content_type="text/csv; charset=utf-8",
        )


def import_progress(imp: ContactImport) -> dict:
    finished = imp.status in (ContactImport.Status.COMPLETED, ContactImport.Status.FAILED)
    return {
        "status": imp.status,
        "status_label": str(imp.get_status_display()),
        "phase": imp.phase,
        "phase_label": {
            "reading": _("Reading the file"),
            "saving": _("Saving the contacts"),
        }.get(imp.phase, ""),
        "percent": imp.progress_percent if not finished else 100,
        "processed": imp.processed_rows,
        "total": imp.total_rows,
        "imported": imp.imported_count,
        "updated": imp.updated_count,
        "duplicate": imp.duplicate_count,
        "invalid": imp.invalid_count,
        # Which rows were read in which country ("1,200 Vietnamese numbers, 30 Cambodian ...")
        "countries": country_summary(imp.country_counts),
        "finished": finished,
    }


class OptOutViews:
    """The "Upload opt-out file" page of OptOutAdmin, and the "Opt out" page a contact's page
    links to."""

    def __init__(self, model_admin):
        self.model_admin = model_admin
        self.admin_site = model_admin.admin_site

    def contact_view(self, request, contact_id):
        """Opt one contact out (a confirmation page, as Django's delete is: a form cannot sit
        inside the contact's own form). Whoever may add opt-outs may, even on a contact they
        may only view: a refusal only ever stops messages."""
        if not self.model_admin.has_add_permission(request):
            raise PermissionDenied
        contact = get_object_or_404(Contact, pk=contact_id)
        contact_url = reverse("admin:campaigns_contact_change", args=[contact.pk])
        if request.method == "POST":
            form = OptOutContactForm(request.POST)
            if form.is_valid():
                channel_kind = form.cleaned_data["channel_kind"]
                opt_out, created = phone_opt_out(
                    phone=contact.phone,
                    channel_kind=channel_kind,
                    reason=form.cleaned_data["reason"]
                    or _("Opted out in the admin by {user}").format(
                        user=request.user.get_username()
                    ),
                    source=OptOut.Source.ADMIN,
                    actor=request.user,
                )
                text = (
                    _("{phone} opted out of {channel}.")
                    if created
                    else _("{phone} had already opted out of {channel}.")
                ).format(
                    phone=format_local(contact.phone), channel=opt_out.get_channel_kind_display()
                )
                messages.success(request, text)
                return HttpResponseRedirect(contact_url)
        else:
            form = OptOutContactForm()
        opts = OptOut._meta
        context = {
            **self.admin_site.each_context(request),
            "opts": opts,
            "app_label": opts.app_label,
            "title": _("Opt out {phone}").format(phone=format_local(contact.phone)),
            "form": form,
            "contact": contact,
            "contact_url": contact_url,
            "current": list(contact.opt_outs.order_by("created_at")),
            "has_view_permission": True,
        }
        return TemplateResponse(request, "admin/campaigns/contact/optout_contact.html", context)

    def upload_view(self, request):
        if not self.model_admin.has_add_permission(request):
            raise PermissionDenied
        result = None
        if request.method == "POST":
            form = OptOutUploadForm(request.POST, request.FILES)
            if form.is_valid():
                upload = form.cleaned_data["file"]
                try:
                    result = opt_out_file_process(
                        file=upload,
                        channel_kind=form.cleaned_data["channel_kind"],
                        reason=form.cleaned_data["reason"]
                        or _("Opt-out file {name}").format(name=upload.name),
                        country=form.cleaned_data["country"] or DEFAULT_COUNTRY,
                        actor=request.user,
                    )
                except ImportFileError as exc:
                    form.add_error("file", str(exc))
        else:
            form = OptOutUploadForm()
        opts = OptOut._meta
        context = {
            **self.admin_site.each_context(request),
            "opts": opts,
            "app_label": opts.app_label,
            "title": _("Upload an opt-out file"),
            "form": form,
            "result": result,
            "has_view_permission": True,
        }
        return TemplateResponse(request, "admin/campaigns/contact/optout_upload.html", context)


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
        "country",
        "consent_channels_label",
        "encoding_label",
        "delimiter_label",
        "mapping_label",
        "created_by",
        "created_at",
        "started_at",
        "finished_at",
    ]
    fields = readonly_fields

    # Contact staff may not open user accounts: "uploaded by" is then text, not a link to a 403.
    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if not request.user.has_perm("auth.view_user"):
            fields = ["created_by_text" if f == "created_by" else f for f in fields]
        return fields

    def get_fields(self, request, obj=None):
        return self.get_readonly_fields(request, obj)

    @admin.display(description=ContactImport._meta.get_field("consent_channels").verbose_name)
    def consent_channels_label(self, obj):
        labels = dict(ConsentRecord.CHANNEL_CHOICES)
        return ", ".join(str(labels.get(k, k)) for k in obj.consent_channels or []) or "—"

    @admin.display(description=ContactImport._meta.get_field("created_by").verbose_name)
    def created_by_text(self, obj):
        return str(obj.created_by) if obj and obj.created_by_id else "-"

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
        self.views = ImportViews(self)

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
            extra["progress"] = import_progress(obj)
            extra["import"] = obj
        return super().change_view(request, object_id, form_url, extra)
