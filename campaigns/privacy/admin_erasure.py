"""The admin's erasure pages (thin: each calls one service).

- the contact page's "Erase this person" (a confirmation page saying what is erased and what
  cannot be) and "Export this person's data" (XLSX or JSON): views the contact admin routes to
  (campaigns/admin/contacts.py, get_urls) — they live here, with the services they call;
- "Bulk erases" (ErasureJob): upload a file of phones, read what will happen, confirm, follow the
  progress, read the report.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from campaigns.models import Contact, Message
from campaigns.privacy.bulk_erase import contact_erase, erasure_job_prepare, erasure_job_start
from campaigns.privacy.erasure import is_erased_value
from campaigns.privacy.models import ErasureJob
from campaigns.privacy.subject import FORMATS, subject_export
from providers.shared.errors import Refused
from providers.shared.phones import format_local

ERASE_PERM = "privacy.erase_person"
EXPORT_PERM = "privacy.export_person"


def contact_erase_view(request, contact_id: int, *, admin_site):
    """GET: what erasing this contact does and cannot do; POST: erase, back to the contact."""
    if not request.user.has_perm(ERASE_PERM):
        raise PermissionDenied
    contact = get_object_or_404(Contact, pk=contact_id)
    contact_url = reverse("admin:campaigns_contact_change", args=[contact.pk])
    if is_erased_value(contact.phone):
        messages.info(request, _("This contact was already erased."))
        return HttpResponseRedirect(contact_url)
    if request.method == "POST":
        try:
            result = contact_erase(contact=contact, actor=request.user, request=request)
        except Refused as exc:
            messages.error(request, str(exc))
        else:
            messages.success(
                request,
                _(
                    "The person was erased: {messages} messages rewritten, the number is refused "
                    "by later imports."
                ).format(messages=result.messages),
            )
        return HttpResponseRedirect(contact_url)
    opts = Contact._meta
    context = {
        **admin_site.each_context(request),
        "opts": opts,
        "app_label": opts.app_label,
        "title": _("Erase {phone}").format(phone=format_local(contact.phone)),
        "contact": contact,
        "contact_url": contact_url,
        "message_count": Message.objects.filter(contact=contact).count(),
        "has_view_permission": True,
    }
    return TemplateResponse(request, "admin/privacy/contact_erase.html", context)


def contact_subject_export_view(request, contact_id: int, *, admin_site):
    """The person's data as one file (?format=xlsx|json), recorded in the audit trail."""
    if not request.user.has_perm(EXPORT_PERM):
        raise PermissionDenied
    contact = get_object_or_404(Contact, pk=contact_id)
    fmt = request.GET.get("format", "xlsx")
    if fmt not in FORMATS or is_erased_value(contact.phone):
        messages.error(
            request,
            _("Choose XLSX or JSON.")
            if fmt not in FORMATS
            else _("This contact was erased: Loa holds no data about the person any more."),
        )
        return HttpResponseRedirect(reverse("admin:campaigns_contact_change", args=[contact.pk]))
    result = subject_export(phone=contact.phone, fmt=fmt, actor=request.user, request=request)
    response = HttpResponse(result.content, content_type=result.content_type)
    response["Content-Disposition"] = f'attachment; filename="{result.filename}"'
    return response


def contact_privacy_urls(admin_site) -> list:
    """The contact admin's extra routes (campaigns/admin/contacts.py adds them to get_urls)."""

    def wrap(view):
        return admin_site.admin_view(lambda request, pk: view(request, pk, admin_site=admin_site))

    return [
        path(
            "<int:pk>/erase/",
            wrap(contact_erase_view),
            name="campaigns_contact_erase",
        ),
        path(
            "<int:pk>/subject-export/",
            wrap(contact_subject_export_view),
            name="campaigns_contact_subject_export",
        ),
    ]


# ---- bulk erase ---------------------------------------------------------------------------------


class ErasureUploadForm(forms.Form):
    file = forms.FileField(
        label=gettext_lazy("File of phone numbers"),
        help_text=gettext_lazy(
            "CSV or Excel (.xlsx): one phone number a row, in any column and any format "
            "(0912 345 678, +84912345678). The file itself is not kept."
        ),
    )


@admin.register(ErasureJob)
class ErasureJobAdmin(admin.ModelAdmin):
    list_display = [
        "original_name",
        "status",
        "found_count",
        "absent_count",
        "erased_count",
        "created_by",
        "created_at",
    ]
    list_filter = ["status"]
    readonly_fields = [
        "original_name",
        "status",
        "rows",
        "invalid_rows",
        "found_count",
        "absent_count",
        "erased_count",
        "report_lines",
        "error_message",
        "created_by",
        "created_at",
        "started_at",
        "finished_at",
    ]
    fields = readonly_fields
    change_form_template = "admin/privacy/erasurejob/change_form.html"

    def has_module_permission(self, request):
        return request.user.has_perm(ERASE_PERM)

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm(ERASE_PERM)

    def has_add_permission(self, request):
        return request.user.has_perm(ERASE_PERM)

    def has_change_permission(self, request, obj=None):
        return False  # a job is read, started or left; never edited

    def has_delete_permission(self, request, obj=None):
        return False  # the record that an erase was asked for stays (it holds no phone)

    @admin.display(description=gettext_lazy("report"))
    def report_lines(self, obj):
        return "\n".join(obj.report or [])

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("<int:pk>/start/", wrap(self.start_view), name="privacy_erasurejob_start"),
            *super().get_urls(),
        ]

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = ErasureUploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                job = erasure_job_prepare(
                    content=upload.read(), filename=upload.name, actor=request.user
                )
            except Refused as exc:
                form.add_error("file", str(exc))
            else:
                return HttpResponseRedirect(
                    reverse("admin:privacy_erasurejob_change", args=[job.pk])
                )
        opts = ErasureJob._meta
        context = {
            **self.admin_site.each_context(request),
            "opts": opts,
            "app_label": opts.app_label,
            "title": _("Bulk erase by file"),
            "form": form,
            "has_view_permission": True,
        }
        return TemplateResponse(request, "admin/privacy/erasurejob/upload.html", context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        job = self.get_object(request, object_id)
        extra = {
            **(extra_context or {}),
            "job": job,
            "can_start": bool(job and job.status == ErasureJob.Status.PENDING),
            "refresh": bool(
                job and job.status in (ErasureJob.Status.QUEUED, ErasureJob.Status.RUNNING)
            ),
        }
        return super().change_view(request, object_id, form_url, extra)

    def start_view(self, request, pk: int):
        if not self.has_add_permission(request) or request.method != "POST":
            raise PermissionDenied
        job = get_object_or_404(ErasureJob, pk=pk)
        if erasure_job_start(job_id=job.pk, actor=request.user, request=request):
            messages.success(request, _("The erase started; this page shows its progress."))
        else:
            messages.warning(request, _("This erase was already started."))
        return HttpResponseRedirect(reverse("admin:privacy_erasurejob_change", args=[pk]))
