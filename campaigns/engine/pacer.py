"""RatePacer: paces one driver's sends at a campaign's rate (messages per second)."""

from __future__ import annotations

import threading
import time
from collections import deque


class Clock:
    """Wall time and sleeping; a test passes its own (RatePacer(clock=...), or sets CLOCK)."""

    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


CLOCK = Clock()


class RatePacer:
    """Paces one driver's send starts at `rate`: the k-th send is due at t0 + k/rate. Sends that
    fell behind that schedule (batch writes between rounds, a driver restart) catch up at up to
    1.25 x rate, and no 10-second window ever holds more than 10 x rate sends (the promise).

    The window is counted on the times sends were actually released, not the times they were
    due: a thread that woke up late from its sleep (a busy machine) would otherwise narrow the
    window between it and the send a window later, and let one send too many into it. So a
    send's slot is computed, slept to and recorded under one lock, in release order.

    Thread-safe: the send pool's threads share it. `recent` are the wall-clock times of this
    campaign's sends in the last window, so a restarted driver continues the same schedule."""

    WINDOW = 10.0
    CATCH_UP = 1.25
    # A thread may start its HTTP call a little after its release, never before.
    MARGIN = 0.05

    def __init__(self, rate: float | None, recent: list[float] | tuple = (), clock=None):
        self.clock = clock or CLOCK
        self.rate = rate if rate and rate > 0 else 0.0
        self.cap = max(1, int(self.rate * self.WINDOW))
        self.gap = 1.0 / (self.rate * self.CATCH_UP) if self.rate else 0.0
        self.sent: deque[float] = deque(sorted(recent)[-self.cap :], maxlen=self.cap)
        now = self.clock.now()
        # as if the recent sends had been on schedule, ending now
        self.t0 = now - len(self.sent) / self.rate if self.rate else now
        self.count = len(self.sent)
        self.next_at = now
        self._lock = threading.Lock()

    def wait(self) -> None:
        """Return when the next send may start."""
        if not self.rate:
            return
        with self._lock:
            now = self.clock.now()
            slot = max(now, self.next_at, self.t0 + self.count / self.rate)
            if len(self.sent) >= self.cap:
                # the cap-th most recent release must be a full window older than this one
                slot = max(slot, self.sent[0] + self.WINDOW + self.MARGIN)
            if slot > now:
                self.clock.sleep(slot - now)
                now = self.clock.now()
            released = max(now, slot)
            self.sent.append(released)
            self.count += 1
            self.next_at = released + self.gap
