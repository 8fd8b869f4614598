"""The HTTP plumbing under every provider: pooled sessions, timeouts, and what a failure means.

BaseProvider.request() is the only caller. This module knows nothing of providers; it answers
three questions:

- which client to use (one per account per process, so keep-alive connections survive from one
  driver run to the next; a forked child never reuses its parent's sockets): a JSON call (every
  send) goes through urllib3 directly (`send_json`, one pooled PoolManager, the body encoded
  once, the answer an `Answer`); calls with query parameters or form bodies (the admin's one-off
  lookups, status reads) go through requests (`send`);
- how long to wait (connect/read timeouts from settings.LOA, overridable per account in
  settings["http"]);
- what an exception means: did the request provably never reach the provider (safe to retry),
  or may it have been received (outcome unknown: reconcile, never resend blindly)?
"""

from __future__ import annotations

import email.utils
import json as jsonlib
import os
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Any

import requests
import urllib3
from requests.adapters import HTTPAdapter
from requests.utils import DEFAULT_CA_BUNDLE_PATH
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    MaxRetryError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
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
_clients: dict[tuple[int, Any], urllib3.PoolManager] = {}
_sessions_lock = threading.Lock()

# Exceptions a call may raise from the transport: requests' (send) and urllib3's (send_json).
TRANSPORT_ERRORS = (requests.RequestException, HTTPError)

USER_AGENT = "Loa/0.1"

# requests.adapters.HTTPAdapter.send as requests defines it. The `responses` library (the tests'
# HTTP mock) replaces it while active; send_json then hands its call to requests, so a test that
# mocks requests sees every call. Production never replaces it.
_REAL_ADAPTER_SEND = HTTPAdapter.send


def requests_mocked() -> bool:
    return HTTPAdapter.send is not _REAL_ADAPTER_SEND


class Answer:
    """A provider's answer read by send_json: what the adapters read of a requests.Response
    (status_code, headers, content, text, json()), without its per-call machinery (cookie
    extraction, encoding detection, hooks)."""

    __slots__ = ("status_code", "headers", "content", "url")

    def __init__(self, status_code: int, headers, content: bytes, url: str):
        self.status_code = status_code
        self.headers = headers  # urllib3's HTTPHeaderDict: case-insensitive, like requests'
        self.content = content
        self.url = url

    @property
    def text(self) -> str:
        charset = "utf-8"
        ctype = self.headers.get("Content-Type", "")
        if "charset=" in ctype:
            charset = ctype.split("charset=", 1)[1].split(";", 1)[0].strip().strip('"') or charset
        try:
            return self.content.decode(charset, errors="replace")
        except LookupError:  # an unknown charset name
            return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        # ValueError on a body that is not JSON, as requests' Response.json() raises.
        return jsonlib.loads(self.content)


def new_client(pool_size: int) -> urllib3.PoolManager:
    """The urllib3 pool of one account. retries=False: urllib3 never resends (a retry after the
    request was written could double-send) and raises the error itself, which classify_exception
    reads; redirects are not followed (BaseProvider.request() reports one as a configuration
    error). Certificates are checked against the same CA bundle requests uses."""
    return urllib3.PoolManager(
        num_pools=4,
        maxsize=max(4, pool_size),
        retries=False,
        cert_reqs="CERT_REQUIRED",
        ca_certs=DEFAULT_CA_BUNDLE_PATH,
    )


def client_for(key: Any, pool_size: int) -> urllib3.PoolManager:
    """The pooled urllib3 client of one account in this process (created on first use)."""
    pid = os.getpid()
    with _sessions_lock:
        c = _clients.get((pid, key))
        if c is None:
            c = _clients[(pid, key)] = new_client(pool_size)
        return c


def send_json(
    client: urllib3.PoolManager,
    session: requests.Session,
    method: str,
    url: str,
    *,
    timeout: urllib3.Timeout,
    json: Any = None,
    headers: dict | None = None,
):
    """One call whose body is JSON (or empty) and whose URL carries no separate query
    parameters: the send path of every adapter. The body is encoded once, as requests would
    (compact separators aside: `allow_nan=False`, ASCII), and the answer read whole so the
    connection goes back to the pool. Under a requests mock (tests) it goes through `send`."""
    if requests_mocked():
        return send(
            session,
            method,
            url,
            timeout=(timeout.connect_timeout, timeout.read_timeout),
            json=json,
            headers=headers,
        )
    all_headers = {"User-Agent": USER_AGENT, "Accept": "*/*"}
    body = None
    if json is not None:
        body = jsonlib.dumps(json, allow_nan=False).encode()
        all_headers["Content-Type"] = "application/json"
    if headers:
        all_headers.update(headers)
    resp = client.request(
        method,
        url,
        body=body,
        headers=all_headers,
        timeout=timeout,
        redirect=False,
        retries=False,
        preload_content=True,
    )
    return Answer(resp.status, resp.headers, resp.data, url)


def new_session(pool_size: int) -> requests.Session:
    s = requests.Session()
    # No urllib3 retries: a retry after the request was written could double-send. Retries are
    # decided in BaseProvider.request(), only where this module says they are safe.
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=max(4, pool_size), max_retries=0)
    s.mount("https://", adapter)
    s.mount("http://", adapter)
    s.headers["User-Agent"] = USER_AGENT
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
        clients = list(_clients.values())
        _sessions.clear()
        _clients.clear()
    for s in sessions:
        s.close()
    for c in clients:
        c.clear()


def classify_exception(exc: BaseException) -> tuple[str, str, str]:
    """(meaning, code, English description) of a requests or urllib3 exception.

    urllib3 (with retries disabled) wraps errors raised while *opening* the connection in
    MaxRetryError(reason=NewConnectionError | ConnectTimeoutError | SSLError); errors after the
    request was written (reset, remote closed, read timeout) arrive as ProtocolError or
    ReadTimeoutError. Only the first family is provably "not sent". send_json (retries=False)
    gets the same urllib3 exceptions unwrapped.
    """
    if isinstance(exc, HTTPError) and not isinstance(exc, MaxRetryError):
        return _classify_urllib3(exc)
    if isinstance(exc, MaxRetryError):
        return _classify_urllib3(exc.reason or exc)
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


def _classify_urllib3(exc: BaseException) -> tuple[str, str, str]:
    """send_json's errors, with the meanings classify_exception gives requests' wrappers of the
    same urllib3 errors."""
    if isinstance(exc, ConnectTimeoutError) and not isinstance(exc, NewConnectionError):
        return CONNECT, "connect_timeout", "Could not connect to the provider (timeout)."
    if isinstance(exc, SSLError):
        if _is_cert_error(exc):
            return TLS_CONFIG, "tls_certificate", "The provider's TLS certificate was refused."
        return UNKNOWN, "tls_error", "A TLS error broke the connection."
    if isinstance(exc, ReadTimeoutError):
        return UNKNOWN, "read_timeout", "The provider did not answer in time."
    if _connect_phase(exc):
        return CONNECT, "connect_error", "Could not connect to the provider."
    if isinstance(exc, ProtocolError | OSError):
        return UNKNOWN, "connection_reset", "The connection broke after the request was sent."
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
