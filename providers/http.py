"""The HTTP plumbing under every provider: pooled sessions, timeouts, and what a failure means.

BaseProvider.request() is the only caller. This module knows nothing of providers; it answers
three questions:

- which Session to use (one per account per process, so keep-alive connections survive from one
  driver run to the next; a forked child never reuses its parent's sockets);
- how long to wait (connect/read timeouts from settings.LOA, overridable per account in
  settings["http"]);
- what an exception means: did the request provably never reach the provider (safe to retry),
  or may it have been received (outcome unknown: reconcile, never resend blindly)?
"""

from __future__ import annotations

import email.utils
import os
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import (
    ConnectTimeoutError,
    MaxRetryError,
    NewConnectionError,
)

# What a transport exception means for the engine.
CONNECT = "connect"  # nothing was sent: safe to retry
UNKNOWN = "unknown"  # the request may have been received: reconcile first
TLS_CONFIG = "tls_config"  # certificate refused before anything was sent: a human must look


@dataclass(frozen=True)
class HttpPolicy:
    connect_timeout: float
    read_timeout: float
    # Extra attempts after a connect error (nothing was sent; the engine backs off after that).
    connect_retries: int = 1
    # Extra attempts after a 429 whose Retry-After is at most max_retry_after seconds.
    retry_429: int = 1
    max_retry_after: float = 5.0
    # Extra attempts for read-only calls (status, lists) after a timeout, reset or 502/503/504:
    # asking twice changes nothing at the provider, so these are provably safe.
    idempotent_retries: int = 2

    @classmethod
    def from_settings(cls, loa: dict, overrides: dict | None = None) -> HttpPolicy:
        o = overrides or {}

        def num(key: str, default: float) -> float:
            try:
                return float(o.get(key, default))
            except (TypeError, ValueError):
                return default

        return cls(
            connect_timeout=num("connect_timeout", loa.get("HTTP_CONNECT_TIMEOUT", 5.0)),
            read_timeout=num("read_timeout", loa.get("HTTP_READ_TIMEOUT", 20.0)),
            connect_retries=int(num("connect_retries", 1)),
            retry_429=int(num("retry_429", 1)),
            max_retry_after=num("max_retry_after", 5.0),
            idempotent_retries=int(num("idempotent_retries", 2)),
        )


_sessions: dict[tuple[int, Any], requests.Session] = {}
_sessions_lock = threading.Lock()


def new_session(pool_size: int) -> requests.Session:
    s = requests.Session()
    # No urllib3 retries: a retry after the request was written could double-send. Retries are
    # decided in BaseProvider.request(), only where this module says they are safe.
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=max(4, pool_size), max_retries=0)
    s.mount("https://", adapter)
    s.mount("http://", adapter)
    s.headers["User-Agent"] = "Loa/0.1"
    # Provider APIs never need cookies or a proxy picked up from the environment by surprise.
    s.trust_env = False
    return s


def send(
    session: requests.Session,
    method: str,
    url: str,
    *,
    timeout,
    json: Any = None,
    data: Any = None,
    params: dict | None = None,
    headers: dict | None = None,
) -> requests.Response:
    """One request through the Session's adapter (the one `responses` mocks in the tests),
    without what Session.request and Session.send add for features Loa turns off: cookies (a
    cookie jar parsed on every answer), auth and proxies from the environment, session-level
    params, hooks, and redirects. Profiled on the send path, those were a tenth of the CPU of a
    send.

    Redirects are not followed: a 301/302 would turn a POST into a GET to another address and
    drop the body. BaseProvider.request() reports a redirect as a configuration error instead."""
    prepared = requests.PreparedRequest()
    prepared.prepare(
        method=method,
        url=url,
        headers={**session.headers, **headers} if headers else session.headers.copy(),
        json=json,
        data=data,
        params=params,
    )
    adapter = session.get_adapter(prepared.url)
    resp = adapter.send(
        prepared, timeout=timeout, stream=False, verify=session.verify, cert=None, proxies={}
    )
    resp.content  # noqa: B018 - read the body now: the connection goes back to the pool
    return resp


def session_for(key: Any, pool_size: int) -> requests.Session:
    """The pooled Session of one account in this process (created on first use)."""
    pid = os.getpid()
    with _sessions_lock:
        s = _sessions.get((pid, key))
        if s is None:
            s = _sessions[(pid, key)] = new_session(pool_size)
        return s


def close_sessions() -> None:
    with _sessions_lock:
        sessions = list(_sessions.values())
        _sessions.clear()
    for s in sessions:
        s.close()


def classify_exception(exc: BaseException) -> tuple[str, str, str]:
    """(meaning, code, English description) of a requests exception.

    urllib3 (with retries disabled) wraps errors raised while *opening* the connection in
    MaxRetryError(reason=NewConnectionError | ConnectTimeoutError | SSLError); errors after the
    request was written (reset, remote closed, read timeout) arrive as ProtocolError or
    ReadTimeoutError. Only the first family is provably "not sent".
    """
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return CONNECT, "connect_timeout", "Could not connect to the provider (timeout)."
    if isinstance(exc, requests.exceptions.SSLError):
        if _is_cert_error(exc):
            # Certificate verification happens in the handshake, before any byte of the request.
            return TLS_CONFIG, "tls_certificate", "The provider's TLS certificate was refused."
        # Other TLS errors surface the same way whether they broke the handshake or a later read
        # (urllib3 wraps both in MaxRetryError(SSLError)): not provably unsent.
        return UNKNOWN, "tls_error", "A TLS error broke the connection."
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return UNKNOWN, "read_timeout", "The provider did not answer in time."
    if isinstance(exc, requests.exceptions.ConnectionError):
        if _connect_phase(exc):
            return CONNECT, "connect_error", "Could not connect to the provider."
        return UNKNOWN, "connection_reset", "The connection broke after the request was sent."
    if isinstance(exc, requests.exceptions.Timeout):
        return UNKNOWN, "read_timeout", "The provider did not answer in time."
    return UNKNOWN, "http_error", f"{type(exc).__name__}: {str(exc)[:200]}"


def _chain(exc: BaseException):
    seen = set()
    stack = [exc]
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        stack.extend([e.__cause__, e.__context__])
        stack.extend(a for a in getattr(e, "args", ()) if isinstance(a, BaseException))
        reason = getattr(e, "reason", None)
        if isinstance(reason, BaseException):
            stack.append(reason)


def _connect_phase(exc: BaseException) -> bool:
    for e in _chain(exc):
        if isinstance(e, NewConnectionError | ConnectTimeoutError):
            return True
        if isinstance(e, MaxRetryError) and isinstance(
            e.reason, NewConnectionError | ConnectTimeoutError
        ):
            return True
        if isinstance(e, ConnectionRefusedError):
            return True
    return False


def _is_cert_error(exc: BaseException) -> bool:
    for e in _chain(exc):
        if isinstance(e, ssl.SSLCertVerificationError):
            return True
        if "CERTIFICATE_VERIFY_FAILED" in str(e):
            return True
    return False


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After as seconds (RFC 9110 §10.2.3: delay-seconds or an HTTP-date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())


def backoff(attempt: int) -> float:
    """Pause before retrying a connect error: short, the engine backs off for longer."""
    return min(2.0, 0.2 * (2 ** (attempt - 1)))
