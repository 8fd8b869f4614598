"""Provider outages: when the provider cannot be reached at all, nothing is lost and nobody waits
in the dark.

A connection refused or timed out (providers.http: CONNECT, codes `connect_error` and
`connect_timeout`) means the request never reached the provider. Such a message is retryable and
its attempt does not count against MAX_RETRIES (campaigns.engine.results): it goes back to
pending with a backoff. The send pool shares one Breaker per driver run: after OUTAGE_PAUSE_AFTER
connection failures in a row, the rest of the batch is not attempted (those rows go back to
pending as they were), and the driver pauses the campaign with the reason, in words a marketer
reads; the campaign's outage_since/outage_error say since when and why (campaign_outage) until
the provider answers again. Resume sends what is still pending.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.utils.translation import gettext, gettext_noop

from campaigns.models import Campaign
from providers.base import ErrorClass, SendResult

# providers.http.classify_exception's codes for "the request never reached the provider", and
# what each means to a marketer (message ids: rendered in the reader's language when shown).
UNREACHABLE = {
    "connect_timeout": gettext_noop(
        "the provider's server does not answer connection attempts (timeout)"
    ),
    "connect_error": gettext_noop(
        "the provider's server refuses the connection, or its address cannot be found"
    ),
}
CONNECT_CODES = frozenset(UNREACHABLE)


def is_unreachable(result: SendResult) -> bool:
    """Did this send fail because the provider could not be reached (nothing was sent)?"""
    return result.error_class == ErrorClass.RETRYABLE and result.error_code in CONNECT_CODES


def pause_after() -> int:
    """Connection failures in a row that make an outage (settings.LOA["OUTAGE_PAUSE_AFTER"])."""
    return max(1, int(settings.LOA.get("OUTAGE_PAUSE_AFTER", 10)))


def unreachable_text(code: str) -> str:
    """A connection error code, as a marketer reads it (in the current language)."""
    return gettext(UNREACHABLE[code]) if code in UNREACHABLE else code


class Breaker:
    """Connection failures in a row, shared by the threads of one driver run. Any answer from
    the provider (an HTTP status, even an error) resets it; a result without a call (refused
    before any request) changes nothing."""

    def __init__(
        self, threshold: int | None = None, consecutive: int = 0, known_outage: bool = False
    ):
        self.threshold = threshold or pause_after()
        self.consecutive = consecutive
        # The campaign shows an outage (its outage fields are set): an answer must clear them.
        self.known_outage = known_outage or consecutive > 0
        self.answered = False  # the provider answered at least once in this batch
        self.last_error = ""
        self._lock = threading.Lock()

    @property
    def open(self) -> bool:
        return self.consecutive >= self.threshold

    def record(self, result: SendResult, call) -> None:
        with self._lock:
            if is_unreachable(result):
                self.consecutive += 1
                self.last_error = result.error_code
            elif call is not None and call.status is not None:
                self.consecutive = 0
                self.answered = True

    def start_batch(self) -> None:
        self.answered = False


@dataclass(frozen=True)
class Outage:
    """A campaign's provider outage, for the campaign page and the dashboard."""

    since: datetime
    code: str  # the last connection error's code (connect_timeout, connect_error)
    error: str  # what it means, in the reader's language
    failures: int  # connection failures in a row so far
    paused: bool  # the campaign is paused (by the engine for the outage, or by a person)


def campaign_outage(campaign: Campaign) -> Outage | None:
    """The provider outage this campaign is in, or None (it was reached at its last try).
    Call it in the reader's language: `error` is translated here."""
    if campaign.outage_since is None:
        return None
    return Outage(
        since=campaign.outage_since,
        code=campaign.outage_error,
        error=unreachable_text(campaign.outage_error),
        failures=campaign.outage_failures,
        paused=campaign.status == Campaign.Status.PAUSED,
    )


def campaigns_in_outage():
    """Campaigns still to send that cannot reach their provider (the dashboard's warning),
    oldest outage first."""
    return Campaign.objects.filter(
        outage_since__isnull=False,
        status__in=[Campaign.Status.RUNNING, Campaign.Status.SETTLING, Campaign.Status.PAUSED],
    ).order_by("outage_since")
