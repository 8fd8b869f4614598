"""RatePacer: paces one driver's sends at a campaign's rate (messages per second)."""

from __future__ import annotations

import threading
import time
from collections import deque


class RatePacer:
    """Paces one driver's send starts at `rate`: the k-th send is due at t0 + k/rate. Sends that
    fell behind that schedule (batch writes between rounds, a driver restart) catch up at up to
    1.25 x rate, and no 10-second window ever holds more than 10 x rate sends (the promise).
    Thread-safe: the send pool's threads share it. `recent` are the wall-clock times of this
    campaign's sends in the last window, so a restarted driver continues the same schedule."""

    WINDOW = 10.0
    CATCH_UP = 1.25

    def __init__(self, rate: float | None, recent: list[float] | tuple = ()):
        self.rate = rate if rate and rate > 0 else 0.0
        self.cap = max(1, int(self.rate * self.WINDOW))
        self.gap = 1.0 / (self.rate * self.CATCH_UP) if self.rate else 0.0
        self.sent: deque[float] = deque(sorted(recent)[-self.cap :], maxlen=self.cap)
        now = time.time()
        # as if the recent sends had been on schedule, ending now
        self.t0 = now - len(self.sent) / self.rate if self.rate else now
        self.count = len(self.sent)
        self.next_at = now
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self.rate:
            return
        with self._lock:
            now = time.time()
            slot = max(now, self.next_at, self.t0 + self.count / self.rate)
            if len(self.sent) >= self.cap:
                # the cap-th most recent send must be a full window older than this one (plus
                # a margin: a thread may start a little after its slot, never before)
                slot = max(slot, self.sent[0] + self.WINDOW + 0.05)
            self.sent.append(slot)
            self.count += 1
            self.next_at = slot + self.gap
        if slot > now:
            time.sleep(slot - now)
