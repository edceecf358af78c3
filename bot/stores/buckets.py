"""Token buckets in memory: a burst, then a steady rate (bot/ratelimit.py says what they limit).

The SQLite store keeps its named buckets here (one worker); the Redis store runs the same arithmetic in Lua, so
workers share them. A socket's own limits (frames per second) are plain `TokenBucket`s.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable


class TokenBucket:
    """One bucket in memory (one socket's frames; the SQLite store's buckets)."""

    def __init__(self, per_second: float, burst: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_second = per_second
        self.burst = burst
        self.clock = clock
        self.tokens = burst
        self.updated = clock()

    def take(self) -> float:
        """Take a token: 0.0; or, when there is none, take nothing and say how many seconds until there is."""
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.per_second)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.per_second


class LocalBuckets:
    """Named buckets in one process, at most `max_buckets` (the least recently used are forgotten: full again)."""

    def __init__(self, max_buckets: int = 100_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_buckets = max_buckets
        self.clock = clock
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def take(self, name: str, per_second: float, burst: float) -> float:
        bucket = self._buckets.get(name)
        if bucket is None or bucket.per_second != per_second or bucket.burst != burst:
            bucket = self._buckets[name] = TokenBucket(per_second, burst, self.clock)
            while len(self._buckets) > self.max_buckets:
                self._buckets.popitem(last=False)
        self._buckets.move_to_end(name)
        return bucket.take()

    def drop(self, name: str) -> bool:
        return self._buckets.pop(name, None) is not None
