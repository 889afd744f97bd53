"""Rate limits: an in-memory token bucket per key (a client id, or the address of a caller
without a valid token), per process."""

from __future__ import annotations

import math
import threading
import time

# Keys remembered at most: past it, buckets that have refilled (idle keys) are forgotten, so
# callers from many addresses cannot grow the table without bound.
MAX_KEYS = 10_000


class RateLimiter:
    def __init__(self, per_minute: int, burst: int) -> None:
        self._rate = per_minute / 60.0
        self._burst = float(burst)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def _forget_idle(self, now: float) -> None:
        self._buckets = {
            key: (tokens, last)
            for key, (tokens, last) in self._buckets.items()
            if tokens + (now - last) * self._rate < self._burst
        }

    def take(self, key: str) -> int:
        """Spend one request for ``key``; return 0 if allowed, else seconds to wait."""
        now = time.monotonic()
        with self._lock:
            if len(self._buckets) >= MAX_KEYS and key not in self._buckets:
                self._forget_idle(now)
            tokens, last = self._buckets.get(key, (self._burst, now))
            tokens = min(self._burst, tokens + (now - last) * self._rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return 0
            self._buckets[key] = (tokens, now)
            return max(1, math.ceil((1.0 - tokens) / self._rate))
