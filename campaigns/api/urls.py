from django.http import JsonResponse
from django.urls import path, re_path
from django.utils.translation import gettext as _

from campaigns.api.routes import api


def not_found(request, rest=""):
    """Any other address under /api/v1/: the API's JSON refusal, not the admin's HTML page."""
    return JsonResponse(
        {"code": "not_found", "message": _("Nothing here: see /api/v1/docs.")},
        status=404,
        json_dumps_params={"ensure_ascii": False},
    )


urlpatterns = [
    path("", api.urls),
    re_path(r"^(?P<rest>.*)$", not_found),
]
