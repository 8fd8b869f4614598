"""Per-account rate limits shared by every worker: a GCRA token bucket.

Why shared: django-q2 runs several worker processes, each driver sends from a thread pool, and
several campaigns may use one provider account at once. A limit kept in one process's memory
would let N processes send N times the rate. So the bucket's single number (the "theoretical
arrival time" of the next allowed request, GCRA) lives where all of them see it:

- Redis, when REDIS_URL is set (one atomic Lua script, Redis's own clock: shared across machines);
- otherwise a small file per bucket under /tmp, updated under an exclusive `fcntl.flock`
  (shared by every process of this machine), plus a thread lock (flock does not exclude threads
  that share one open file).

Each caller reserves the next slot under the lock and sleeps outside it, so the lock is held for
microseconds and callers are served in order. With the default burst of 1 the rate over any
window never exceeds the limit (listmonk's sliding window let limit+1 through: knadh/listmonk#2622).
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import struct
import tempfile
import threading
import time
from typing import Protocol

logger = logging.getLogger("loa.providers")

# A stored arrival time further ahead than this is stale (clock jump, reboot): start afresh.
_STALE_HORIZON = 3600.0


class Limiter(Protocol):
    def reserve(self, key: str, rate: float, burst: int = 1) -> float:
        """Reserve one request slot; return how long the caller must wait before using it."""


def _reserve(tat: float | None, now: float, rate: float, burst: int) -> tuple[float, float]:
    """GCRA: (seconds to wait, new arrival time)."""
    interval = 1.0 / rate
    tolerance = interval * max(0, burst - 1)
    if tat is None or tat > now + _STALE_HORIZON:
        tat = now
    tat = max(tat, now)
    allowed_at = max(now, tat - tolerance)
    return allowed_at - now, tat + interval


class FileLimiter:
    """Buckets shared by the processes of one machine (fcntl.flock on one file per bucket)."""

    _FMT = struct.Struct("<d")

    def __init__(self, directory: str | None = None):
        self.directory = directory or os.path.join(
            tempfile.gettempdir(), f"loa-ratelimit-{os.getuid()}"
        )
        self._fds: dict[tuple[int, str], int] = {}
        self._locks: dict[tuple[int, str], threading.Lock] = {}
        self._guard = threading.Lock()

    def _fd_and_lock(self, key: str) -> tuple[int, threading.Lock]:
        # Per process: a forked child opens its own descriptor (flock belongs to the open file)
        # and gets fresh thread locks (one copied while held would never be released).
        pid = os.getpid()
        with self._guard:
            lock = self._locks.setdefault((pid, key), threading.Lock())
            fd = self._fds.get((pid, key))
            if fd is None:
                os.makedirs(self.directory, mode=0o700, exist_ok=True)
                name = re.sub(r"[^A-Za-z0-9_.-]", "_", key)[:150]
                fd = os.open(os.path.join(self.directory, name), os.O_RDWR | os.O_CREAT, 0o600)
                self._fds[(pid, key)] = fd
        return fd, lock

    def reserve(self, key: str, rate: float, burst: int = 1) -> float:
        fd, lock = self._fd_and_lock(key)
        with lock:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                raw = os.pread(fd, self._FMT.size, 0)
                tat = self._FMT.unpack(raw)[0] if len(raw) == self._FMT.size else None
                # Wall clock, not monotonic: the file outlives processes (and reboots).
                wait, new_tat = _reserve(tat, time.time(), rate, burst)
                os.pwrite(fd, self._FMT.pack(new_tat), 0)
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        return wait


_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat > now + 3600 then tat = now end
if tat < now then tat = now end
local allowed = tat - tolerance
if allowed < now then allowed = now end
local new_tat = tat + interval
redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.ceil((new_tat - now) * 1000) + 1000)
return tostring(allowed - now)
"""


class RedisLimiter:
    """Buckets shared by every machine using one Redis (the server's clock decides)."""

    def __init__(self, url: str, prefix: str = "loa:rl:"):
        import redis

        self.client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self.prefix = prefix
        self._script = self.client.register_script(_LUA)

    def reserve(self, key: str, rate: float, burst: int = 1) -> float:
        interval = 1.0 / rate
        return float(
            self._script(keys=[self.prefix + key], args=[interval, interval * max(0, burst - 1)])
        )


class _Fallback:
    """Redis first; if it is unreachable, the machine-local file buckets (and say so once)."""

    def __init__(self, primary: RedisLimiter, fallback: FileLimiter):
        self.primary = primary
        self.fallback = fallback
        self._warned = False

    def reserve(self, key: str, rate: float, burst: int = 1) -> float:
        try:
            return self.primary.reserve(key, rate, burst)
        except Exception as exc:  # redis down must not stop sending; the local limit still holds
            if not self._warned:
                logger.warning("rate limiter: Redis unavailable (%s); using local buckets", exc)
                self._warned = True
            return self.fallback.reserve(key, rate, burst)


_limiter: Limiter | None = None
_limiter_lock = threading.Lock()


def get_limiter() -> Limiter:
    global _limiter
    if _limiter is None:
        with _limiter_lock:
            if _limiter is None:
                from django.conf import settings

                directory = settings.LOA.get("RATE_LIMIT_DIR") or None
                local = FileLimiter(directory)
                url = getattr(settings, "REDIS_URL", "")
                _limiter = _Fallback(RedisLimiter(url), local) if url else local
    return _limiter


def set_limiter(limiter: Limiter | None) -> None:
    """For tests: install a specific limiter (None = choose again from settings)."""
    global _limiter
    _limiter = limiter


def acquire(key: str, rate: float | None, burst: int = 1) -> float:
    """Block until one request under `key` is allowed at `rate` per second; return the wait."""
    if not rate or rate <= 0:
        return 0.0
    wait = get_limiter().reserve(key, float(rate), burst)
    if wait > 0:
        time.sleep(wait)
    return wait
