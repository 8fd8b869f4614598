"""/webhooks/<token>/: thin. Find the account, hand the raw request to the service, answer."""

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.crypto import constant_time_compare
from django.views.decorators.csrf import csrf_exempt

from providers.models import ProviderAccount
from webhooks.guard import webhook_not_found
from webhooks.services import webhook_receive


@csrf_exempt
def receive(request: HttpRequest, token: str) -> HttpResponse:
    if request.method not in ("GET", "POST"):
        return JsonResponse({"error": "method not allowed"}, status=405)
    account = ProviderAccount.objects.filter(webhook_token=token, is_active=True).first()
    # The same 404 for a wrong, malformed or inactive token: nothing to enumerate.
    if account is None or not constant_time_compare(account.webhook_token, token):
        return webhook_not_found()
    answer = webhook_receive(
        account=account,
        method=request.method,
        query_string=request.META.get("QUERY_STRING", ""),
        body=request.body,
        headers=dict(request.headers),
        remote_addr=request.META.get("REMOTE_ADDR"),
    )
    return JsonResponse(answer.payload(), status=answer.status)
