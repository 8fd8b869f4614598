"""The provider contract: what the engine and the webhooks ask of every provider module.

A provider module turns our normalized request into the provider's HTTP call, and the provider's
answers and callbacks into our normalized results and events. It knows nothing about campaigns:
everything it needs arrives in an `AccountConfig` and an `OutboundMessage` (django-anymail's
backend/payload split, with the HTTP plumbing owned here so modules never touch timeouts or
exception types).
"""

from __future__ import annotations

import enum
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar
from urllib.parse import urlsplit

import requests
import urllib3
from django.conf import settings
from django.utils.translation import gettext as _g

from providers import http, ratelimit
from providers.reach import Reach
from providers.reach import resolve as resolve_reach
from providers.redact import redact_data, redact_text

logger = logging.getLogger("loa.providers")


class ErrorClass(enum.StrEnum):
    """What the engine should do about a failed call; one model for every provider."""

    RETRYABLE = "retryable"  # nothing was sent or the provider asked us to retry: safe to resend
    AMBIGUOUS = "ambiguous"  # outcome unknown (timeout after sending, 5xx): reconcile first
    DEFERRED = "deferred"  # quota or night window: try again at the next allowed time
    PERMANENT = "permanent"  # this recipient can never get this message
    CONFIGURATION = "configuration"  # bad key, unknown OA/template: stop the campaign, tell a human


class SendOutcome(enum.StrEnum):
    ACCEPTED = "accepted"
    FAILED = "failed"


class EventStatus(enum.StrEnum):
    """Normalized delivery statuses (a subset of campaigns' Message.Status)."""

    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"
    UNKNOWN = "unknown"  # the provider said something we do not map: kept, never an exception


@dataclass(frozen=True)
class AccountConfig:
    """Everything a provider module may know about the account it sends for."""

    account_id: int
    kind: str
    base_url: str
    secrets: dict[str, str]
    settings: dict[str, Any]
    webhook_url: str = ""
    rate_limit: float | None = None
    # Zalo OA secret keys by oa_id, for X-ZEvent-Signature checks (OfficialAccount.get_secret()).
    oa_secrets: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class NativeSms:
    """The SMS a provider sends by itself when the ZNS of the same request fails (a chain step in
    the provider's own mode, issue 19: eTelecom enable_sms_on_zns_failure, eSMS
    MultiChannelMessage). Built from the reference notes (providers.md §1.2, §2.3), not seeds."""

    content: str  # the step's text, rendered for this recipient
    idempotency_key: str  # the SMS leg's own key (the step's message row): eSMS Data[1].RequestId
    unicode: bool = False  # with Vietnamese diacritics (eSMS IsUnicode "1", eTelecom unicode)


@dataclass(frozen=True)
class OutboundMessage:
    idempotency_key: str
    phone: str  # normalized 84xxxxxxxxx
    template_id: str
    template_data: dict[str, str]
    param_order: tuple[str, ...] = ()  # the template's declared order (eSMS V4 sends by position)
    channel_kind: str = "zalo_zns"
    oa_id: str = ""
    channel_external_id: str = ""
    test_mode: bool = False
    content: str = ""  # free text for SMS/Viber/email channels
    subject: str = ""
    email: str = ""  # email channels: the recipient's address (the contact's email attribute)
    # The campaign's name: eSMS's `campaignid` ("The campaign name of request", seed 003).
    campaign_name: str = ""
    # MMP applicationId of the channel (Channel.settings["application_id"]); None = the
    # account's `application_ids` by channel kind.
    application_id: int | None = None
    # The template's price per message as Loa knows it (Template.price): only the sandbox reads
    # it, to charge what the real provider would (a fixed 300 made every cost figure false).
    price: Decimal | None = None
    # The provider's own fallback to SMS in the same request (a chain step in provider mode).
    fallback_sms: NativeSms | None = None


@dataclass
class SendResult:
    outcome: SendOutcome
    provider_message_id: str = ""
    error_class: ErrorClass | None = None
    error_code: str = ""
    error_message: str = ""
    fee: Decimal | None = None
    retry_after: float | None = None  # RETRYABLE: seconds the provider asked us to wait
    retry_at: datetime | None = None  # DEFERRED: when the provider takes the message again
    raw: Any = None
    # What the answer says about the provider's own SMS fallback of this message (StatusEvent
    # with leg=1; campaigns.engine.legs records it as the chain step's row).
    legs: list[StatusEvent] = field(default_factory=list)

    @classmethod
    def accepted(
        cls, provider_message_id: str, raw: Any = None, fee: Decimal | None = None
    ) -> SendResult:
        return cls(SendOutcome.ACCEPTED, provider_message_id=provider_message_id, raw=raw, fee=fee)

    @classmethod
    def failed(
        cls,
        error_class: ErrorClass,
        code: str | int,
        message: str,
        raw: Any = None,
        retry_after: float | None = None,
        retry_at: datetime | None = None,
    ) -> SendResult:
        return cls(
            SendOutcome.FAILED,
            error_class=error_class,
            error_code=str(code),
            error_message=message[:500],
            raw=raw,
            retry_after=retry_after,
            retry_at=retry_at,
        )


# Codes of a status poll that found no status (StatusEvent.absent / StatusEvent.unproven).
ABSENT = "not_found"  # the provider said, in a documented answer, it has no such message
UNPROVEN = "status_unproven"  # asked, and the answer proves neither presence nor absence


@dataclass
class StatusEvent:
    """One normalized delivery status, from a webhook or a status poll.

    A poll that finds no status answers UNKNOWN, in one of two ways, and the difference decides
    whether a message may be sent again (campaigns/engine/reconcile.py):
    - `StatusEvent.absent(...)`: proven_absent=True. Only from an answer the provider's
      documentation describes as "no message with this key", and only in an adapter whose
      class sets can_prove_absence (eTelecom's ListMessages by tracking_id).
    - `StatusEvent.unproven(reason, ...)`: everything else (a 404 from a path we assumed, a
      shape we do not recognise, a lookup that cannot be made). The message stays `unknown`,
      with the reason shown to a person, who decides.
    """

    status: EventStatus
    provider_message_id: str = ""
    idempotency_key: str = ""
    occurred_at: datetime | None = None
    error_code: str = ""
    error_message: str = ""
    fee: Decimal | None = None
    raw: Any = None
    # Never set by hand: use StatusEvent.absent (see the class docstring).
    proven_absent: bool = False
    # What this answer says about the account's lookup itself (shown on the account page):
    # None = nothing; "" = the lookup answered in its documented shape (it works); a reason =
    # the lookup is unavailable for this account (an assumed path answered 404). The message
    # stays `unknown` either way: see StatusEvent.unavailable.
    lookup_note: str | None = None
    # 0: about the message itself. 1: about the provider's own fallback SMS of that message
    # (eTelecom's `sms{...}` block, an eSMS MultiChannelMessage SMS callback): its key names the
    # message (step 0's) or the leg itself (the step's key); campaigns.engine.legs finds or
    # builds the step's row and points the event at it.
    leg: int = 0
    # A status poll's answer may carry the leg's status too (eTelecom GetMessage's `sms` block).
    legs: list[StatusEvent] = field(default_factory=list)

    @classmethod
    def absent(cls, *, provider_message_id: str = "", idempotency_key: str = "") -> StatusEvent:
        """The provider's documented answer: it has no message with this key."""
        return cls(
            EventStatus.UNKNOWN,
            provider_message_id=provider_message_id,
            idempotency_key=idempotency_key,
            error_code=ABSENT,
            proven_absent=True,
        )

    @classmethod
    def unproven(
        cls, reason: str, *, provider_message_id: str = "", idempotency_key: str = "", raw=None
    ) -> StatusEvent:
        """Asked, and the answer proves nothing either way; `reason` says why, for a person."""
        return cls(
            EventStatus.UNKNOWN,
            provider_message_id=provider_message_id,
            idempotency_key=idempotency_key,
            error_code=UNPROVEN,
            error_message=str(reason)[:500],
            raw=raw,
        )

    @classmethod
    def unavailable(
        cls, reason: str, *, provider_message_id: str = "", idempotency_key: str = ""
    ) -> StatusEvent:
        """The lookup itself cannot be made at this account (a path Loa assumed answered 404):
        unproven for the message, which stays `unknown` and visible, and `reason` is kept on
        the account, whose page says reconciliation is unavailable (never a configuration
        error that pauses a campaign over a path nobody documented)."""
        event = cls.unproven(
            reason, provider_message_id=provider_message_id, idempotency_key=idempotency_key
        )
        event.lookup_note = event.error_message
        return event


@dataclass
class InboundEvent:
    """A reply or conversation message from a recipient."""

    sender: str  # provider's conversation/user id
    text: str
    phone: str = ""
    name: str = ""
    # The contact's country when the provider says it (MMP: contact.country, "VN", seed 000):
    # where a phone written without its calling code is read.
    country: str = ""
    channel_external_id: str = ""
    provider_message_id: str = ""
    occurred_at: datetime | None = None
    raw: Any = None


@dataclass
class WebhookRequest:
    method: str
    query: dict[str, str]
    body: bytes
    headers: dict[str, str]


@dataclass
class ParsedWebhook:
    statuses: list[StatusEvent] = field(default_factory=list)
    inbound: list[InboundEvent] = field(default_factory=list)
    # The provider's own event id or a hash of the meaningful fields (see dedupe_key_for).
    dedupe_key: str = ""
    ignored_reason: str = ""


class WebhookRejected(ValueError):
    """A malformed or unauthentic callback: answered 400/403, stored with the reason."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


class ProviderError(Exception):
    def __init__(self, error_class: ErrorClass, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.error_class = error_class
        self.code = code
        self.message = message


@dataclass
class CallRecord:
    """One HTTP call, for MessageAttempt-style diagnosis; secrets already redacted."""

    method: str
    url: str
    status: int | None
    duration_ms: int
    request_body: str
    response_body: str
    error: str = ""  # transport error code (read_timeout, connection_reset, http_500, ...)
    error_class: str = ""  # the ErrorClass the transport assigned, when it raised
    attempts: int = 0  # HTTP attempts behind this one logical call (safe retries included)


def url_may_carry_secrets(url: str) -> bool:
    """May a provider call (it carries the account's secrets) go to this URL? https://, or
    http:// where LOA_ALLOW_HTTP_PROVIDER_URLS allows it (a test environment's fake provider)."""
    scheme = urlsplit(str(url)).scheme.lower()
    return scheme == "https" or (
        scheme == "http" and bool(getattr(settings, "LOA_ALLOW_HTTP_PROVIDER_URLS", False))
    )


def _refuse_insecure(url: str) -> None:
    """Refused before anything leaves: an account saved with an http:// address (or one in its
    settings) never sends its secrets in clear text (providers/models.py refuses to save one;
    this covers rows saved before, and hosts an adapter reads from its settings)."""
    if url_may_carry_secrets(url):
        return
    parts = urlsplit(url)
    raise ProviderError(
        ErrorClass.CONFIGURATION,
        "insecure_url",
        _g(
            "Loa sends provider credentials only over https, and this account's address is "
            "{url}: enter an https:// base URL."
        ).format(url=f"{parts.scheme}://{parts.netloc}"),
    )


class BaseProvider:
    kind: ClassVar[str] = ""
    label: ClassVar[str] = ""  # may be a lazy translation (the sandbox's is): str() it to join
    default_base_url: ClassVar[str] = ""
    # Names of the credentials this provider needs; shown write-only in the admin.
    secret_fields: ClassVar[tuple[str, ...]] = ()
    # Non-secret per-account settings with their defaults (overridable in the admin as JSON).
    default_settings: ClassVar[dict[str, Any]] = {}
    channel_kinds: ClassVar[tuple[str, ...]] = ("zalo_zns",)
    # Who each channel kind reaches, {kind: Reach} with the source of each row
    # (providers/reach.py; docs/PROVIDERS.md "Who a channel reaches"). Read through reach_for,
    # which applies the account's settings["reach"] override.
    reach: ClassVar[dict[str, Reach]] = {}
    # True when the provider itself refuses a second request with the same idempotency key, so an
    # ambiguous send may be retried safely (eSMS RequestId: code 124 within 24 h).
    dedupes_idempotency_key: ClassVar[bool] = False
    # ...and for how long it remembers the key (eSMS: 24 h); a resend after that is a duplicate.
    dedupe_window_seconds: ClassVar[float] = 0
    # Can its status lookup prove that it never received a message? Only where its documentation
    # describes a lookup by our idempotency key whose empty answer means "no such message"
    # (eTelecom's ListMessages by tracking_id). The engine resends on StatusEvent.proven_absent
    # only from such a provider: an adapter built on assumed paths keeps it False.
    can_prove_absence: ClassVar[bool] = False
    # Does this provider make HTTP calls at all? (the sandbox does not)
    uses_http: ClassVar[bool] = True

    @classmethod
    def reach_for(cls, channel_kind: str, account_settings: dict | None = None) -> Reach:
        """The countries this provider's `channel_kind` reaches for an account with these
        settings (a class method: the pre-flight needs no secrets)."""
        return resolve_reach(cls.reach, channel_kind, account_settings)

    def __init__(self, config: AccountConfig):
        self.config = config
        self.settings = {**self.default_settings, **(config.settings or {})}
        self.base_url = (config.base_url or self.default_base_url).rstrip("/")
        self._session: requests.Session | None = None
        self._client = None  # the account's urllib3 pool (http.client_for), on first JSON call
        # The last HTTP call made by the current thread: the engine sends from a thread pool and
        # reads it right after each send to record a MessageAttempt.
        self._local = threading.local()

    # ---- HTTP plumbing (providers/http.py has the transport rules) ----------------------------
    @property
    def session(self) -> requests.Session:
        """This account's pooled Session in this process (keep-alive across driver runs)."""
        if self._session is None:
            pool = int(settings.LOA.get("SEND_CONCURRENCY", 16)) * 2 + 4
            key = (self.kind, self.config.account_id) if self.config.account_id else id(self)
            self._session = http.session_for(key, pool)
        return self._session

    @property
    def client(self):
        """This account's pooled urllib3 client in this process (the JSON calls: every send)."""
        if self._client is None:
            pool = int(settings.LOA.get("SEND_CONCURRENCY", 16)) * 2 + 4
            key = (self.kind, self.config.account_id) if self.config.account_id else id(self)
            self._client = http.client_for(key, pool)
        return self._client

    @property
    def http_policy(self) -> http.HttpPolicy:
        """Timeouts and retry budget: settings.LOA, overridden per account by settings["http"].
        Worked out once per instance and settings.LOA object (a test that overrides the
        settings replaces that object), not once per call."""
        loa = settings.LOA
        cached = getattr(self, "_policy", None)
        if cached is not None and cached[0] is loa:
            return cached[1]
        overrides = self.settings.get("http") if isinstance(self.settings.get("http"), dict) else {}
        policy = http.HttpPolicy.from_settings(loa, overrides)
        self._policy = (loa, policy)
        return policy

    def secret_values(self) -> list[str]:
        values = [v for v in self.config.secrets.values() if isinstance(v, str) and v]
        values += [v for v in (self.config.oa_secrets or {}).values() if isinstance(v, str) and v]
        return values

    # The part of the account's rate this provider's sends may use (1.0: all of it). The engine
    # lowers it for campaign traffic, keeping the rest for API messages.
    rate_share: float = 1.0

    def rate_key(self, bucket: str) -> str:
        return f"{self.kind}-{self.config.account_id or 0}-{bucket}"

    def request(
        self,
        method: str,
        url: str,
        *,
        json_body: Any = None,
        params: dict | None = None,
        headers: dict | None = None,
        data: Any = None,
        bucket: str | None = None,
        rate: float | None = None,
        idempotent: bool = False,
    ) -> requests.Response | http.Answer:
        """Perform one logical HTTP call; raise ProviderError with the right class on failure.

        - Rate: when `rate` (requests/s) is given, wait for a slot in the bucket `bucket` of this
          account, shared by every worker on this machine (providers/ratelimit.py).
        - Retries, only where provably safe: a connect error (nothing was sent); a 429 whose
          Retry-After is short (the provider refused the request); and, for `idempotent` calls
          only (status queries, lists), timeouts, resets and 502/503/504. A send that times out or
          is reset after it was written is never retried here: it raises AMBIGUOUS and the engine
          reconciles it (the engine also retries RETRYABLE results later, so the budget here is
          deliberately small).
        - One CallRecord per logical call (the last attempt; `attempts` counts them), secrets
          redacted, for the engine's MessageAttempt rows (pop_last_call()).
        """
        _refuse_insecure(url)
        policy = self.http_policy
        timeout = (policy.connect_timeout, policy.read_timeout)
        # A JSON (or empty) body and no separate query parameters: urllib3 directly
        # (http.send_json); the rest through requests (http.send).
        direct = data is None and not params
        if direct:
            client_timeout = urllib3.Timeout(connect=timeout[0], read=timeout[1])
        secrets = self.secret_values()
        started = time.monotonic()
        record = _call_record(method, url, params, json_body, data, secrets)
        budget = _RetryBudget(
            connect=policy.connect_retries,
            r429=policy.retry_429,
            idempotent=policy.idempotent_retries if idempotent else 0,
        )
        try:
            while True:
                record.attempts += 1
                if rate:
                    if self.rate_share < 1.0:
                        # Campaign traffic first passes a bucket of its own at its share of the
                        # rate, so the account's bucket always has room left for API messages,
                        # which pass the account's bucket only (campaigns.engine.driver sets
                        # the share: LOA_API_RATE_SHARE).
                        ratelimit.acquire(
                            self.rate_key(f"{bucket or 'default'}-campaigns"),
                            rate * self.rate_share,
                        )
                    ratelimit.acquire(self.rate_key(bucket or "default"), rate)
                try:
                    if direct:
                        resp = http.send_json(
                            self.client,
                            self.session,
                            method,
                            url,
                            json=json_body,
                            headers=headers,
                            timeout=client_timeout,
                        )
                    else:
                        resp = http.send(
                            self.session,
                            method,
                            url,
                            json=json_body,
                            data=data,
                            params=params,
                            headers=headers,
                            timeout=timeout,
                        )
                except http.TRANSPORT_ERRORS as exc:
                    time.sleep(_transport_retry_wait(exc, record, budget))
                    continue
                wait = _answer_retry_wait(resp, record, budget, policy, secrets)
                if wait is None:
                    return resp
                time.sleep(wait)
        finally:
            record.duration_ms = int((time.monotonic() - started) * 1000)
            self._local.last_call = record
            if record.error:
                _log_failed_call(self.kind, method, record)

    @staticmethod
    def http_status_failure(resp: requests.Response | http.Answer) -> SendResult | None:
        """Generic classification of HTTP-level failures shared by every provider."""
        if resp.status_code == 429:
            wait = http.parse_retry_after(resp.headers.get("Retry-After"))
            return SendResult.failed(
                ErrorClass.RETRYABLE,
                "http_429",
                "Rate limited by the provider.",
                retry_after=wait if wait is not None else 5.0,
            )
        if resp.status_code in (401, 403):
            return SendResult.failed(
                ErrorClass.CONFIGURATION,
                f"http_{resp.status_code}",
                "The provider refused our credentials.",
            )
        if resp.status_code == 408:
            # The server gave up waiting for our request: it did not process it.
            return SendResult.failed(
                ErrorClass.RETRYABLE, "http_408", "The provider timed out reading the request."
            )
        if resp.status_code >= 500:
            # The provider may have accepted the message before failing: never resend blindly.
            return SendResult.failed(
                ErrorClass.AMBIGUOUS, f"http_{resp.status_code}", "The provider had a server error."
            )
        return None

    def pop_last_call(self) -> CallRecord | None:
        call = getattr(self._local, "last_call", None)
        self._local.last_call = None
        return call

    def after_batch(self) -> None:
        """Called by the engine after each batch of sends (the sandbox starts its callbacks)."""

    # ---- the contract --------------------------------------------------------------------------
    def send(self, message: OutboundMessage) -> SendResult:
        raise NotImplementedError

    def parse_webhook(self, request: WebhookRequest) -> ParsedWebhook:
        raise WebhookRejected(f"{self.kind} does not accept webhooks")

    def fetch_status(
        self,
        *,
        provider_message_id: str,
        idempotency_key: str,
        oa_id: str = "",
        channel_kind: str = "",
    ) -> StatusEvent | None:
        """Ask the provider what happened to one message (reconciliation): its status; or
        UNKNOWN as StatusEvent.absent (documented "no such message") or StatusEvent.unproven
        (with the reason); None when there is nothing to ask. A lookup that fails raises
        ProviderError: the engine keeps the message `unknown` and shows the error."""
        return None

    def test_connection(self) -> str:
        """Return a human sentence on success; raise ProviderError on failure."""
        raise NotImplementedError

    def list_templates(self, *, oa_id: str = "") -> list[dict]:
        return []

    def list_official_accounts(self) -> list[dict]:
        return []

    def close(self) -> None:
        """Release this instance's hold on the account's Session. The pooled connections stay
        open for the next driver run in this process (http.close_sessions() closes them all)."""
        self._session = None
        self._client = None


@dataclass
class _RetryBudget:
    """The retries one logical call has left, by reason (BaseProvider.request)."""

    connect: int
    r429: int
    idempotent: int


def _log_failed_call(kind: str, method: str, record: CallRecord) -> None:
    logger.info(
        "%s %s %s -> %s (%s, %d attempt(s), %d ms)",
        kind,
        method,
        record.url,
        record.status,
        record.error,
        record.attempts,
        record.duration_ms,
    )


def _call_record(
    method: str, url: str, params: dict | None, json_body: Any, data: Any, secrets: list[str]
) -> CallRecord:
    """The CallRecord of a call about to be made: its request, secrets redacted."""
    if json_body is not None:
        # redact_data already passed every value through redact_text: no second pass.
        body_text = json.dumps(redact_data(json_body, secrets), ensure_ascii=False)[:2000]
    elif data is not None:
        body_text = redact_text((data if isinstance(data, str) else str(data))[:2000], secrets)
    else:
        body_text = ""
    return CallRecord(
        method=method,
        url=redact_text(_full_url(url, params), secrets),
        status=None,
        duration_ms=0,
        request_body=body_text,
        response_body="",
    )


def _transport_retry_wait(exc: Exception, record: CallRecord, budget: _RetryBudget) -> float:
    """A transport error: the seconds to wait before trying again when that is safe (a connect
    error, or any error of an idempotent call with budget left); otherwise raise ProviderError
    with its class."""
    meaning, code, text = http.classify_exception(exc)
    record.error = code
    if meaning == http.CONNECT and budget.connect > 0:
        budget.connect -= 1
        return http.backoff(record.attempts)
    if meaning == http.UNKNOWN and budget.idempotent > 0:
        budget.idempotent -= 1
        return http.backoff(record.attempts)
    klass = {
        http.CONNECT: ErrorClass.RETRYABLE,
        http.TLS_CONFIG: ErrorClass.CONFIGURATION,
    }.get(meaning, ErrorClass.AMBIGUOUS)
    record.error_class = str(klass)
    raise ProviderError(klass, code, text) from exc


def _answer_retry_wait(
    resp: requests.Response | http.Answer,
    record: CallRecord,
    budget: _RetryBudget,
    policy: http.HttpPolicy,
    secrets: list[str],
) -> float | None:
    """An HTTP answer, recorded: the seconds to wait before asking again (a short Retry-After on
    429; 502/503/504 of an idempotent call), or None when it is the answer. A redirect raises."""
    record.status = resp.status_code
    record.response_body = redact_text(resp.text[:2000], secrets)
    record.error = ""
    if 300 <= resp.status_code < 400:
        # Not followed (http.send): the base URL is wrong, and only a human can say
        # whether the address it names is the provider's. Nothing was processed.
        record.error = f"http_{resp.status_code}"
        record.error_class = str(ErrorClass.CONFIGURATION)
        location = redact_text(resp.headers.get("Location", "")[:200], secrets)
        raise ProviderError(
            ErrorClass.CONFIGURATION,
            f"http_{resp.status_code}",
            f"The provider answered with a redirect ({resp.status_code}"
            f"{' to ' + location if location else ''}): check the account's base URL.",
        )
    if resp.status_code == 429 and budget.r429 > 0:
        wait = http.parse_retry_after(resp.headers.get("Retry-After"))
        # Only with an explicit, short Retry-After: otherwise the engine decides.
        if wait is not None and wait <= policy.max_retry_after:
            budget.r429 -= 1
            return wait
    if resp.status_code in (502, 503, 504) and budget.idempotent > 0:
        budget.idempotent -= 1
        return http.backoff(record.attempts)
    if resp.status_code >= 400:
        record.error = f"http_{resp.status_code}"
    return None


def _full_url(url: str, params: dict | None) -> str:
    if not params:
        return url
    prepared = requests.models.PreparedRequest()
    prepared.prepare_url(url, params)
    return prepared.url or url
