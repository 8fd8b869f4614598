"""One callback, parsed by its provider's module and made storable: the same at intake
(webhooks.services) and in the applier (webhooks.applier)."""

from __future__ import annotations

import time

from providers.base import ParsedWebhook, WebhookRequest
from providers.models import ProviderAccount
from webhooks.sanitize import parsed_check

_providers: dict[int, tuple[float, object, object]] = {}


def provider_for(account: ProviderAccount):
    """Provider instances per account, reused for 30 s in this process: building one decrypts the
    credentials and reads the OA secrets, too much work to repeat on every callback."""
    now = time.monotonic()
    cached = _providers.get(account.pk)
    if cached and now - cached[0] < 30 and cached[1] == account.updated_at:
        return cached[2]
    provider = account.get_provider()
    _providers[account.pk] = (now, account.updated_at, provider)
    return provider


def callback_parse(
    account: ProviderAccount, request: WebhookRequest
) -> tuple[ParsedWebhook, list[str]]:
    """The parsed callback and notes on what was dropped from it (webhooks.sanitize). Raises
    WebhookRejected for a malformed or unstorable callback, anything else for a parser bug."""
    return parsed_check(provider_for(account).parse_webhook(request))
