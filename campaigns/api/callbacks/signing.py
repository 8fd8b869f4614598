"""The callback signature: HMAC-SHA256, keyed with the application's callback secret, over the
timestamp header, a dot, and the raw body bytes; hex-encoded, with a version prefix so the scheme
can change without breaking clients ("v1=<hex>"). Signing the timestamp with the body lets the
client refuse an old request replayed by someone who captured it (REPLAY_WINDOW_SECONDS)."""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "X-Loa-Signature"
TIMESTAMP_HEADER = "X-Loa-Timestamp"
DELIVERY_HEADER = "X-Loa-Delivery"
EVENT_HEADER = "X-Loa-Event"
# A client should refuse a callback whose timestamp is further than this from its own clock
# (docs/API.md). Every attempt is signed afresh, so a retry is never stale.
REPLAY_WINDOW_SECONDS = 300


def signature_compute(*, secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def signature_headers(*, secret: str, body: bytes, now: float | None = None) -> dict[str, str]:
    ts = int(now if now is not None else time.time())
    return {
        TIMESTAMP_HEADER: str(ts),
        SIGNATURE_HEADER: signature_compute(secret=secret, timestamp=ts, body=body),
    }


def signature_verify(
    *,
    secret: str,
    body: bytes,
    timestamp: str,
    signature: str,
    now: float | None = None,
    window: int = REPLAY_WINDOW_SECONDS,
) -> bool:
    """What a client does (docs/API.md shows the same steps): the timestamp within the window, then
    the signature compared in constant time."""
    try:
        ts = int(timestamp)
    except (TypeError, ValueError):
        return False
    if abs((now if now is not None else time.time()) - ts) > window:
        return False
    expected = signature_compute(secret=secret, timestamp=ts, body=body)
    return hmac.compare_digest(expected, signature or "")
