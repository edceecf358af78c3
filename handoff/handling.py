"""Recent handling times (assigned → closed), the basis of the wait a shopper is told (`handoff-stats:handling`)."""

from __future__ import annotations

import time

from bot.stores import KeyValue

HANDLING = "handoff-stats:handling"
CAS_RETRIES = 50


class HandlingTimes:
    def __init__(self, kv: KeyValue, keep: int, default_s: float) -> None:
        self.kv = kv
        self.keep = keep
        self.default_s = default_s

    async def average(self) -> float:
        """The mean of the last `keep` handling times; `default_s` before any conversation was closed."""
        recent = list((await self.kv.get(HANDLING) or {}).get("recent", []))
        return sum(recent) / len(recent) if recent else self.default_s

    async def add(self, seconds: float) -> None:
        for _ in range(CAS_RETRIES):
            current = await self.kv.get(HANDLING)
            recent = [*(current or {}).get("recent", []), round(seconds, 3)][-self.keep:]
            if await self.kv.cas(HANDLING, current, {"recent": recent, "updated_at": time.time()}):
                return
