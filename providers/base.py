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

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter

from providers.redact import redact_text

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


@dataclass
class SendResult:
    outcome: SendOutcome
    provider_message_id: str = ""
    error_class: ErrorClass | None = None
    error_code: str = ""
    error_message: str = ""
    fee: Decimal | None = None
    retry_after: float | None = None
    raw: Any = None

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
    ) -> SendResult:
        return cls(
            SendOutcome.FAILED,
            error_class=error_class,
            error_code=str(code),
            error_message=message[:500],
            raw=raw,
            retry_after=retry_after,
        )


@dataclass
class StatusEvent:
    """One normalized delivery status, from a webhook or a status poll."""

    status: EventStatus
    provider_message_id: str = ""
    idempotency_key: str = ""
    occurred_at: datetime | None = None
    error_code: str = ""
    error_message: str = ""
    fee: Decimal | None = None
    raw: Any = None


@dataclass
class InboundEvent:
    """A reply or conversation message from a recipient."""

    sender: str  # provider's conversation/user id
    text: str
    phone: str = ""
    name: str = ""
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
    error: str = ""


class BaseProvider:
    kind: ClassVar[str] = ""
    label: ClassVar[str] = ""
    default_base_url: ClassVar[str] = ""
    # Names of the credentials this provider needs; shown write-only in the admin.
    secret_fields: ClassVar[tuple[str, ...]] = ()
    # Non-secret per-account settings with their defaults (overridable in the admin as JSON).
    default_settings: ClassVar[dict[str, Any]] = {}
    channel_kinds: ClassVar[tuple[str, ...]] = ("zalo_zns",)
    # True when the provider itself refuses a second request with the same idempotency key, so an
    # ambiguous send may be retried safely (eSMS RequestId: code 124 within 24 h).
    dedupes_idempotency_key: ClassVar[bool] = False
    # Does this provider make HTTP calls at all? (the sandbox does not)
    uses_http: ClassVar[bool] = True

    def __init__(self, config: AccountConfig):
        self.config = config
        self.settings = {**self.default_settings, **(config.settings or {})}
        self.base_url = (config.base_url or self.default_base_url).rstrip("/")
        self._session: requests.Session | None = None
        # The last HTTP call made by the current thread: the engine sends from a thread pool and
        # reads it right after each send to record a MessageAttempt.
        self._local = threading.local()

    # ---- HTTP plumbing -------------------------------------------------------------------------
    @property
    def session(self) -> requests.Session:
        if self._session is None:
            s = requests.Session()
            # Keep-alive pool sized for the driver's concurrency; no automatic retries here:
            # a retry after the request was sent could double-send, so only the engine retries,
            # and only for errors it has classified as safe.
            adapter = HTTPAdapter(
                pool_connections=4, pool_maxsize=settings.LOA["SEND_CONCURRENCY"] + 4, max_retries=0
            )
            s.mount("https://", adapter)
            s.mount("http://", adapter)
            s.headers["User-Agent"] = "Loa/0.1"
            self._session = s
        return self._session

    def secret_values(self) -> list[str]:
        return [v for v in self.config.secrets.values() if isinstance(v, str) and v]

    def request(
        self,
        method: str,
        url: str,
        *,
        json_body: Any = None,
        params: dict | None = None,
        headers: dict | None = None,
    ) -> requests.Response:
        """Perform one HTTP call; raise ProviderError with the right class on transport errors.

        A connect error means nothing reached the provider: RETRYABLE. A read timeout or a broken
        connection after the request was written means we do not know: AMBIGUOUS.
        """
        timeout = (settings.LOA["HTTP_CONNECT_TIMEOUT"], settings.LOA["HTTP_READ_TIMEOUT"])
        started = time.monotonic()
        body_text = json.dumps(json_body, ensure_ascii=False) if json_body is not None else ""
        status = None
        resp_text = ""
        error = ""
        try:
            resp = self.session.request(
                method, url, json=json_body, params=params, headers=headers, timeout=timeout
            )
            status = resp.status_code
            resp_text = resp.text[:2000]
            return resp
        except requests.exceptions.ConnectTimeout as exc:
            error = "connect timeout"
            raise ProviderError(
                ErrorClass.RETRYABLE,
                "connect_timeout",
                "Could not connect to the provider (timeout).",
            ) from exc
        except requests.exceptions.ConnectionError as exc:
            # requests raises ConnectionError both for refused connections (nothing sent) and for
            # resets after the body was written; only the first is provably safe to retry.
            text = str(exc)
            if (
                "Connection refused" in text
                or "Name or service not known" in text
                or "NewConnectionError" in text
            ):
                error = "connection refused"
                raise ProviderError(
                    ErrorClass.RETRYABLE, "connect_error", "Could not connect to the provider."
                ) from exc
            error = "connection reset"
            raise ProviderError(
                ErrorClass.AMBIGUOUS,
                "connection_reset",
                "The connection broke after the request was sent.",
            ) from exc
        except requests.exceptions.Timeout as exc:
            error = "read timeout"
            raise ProviderError(
                ErrorClass.AMBIGUOUS, "read_timeout", "The provider did not answer in time."
            ) from exc
        except requests.RequestException as exc:
            error = type(exc).__name__
            raise ProviderError(ErrorClass.AMBIGUOUS, "http_error", str(exc)[:200]) from exc
        finally:
            secrets = self.secret_values()
            self._local.last_call = CallRecord(
                method=method,
                url=redact_text(url, secrets),
                status=status,
                duration_ms=int((time.monotonic() - started) * 1000),
                request_body=redact_text(body_text[:2000], secrets),
                response_body=redact_text(resp_text, secrets),
                error=error,
            )

    @staticmethod
    def http_status_failure(resp: requests.Response) -> SendResult | None:
        """Generic classification of HTTP-level failures shared by every provider."""
        if resp.status_code == 429:
            retry_after = resp.headers.get("Retry-After")
            try:
                wait = float(retry_after) if retry_after else 5.0
            except ValueError:
                wait = 5.0
            return SendResult.failed(
                ErrorClass.RETRYABLE, "http_429", "Rate limited by the provider.", retry_after=wait
            )
        if resp.status_code in (401, 403):
            return SendResult.failed(
                ErrorClass.CONFIGURATION,
                f"http_{resp.status_code}",
                "The provider refused our credentials.",
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
        self, *, provider_message_id: str, idempotency_key: str, oa_id: str = ""
    ) -> StatusEvent | None:
        """Ask the provider what happened to one message (reconciliation). None = unknown yet."""
        return None

    def test_connection(self) -> str:
        """Return a human sentence on success; raise ProviderError on failure."""
        raise NotImplementedError

    def list_templates(self, *, oa_id: str = "") -> list[dict]:
        return []

    def list_official_accounts(self) -> list[dict]:
        return []

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None
