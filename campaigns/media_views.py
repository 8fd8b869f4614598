"""Uploaded contact files and import error reports, served only to who may see them.

They hold phone numbers and names, so they are never a public URL (/media/ is not routed, in any
mode): a logged-in staff user with the view permission on contact imports downloads them here,
as an attachment the browser will neither sniff nor cache. Anonymous visitors get the admin's
login page, others a 403. Routed by campaigns/media_urls.py under /files/ (config/urls.py)."""

from __future__ import annotations

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.db.models.fields.files import FieldFile
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.views.decorators.http import require_GET

from campaigns.contacts.importing.mapping import slugify_header
from campaigns.models import ContactImport

VIEW_PERMISSION = "campaigns.view_contactimport"


def _may_see_imports(request: HttpRequest) -> HttpResponse | None:
    """None when the user may download import files; else the answer to give instead."""
    user = request.user
    if not user.is_authenticated:
        return redirect_to_login(request.get_full_path(), reverse("admin:login"))
    if not (user.is_active and user.is_staff and user.has_perm(VIEW_PERMISSION)):
        raise PermissionDenied
    return None


def _attachment(field: FieldFile, filename: str, content_type: str) -> FileResponse:
    if not field or not field.storage.exists(field.name):
        raise Http404
    response = FileResponse(
        field.open("rb"), as_attachment=True, filename=filename, content_type=content_type
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response


@require_GET
def import_file(request: HttpRequest, pk: int) -> HttpResponse:
    """The file as it was uploaded, under its original name."""
    refused = _may_see_imports(request)
    if refused is not None:
        return refused
    imp = get_object_or_404(ContactImport, pk=pk)
    return _attachment(imp.file, imp.original_name or "import", "application/octet-stream")


@require_GET
def import_error_report(request: HttpRequest, pk: int) -> HttpResponse:
    """The refused rows with their reasons (CSV)."""
    refused = _may_see_imports(request)
    if refused is not None:
        return refused
    imp = get_object_or_404(ContactImport, pk=pk)
    name = f"{slugify_header(imp.original_name) or 'import'}-errors.csv"
    return _attachment(imp.error_report, name, "text/csv; charset=utf-8")
