import functools

from django.http import JsonResponse
from django.urls import path, re_path
from django.utils.translation import gettext as _

from campaigns.api.routes import api


def _refusal(code: str, message: str, status: int) -> JsonResponse:
    return JsonResponse(
        {"code": code, "message": message}, status=status, json_dumps_params={"ensure_ascii": False}
    )


def not_found(request, rest=""):
    """Any other address under /api/v1/: the API's JSON refusal, not the admin's HTML page."""
    return _refusal("not_found", _("Nothing here: see /api/v1/docs."), 404)


def _json_405(view):
    """django-ninja answers a wrong method with Django's empty HTML 405: the API's JSON instead
    (the Allow header kept)."""

    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        if response.status_code == 405 and "json" not in response.get("Content-Type", ""):
            refusal = _refusal("method_not_allowed", _("This method is not allowed here."), 405)
            if response.has_header("Allow"):
                refusal["Allow"] = response["Allow"]
            return refusal
        return response

    return wrapped


_urls = api.urls
for pattern in _urls[0]:
    pattern.callback = _json_405(pattern.callback)

urlpatterns = [
    path("", _urls),
    re_path(r"^(?P<rest>.*)$", not_found),
]
