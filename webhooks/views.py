"""/webhooks/<token>/: thin. Find the account, hand the raw request to the service, answer."""

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.crypto import constant_time_compare
from django.views.decorators.csrf import csrf_exempt

from providers.models import ProviderAccount
from webhooks.guard import webhook_not_found
from webhooks.services import MAX_BODY, BodyUnreadable, body_read, webhook_receive


@csrf_exempt
def receive(request: HttpRequest, token: str) -> HttpResponse:
    if request.method not in ("GET", "POST"):
        return JsonResponse({"error": "method not allowed"}, status=405)
    account = ProviderAccount.objects.filter(webhook_token=token, is_active=True).first()
    # The same 404 for a wrong, malformed or inactive token: nothing to enumerate.
    if account is None or not constant_time_compare(account.webhook_token, token):
        return webhook_not_found()
    try:
        body = _body(request)
    except BodyUnreadable:
        return JsonResponse({"error": "length required"}, status=411)
    answer = webhook_receive(
        account=account,
        method=request.method,
        query_string=request.META.get("QUERY_STRING", ""),
        body=body,
        headers=dict(request.headers),
        remote_addr=request.META.get("REMOTE_ADDR"),
    )
    response = JsonResponse(answer.payload(), status=answer.status)
    for name, value in answer.headers():
        response[name] = value
    return response


def _body(request: HttpRequest) -> bytes:
    """The body as Django reads it, or, for a chunked request (no Content-Length: Django reads
    nothing, and the callback was stored empty), as the server de-chunked it (body_read)."""
    if request.META.get("CONTENT_LENGTH") or not request.META.get("HTTP_TRANSFER_ENCODING"):
        return request.body
    return body_read(request.META, limit=MAX_BODY)
