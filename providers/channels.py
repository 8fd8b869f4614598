"""A multi-channel (MMP) account's management API in the admin (issue 16): a channel's
information and status, and one phone's Zalo consent on a Zalo channel (check, request). The
template operations store Template rows, so they are templates_app's (templates_app/mmp.py);
both use `management_error` for the sentence a person reads when the provider fails.

Services take models, call the provider (providers/mmp/channels.py reads the answers) and return
typed answers, or raise Refused with a sentence: never a traceback, never a secret. They are
asked on demand (a button), never on a page load: the provider may be slow.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime

from django.utils import timezone
from django.utils.translation import gettext as _

from providers.base import BaseProvider, ErrorClass, ProviderError
from providers.models import Channel, ChannelKind, ProviderAccount
from providers.redact import redact_text
from providers.services import error_sentence
from providers.shared.errors import Refused

# Where a person reads what Loa assumed about the MMP API (the admin's help texts link it).
ASSUMPTIONS_DOC = "docs/PROVIDERS.md#vna-mmp-and-metfone-mmp"

_TRANSIENT = ("read_timeout", "connection_reset", "http_error", "tls_error", "bad_response")


def management_error(exc: Exception, *, account: ProviderAccount, changes: bool) -> str:
    """A failed management call in words. `changes`: the call asked the provider to change
    something (create, update, delete, send a consent request), so a lost answer leaves it
    unknown whether it did."""
    if isinstance(exc, ProviderError):
        code = exc.code
        status = code[5:] if code.startswith("http_") else ""
        if code == "http_404":
            return _(
                "The provider answered HTTP 404 at an address Loa assumed (the MMP documentation "
                "does not show it): check the base URL and the paths in the account's settings "
                "(docs/PROVIDERS.md)."
            )
        if code in _TRANSIENT or exc.error_class == ErrorClass.AMBIGUOUS:
            what = (
                _("The provider had a server error (HTTP {status}).").format(status=status)
                if status.isdigit() and int(status) >= 500
                else _("The provider did not answer in time, or its answer could not be read.")
            )
            then = (
                _(
                    "It is not known whether it made the change: check at the provider (or get "
                    "or sync the templates) before trying again."
                )
                if changes
                else _("Try again in a few minutes.")
            )
            return f"{what} {then}"
        if status.isdigit() and status not in ("401", "403") and 400 <= int(status) < 500:
            secrets = list(account.get_secrets().values())
            return _("The provider refused the request (HTTP {status}): {text}").format(
                status=status, text=redact_text(exc.message, secrets)[:300]
            )
    return error_sentence(exc, account=account)


@contextmanager
def provider_call(account: ProviderAccount, *, changes: bool = False) -> Iterator[BaseProvider]:
    """The account's provider, closed afterwards; a failure becomes Refused with its sentence."""
    try:
        provider = account.get_provider()
    except Exception as exc:  # a kind no longer registered, broken settings
        raise Refused(error_sentence(exc, account=account), code="provider_error") from exc
    try:
        yield provider
    except Refused:
        raise
    except Exception as exc:
        raise Refused(
            management_error(exc, account=account, changes=changes), code="provider_error"
        ) from exc
    finally:
        provider.close()


def channel_offers_management(channel: Channel) -> bool:
    """Does this channel's provider answer channel information and status (MMP)?"""
    try:
        cls = channel.account.provider_class
    except KeyError:
        return False
    return hasattr(cls, "channel_facts")


def channel_offers_consent(channel: Channel) -> bool:
    """A Zalo channel of a provider with the Zalo consent operations (VNA MMP)."""
    try:
        cls = channel.account.provider_class
    except KeyError:
        return False
    return (
        channel.kind == ChannelKind.ZALO_ZNS
        and hasattr(cls, "zalo_consent")
        and ChannelKind.ZALO_ZNS in getattr(cls, "channel_kinds", ())
    )


@dataclass
class ChannelReport:
    """The provider's information and status of a channel; each part or the reason it failed."""

    info: object | None = None  # providers.mmp.channels.ChannelFacts
    status: object | None = None
    info_error: str = ""
    status_error: str = ""
    fetched_at: datetime = field(default_factory=timezone.now)


def _channel_id(channel: Channel) -> str:
    if not channel.external_id:
        raise Refused(
            _("Enter the provider's channel id (publicId) on this channel first."),
            code="no_channel_id",
        )
    return channel.external_id


def channel_provider_report(*, channel: Channel) -> ChannelReport:
    """Get channel information and Get Channel Status, asked separately: one failing does not
    hide the other's answer."""
    if not channel_offers_management(channel):
        raise Refused(_("This provider has no channel information to show."), code="not_supported")
    channel_id = _channel_id(channel)
    report = ChannelReport()
    for part, call in (("info", "channel_info"), ("status", "channel_status")):
        try:
            with provider_call(channel.account) as provider:
                facts = provider.channel_facts(getattr(provider, call)(channel_id=channel_id))
                facts = _masked(facts, provider.secret_values())
            setattr(report, part, facts)
        except Refused as exc:
            setattr(report, f"{part}_error", exc.message)
    return report


def channel_zalo_consent(*, channel: Channel, phone: str, request: bool = False):
    """Check (or, with request=True, ask for) one phone's Zalo consent on a Zalo channel.
    `phone` is normalized (digits with the country code). Returns the provider's ConsentAnswer
    (providers/mmp/channels.py)."""
    if not channel_offers_consent(channel):
        raise Refused(
            _("Zalo consent exists only on the Zalo channels of a VNA MMP account."),
            code="not_supported",
        )
    # Who the channel reaches (providers/reach.py: Zalo is Vietnam's, unless the account says
    # otherwise): a number it cannot reach is refused before the provider is asked.
    reach = channel.account.provider_class.reach_for(channel.kind, channel.account.settings)
    if not reach.reaches(phone):
        raise Refused(
            _("This channel reaches {countries} only: {phone} is not one of them.").format(
                countries=reach.countries_text(), phone=phone
            ),
            code="not_reachable",
        )
    channel_id = _channel_id(channel)
    with provider_call(channel.account, changes=request) as provider:
        answer = provider.zalo_consent(channel_id=channel_id, phone=phone, request=request)
        return _masked(answer, provider.secret_values())


def _masked(answer, secrets: list[str]):
    """The answer with our secrets masked in what the page shows (a provider may echo a key)."""
    return replace(
        answer,
        fields=[(key, redact_text(value, secrets)) for key, value in answer.fields],
        raw=None,
    )
