"""The idempotency key a message carries to the provider (eSMS RequestId, eTelecom/Zalo
tracking_id, MMP clientMessageId), and the way back from a callback's key to its message.

The key has no index of its own: it is unique because (campaign, contact) is, and it spells both
ids, so a lookup by key goes through that unique index (one btree less to fill for each
materialized message)."""

from __future__ import annotations

import re

from campaigns.models import Campaign

# At most 18 digits an id: whatever a callback quotes, the ids fit a bigint (no overflow error).
# A fallback step's key ends in "s{step}" (step 1 or 2); step 0 has no suffix, as before
# fallback chains existed, so every stored key and the callbacks quoting it still match.
_KEY_RE = re.compile(r"loa([0-9]{1,18})t[0-9a-z]{1,13}c([0-9]{1,18})(?:s([1-9]))?")


def idempotency_key(campaign: Campaign, contact_id: int, step: int = 0) -> str:
    """Deterministic per (campaign, contact, step), alphanumeric (Zalo tracking_id: <=48 chars,
    no special characters), and unique across database resets thanks to the campaign's creation
    time. Step 0 (the campaign's own channel) is exactly the key of a campaign without a chain."""
    stamp = int(campaign.created_at.timestamp())
    key = f"loa{campaign.pk}t{_b36(stamp)}c{contact_id}"
    return f"{key}s{step}" if step else key


def idempotency_key_parse(key: str) -> tuple[int, int] | None:
    """(campaign id, contact id) from a key made by idempotency_key(), any step, else None."""
    m = _KEY_RE.fullmatch(key or "")
    return (int(m[1]), int(m[2])) if m else None


def idempotency_key_step(key: str) -> int | None:
    """The fallback step a key names (0 for the campaign's own channel), else None."""
    m = _KEY_RE.fullmatch(key or "")
    return int(m[3] or 0) if m else None


def _b36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while n:
        n, r = divmod(n, 36)
        out = digits[r] + out
    return out or "0"
