"""Provider account services used by the admin: connection test, OA sync, webhook registration,
channel checks, conversation replies, and the check of an account's settings.

Each returns the sentence saying what was done, or raises Refused (providers.shared.errors) with
what went wrong in words a marketer can act on: never a traceback, never a secret. Template sync is
templates_app's (it adds its action to the account list; see providers/admin.py).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

from django.utils import timezone
from django.utils.translation import gettext as _

from providers.account_settings import setting_choices
from providers.base import BaseProvider, ErrorClass, ProviderError
from providers.errors import explain
from providers.models import Channel, OfficialAccount, ProviderAccount
from providers.redact import redact_text
from providers.registry import PROVIDERS
from providers.shared.errors import Refused

logger = logging.getLogger("loa.providers")


def error_sentence(exc: Exception, *, account: ProviderAccount | None = None) -> str:
    """A provider failure in words a marketer understands, with what to do about it."""
    if not isinstance(exc, ProviderError):
        logger.exception("unexpected provider error", exc_info=exc)
        return _(
            "Loa hit an unexpected error ({error}); the technical team can see it in the logs."
        ).format(error=type(exc).__name__)
    host = ""
    if account is not None:
        try:
            host = urlsplit(account.get_provider().base_url).netloc
        except Exception:  # a broken account must still get its sentence
            host = ""
    code = exc.code
    if code in ("connect_error", "connect_timeout"):
        return _(
            "Loa could not reach the provider{at}. Check the base URL, or try again in a few minutes."
        ).format(at=f" ({host})" if host else "")
    if code in ("http_401", "http_403", "unauthenticated", "permission_denied", "101"):
        return _(
            "The provider refused the credentials. Re-enter the API key (and secret) in this "
            "account's credentials, then test again."
        )
    if code in ("http_404", "bad_route"):
        return _(
            "The provider does not know this address. Check the base URL (and, for MMP, the "
            "paths in the settings)."
        )
    if code == "140":
        return _("eSMS refused this server's IP address: ask eSMS to whitelist it.")
    text = explain(code) or exc.message
    if exc.error_class == ErrorClass.AMBIGUOUS:
        return _(
            "The provider did not answer properly ({text}). Try again in a few minutes."
        ).format(text=text)
    return text


@contextmanager
def _provider_for(account: ProviderAccount) -> Iterator[BaseProvider]:
    """The account's provider, closed afterwards. Any failure of the provider becomes Refused
    with its sentence (error_sentence): what went wrong, in words, never a traceback."""
    provider = account.get_provider()
    try:
        yield provider
    except Refused:
        raise
    except Exception as exc:
        raise Refused(error_sentence(exc, account=account), code="provider_error") from exc
    finally:
        provider.close()


def account_test_connection(*, account: ProviderAccount) -> str:
    with _provider_for(account) as provider:
        return provider.test_connection()


def account_sync_official_accounts(*, account: ProviderAccount) -> str:
    with _provider_for(account) as provider:
        found = provider.list_official_accounts()
    if not found:
        return _(
            "The provider lists no Zalo Official Account for this account "
            "(multi-channel providers use Channels with the provider's channel id instead)."
        )
    now = timezone.now()
    created = 0
    for oa in found:
        defaults = {"name": (oa.get("name") or oa["oa_id"])[:200]}
        for key in ("quality", "daily_quota", "remaining_quota"):
            if oa.get(key) is not None:
                defaults[key] = oa[key]
        if oa.get("remaining_quota") is not None or oa.get("daily_quota") is not None:
            defaults["quota_updated_at"] = now
        _oa, was_created = OfficialAccount.objects.update_or_create(
            account=account, oa_id=str(oa["oa_id"]), defaults=defaults
        )
        created += int(was_created)
    return _("{n} Official Account(s) synced: {new} new, {updated} updated.").format(
        n=len(found), new=created, updated=len(found) - created
    )


def account_register_webhooks(*, account: ProviderAccount) -> str:
    """Tell the provider where to send callbacks, where it has an API for that (eTelecom:
    UpdateShopOA.webhook_url for each OA). Others take the URL per message or in their portal."""
    with _provider_for(account) as provider:
        register = getattr(provider, "register_webhooks", None)
        if register is None:
            return _(
                "This provider is told the webhook URL per message or in its own portal: copy "
                "the URL shown on this page there."
            )
        oa_ids = list(account.official_accounts.values_list("oa_id", flat=True))
        if not oa_ids:
            raise Refused(
                _("Sync the Official Accounts first: there is no OA to register."),
                code="no_official_accounts",
            )
        done = register(oa_ids=oa_ids)
        return _("Webhook URL registered for {n} Official Account(s).").format(n=len(done))


def channel_check(*, channel: Channel) -> str:
    """Ask a multi-channel provider about one channel (information and status)."""
    with _provider_for(channel.account) as provider:
        if not hasattr(provider, "channel_status"):
            return _("This provider has no channel status to check; use Test connection.")
        if not channel.external_id:
            raise Refused(
                _("Enter the provider's channel id (publicId) on this channel first."),
                code="no_channel_id",
            )
        status = provider.channel_status(channel_id=channel.external_id)
        return _("The provider answered for channel {name}: {status}").format(
            name=channel.name, status=_short(status, provider.secret_values())
        )


def inbound_reply(
    *, account: ProviderAccount, channel_external_id: str, conversation_id: str, text: str
) -> str:
    """Reply to an inbound conversation message (MMP Send Conversation Message)."""
    with _provider_for(account) as provider:
        if not hasattr(provider, "send_conversation_message"):
            raise Refused(
                _("This provider cannot send conversation replies."), code="not_supported"
            )
        message_id = provider.send_conversation_message(
            channel_id=channel_external_id, conversation_id=conversation_id, text=text
        )
        return _("Reply sent{ref}.").format(ref=f" ({message_id})" if message_id else "")


def _short(value, secrets: list[str], limit: int = 300) -> str:
    """A provider's answer, shortened and with our secrets masked, for a message in the admin."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = redact_text(text, secrets)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def account_settings_errors(*, kind: str, settings: object) -> list[str]:
    """What is wrong with an account's settings JSON, in words, before it is saved."""
    if not isinstance(settings, dict):
        return [_('Settings must be a JSON object, like {"mode": "shop"}.')]
    errors = []
    cls = PROVIDERS.get(kind)
    if cls is None:
        return errors
    unknown = sorted(set(settings) - set(cls.default_settings) - {"http"})
    if unknown:
        errors.append(
            _("Unknown setting(s) for this provider: {names}. Known: {known}.").format(
                names=", ".join(unknown), known=", ".join(sorted(cls.default_settings))
            )
        )
    for key, value in settings.items():
        default = cls.default_settings.get(key)
        if isinstance(default, dict) and not isinstance(value, dict):
            errors.append(_("Setting {key} must be a JSON object.").format(key=key))
        elif isinstance(default, bool) and not isinstance(value, bool):
            errors.append(_("Setting {key} must be true or false.").format(key=key))
    # The allowed values are the choices of the named settings (providers/account_settings.py).
    for key, allowed in setting_choices(kind).items():
        if key in settings and str(settings[key]) not in allowed:
            errors.append(
                _("Setting {key} must be one of: {allowed}.").format(
                    key=key, allowed=", ".join(allowed)
                )
            )
    if "http" in settings and not isinstance(settings["http"], dict):
        errors.append(_("Setting http must be a JSON object (connect_timeout, read_timeout)."))
    return errors


def account_reconciliation_note(*, account_id: int, note: str | None) -> None:
    """What a status lookup said about the account's lookup itself (StatusEvent.lookup_note):
    a reason = reconciliation is unavailable (the account page says so, with the reason); "" =
    the lookup answered, the notice goes; None = nothing to record. Written only on a change."""
    if note is None:
        return
    note = note[:1000]
    changed = (
        ProviderAccount.objects.filter(pk=account_id)
        .exclude(reconciliation_unavailable=note)
        .update(reconciliation_unavailable=note, reconciliation_checked_at=timezone.now())
    )
    if changed and note:
        logger.warning("account %s: reconciliation unavailable: %s", account_id, note)
