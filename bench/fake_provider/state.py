"""What the fake provider remembers and owes: its knobs, the messages it took, the calls counted
per idempotency key, the errors it will inject, and the callbacks it delivers after a delay.

Thread-safe: the HTTP handler threads, the callback thread and the test change it concurrently
under one lock (the callback queue has its own condition)."""

from __future__ import annotations

import heapq
import itertools
import random
import threading
import time
from collections import Counter, deque

import requests

ERROR_KINDS = ("5xx", "timeout", "reset")


class FakeState:
    """The fake's state and knobs; every knob may be changed while it runs. FakeProviders
    (server.py) adds the HTTP server around it."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        latency_ms: float = 0.0,
        error_rate: float = 0.0,
        error_kinds: tuple[str, ...] = ERROR_KINDS,
        hang_seconds: float = 30.0,
        fail_rate: float = 0.0,
        callback_delay: float = 0.2,
        callbacks: bool = True,
        callback_urls: dict[str, str] | None = None,
        etelecom_callback: str = "message",  # "message" (zl_oa_message) or "zalo"
        daily_quota: int | None = None,
        keys: dict[str, object] | None = None,
        seed: int | None = None,
    ):
        self.host = host
        self.port = port
        self.latency_ms = latency_ms
        self.error_rate = error_rate
        self.error_kinds = tuple(error_kinds)
        self.hang_seconds = hang_seconds
        self.fail_rate = fail_rate
        self.callback_delay = callback_delay
        self.callbacks = callbacks
        self.callback_urls = dict(callback_urls or {})
        self.etelecom_callback = etelecom_callback
        # The OA's daily ZNS quota (eTelecom sends): past it, Zalo's -144 until new_day().
        self.daily_quota = daily_quota
        self.quota_used = 0
        # The credentials the fake's accounts hold. Absent entries accept any well-formed key
        # (what most tests want); set to make a wrong key fail as the provider documents it:
        #   "esms": (ApiKey, SecretKey)          -> CodeResult 101
        #   "etelecom:shop": the shop's api_key  -> 401 unauthenticated on /shop.Zalo/...
        #   "etelecom:partner": the shop_key     -> 401 unauthenticated on /partner.Zalo/...
        #   "mmp": the API key                   -> 401 (assumed envelope)
        self.keys: dict[str, object] = dict(keys or {})
        # Per-recipient fates (fallback chains, issue 19), by the phone as the request carries
        # it: `fail_phones` {phone: (Zalo code, text)} fail with that code (eTelecom: in the
        # send answer, eSMS: in the callback); `silent_phones` are accepted and never get a
        # delivery callback (a phone that stays off).
        self.fail_phones: dict[str, tuple[int, str]] = {}
        self.silent_phones: set[str] = set()
        # SMS the providers sent by themselves (their own fallback: eTelecom
        # enable_sms_on_zns_failure, eSMS MultiChannelMessage), {provider, phone, message}.
        self.sms_fallbacks: list[dict] = []
        # Requests the fake refused for breaking the contract, by (provider, rule): a test or a
        # benchmark reads why, not only that, a send failed.
        self.refusals: Counter[tuple[str, str]] = Counter()
        self.accepted_by_key: Counter[tuple[str, str]] = Counter()
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.calls_by_key: Counter[tuple[str, str]] = Counter()
        self.requests: deque[dict] = deque(maxlen=20_000)
        self.forced: deque[str] = deque()
        self.messages: dict[str, dict] = {}  # by provider message id
        self.by_key: dict[tuple[str, str], str] = {}  # (provider, key) -> provider message id
        self.callbacks_sent = 0
        self.callback_errors = 0
        self.total = 0
        self._seq = itertools.count(1)
        self._heap: list[tuple[float, int, dict]] = []
        self._heap_cv = threading.Condition()
        self._stopping = threading.Event()

    # ---- test helpers --------------------------------------------------------------------------
    def force(self, *kinds: str) -> None:
        """The next requests fail in these ways, in order ("5xx", "timeout", "reset", "429")."""
        with self.lock:
            self.forced.extend(kinds)

    def count(self, provider: str, key: str) -> int:
        with self.lock:
            return self.calls_by_key[(provider, key)]

    def accepted(self, provider: str, key: str) -> int:
        """Sends with this key the provider took as messages (a quota refusal is a call, but no
        message: sending it again the next day is right, not a duplicate)."""
        with self.lock:
            return self.accepted_by_key[(provider, key)]

    def new_day(self) -> None:
        """Midnight at the provider: the daily quota is whole again."""
        with self.lock:
            self.quota_used = 0

    def refuse(self, provider: str, rule: str) -> None:
        """Count one request refused by the fake's validation (see self.refusals)."""
        with self.lock:
            self.refusals[(provider, rule)] += 1

    def reset(self) -> None:
        with self.lock:
            self.refusals.clear()
            self.accepted_by_key.clear()
            self.quota_used = 0
            self.calls_by_key.clear()
            self.requests.clear()
            self.forced.clear()
            self.messages.clear()
            self.by_key.clear()
            self.sms_fallbacks.clear()
            self.total = 0

    def last(self, path_part: str) -> dict | None:
        with self.lock:
            for r in reversed(self.requests):
                if path_part in r["path"]:
                    return r
        return None

    # ---- callbacks -----------------------------------------------------------------------------
    def next_number(self) -> int:
        """The next number of the fake's one counter (callback order, eTelecom message ids)."""
        return next(self._seq)

    def schedule(self, delay: float, method: str, url: str, payload) -> None:
        if not self.callbacks or not url:
            return
        with self._heap_cv:
            heapq.heappush(
                self._heap,
                (
                    time.monotonic() + delay,
                    next(self._seq),
                    {"method": method, "url": url, "payload": payload},
                ),
            )
            self._heap_cv.notify()

    def stop_delivering(self) -> None:
        self._stopping.set()
        with self._heap_cv:
            self._heap_cv.notify_all()

    def deliver_loop(self) -> None:
        """Send each scheduled callback when it is due, until stop_delivering()."""
        session = requests.Session()
        session.trust_env = False
        while not self._stopping.is_set():
            with self._heap_cv:
                while not self._stopping.is_set() and (
                    not self._heap or self._heap[0][0] > time.monotonic()
                ):
                    timeout = self._heap[0][0] - time.monotonic() if self._heap else 0.5
                    self._heap_cv.wait(max(0.001, min(timeout, 0.5)))
                if self._stopping.is_set():
                    return
                _due, _n, job = heapq.heappop(self._heap)
            try:
                if job["method"] == "GET":
                    session.get(job["url"], params=job["payload"], timeout=10)
                else:
                    session.post(job["url"], json=job["payload"], timeout=10)
                with self.lock:
                    self.callbacks_sent += 1
            except requests.RequestException:
                with self.lock:
                    self.callback_errors += 1

    # ---- request handling (called by the handler threads) ----------------------------------------
    def pick_error(self) -> str | None:
        with self.lock:
            if self.forced:
                return self.forced.popleft()
        if self.error_rate and self.random.random() < self.error_rate:
            return self.random.choice(self.error_kinds)
        return None

    def note(
        self, provider: str, key: str, path: str, method: str, headers: dict, body, client=None
    ) -> None:
        with self.lock:
            self.total += 1
            if key:
                self.calls_by_key[(provider, key)] += 1
            self.requests.append(
                {
                    "client": client,
                    "provider": provider,
                    "path": path,
                    "method": method,
                    "headers": headers,
                    "body": body,
                }
            )

    def outcome(self, phone: str = "") -> tuple[bool, int, str]:
        """(fails?, Zalo error code, message) for a new message to `phone`."""
        if phone and phone in self.fail_phones:
            code, text = self.fail_phones[phone]
            return True, code, text
        if self.fail_rate and self.random.random() < self.fail_rate:
            return True, -118, "Zalo account not existed"
        return False, 0, "Success"
