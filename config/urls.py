from django.contrib import admin
from django.http import HttpResponsePermanentRedirect
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

from config import health
from config.security import LockoutAdminAuthenticationForm

# The admin login refuses a locked username+address pair with a clear message (config/security.py).
admin.site.login_form = LockoutAdminAuthenticationForm


def favicon(request):
    # Resolved per request, not at import: with the manifest storage of production, static()
    # reads the manifest that collectstatic writes.
    return HttpResponsePermanentRedirect(static("loa/favicon.svg"))


urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    # Browsers ask for /favicon.ico on pages without a <link rel="icon"> (a 404 in every log).
    path("favicon.ico", favicon),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("webhooks/", include("webhooks.urls")),
    # The transactional REST API (campaigns/api/; schema at /api/v1/openapi.json, docs at /api/v1/docs).
    path("api/v1/", include("campaigns.api.urls")),
    # Uploaded contact files and import error reports, permission-checked. MEDIA_URL is never
    # routed, in any mode: those files hold phone numbers (campaigns/media_views.py).
    path("files/", include("campaigns.media_urls")),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
]
