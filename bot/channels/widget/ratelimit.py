"""Token buckets: a burst, then a steady rate. Keyed ones forget the least recently used keys.

Limits are per worker (in memory): they stop a runaway tab or script from flooding the bot, they are not a
billing quota, so they need no shared store.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable


class TokenBucket:
    def __init__(self, per_second: float, burst: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_second = per_second
        self.burst = burst
        self.clock = clock
        self.tokens = burst
        self.updated = clock()

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.per_second)
        self.updated = now

    def take(self, cost: float = 1.0) -> bool:
        """Spend `cost` if there is enough, else spend nothing and say no."""
        self._refill()
        if self.tokens >= cost:
            self.tokens -= cost
            return True
        return False

    def retry_after(self, cost: float = 1.0) -> float:
        """Seconds until `cost` would be allowed."""
        self._refill()
        return max(0.0, (cost - self.tokens) / self.per_second)


class KeyedLimiter:
    """One bucket per key (a conversation, an IP address), at most `max_keys` of them."""

    def __init__(self, per_second: float, burst: float, max_keys: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.per_second = per_second
        self.burst = burst
        self.max_keys = max_keys
        self.clock = clock
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def bucket(self, key: str) -> TokenBucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self.per_second, self.burst, self.clock)
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        return bucket

    def take(self, key: str, cost: float = 1.0) -> bool:
        return self.bucket(key).take(cost)

    def retry_after(self, key: str, cost: float = 1.0) -> float:
        return self.bucket(key).retry_after(cost)
