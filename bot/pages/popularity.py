"""How often each FAQ entry was asked this week: the help centre's "most asked" and the bubble's suggestions rank
by it, so they follow what shoppers really ask now, not a fixed list or last year's favourites.

Counted from the events themselves -- every bot answer that came from the FAQ (`bot` with `data.faq_id`), on any
channel -- from this worker's own bus subscription. With several workers every worker sees every event, so
each answer is counted once, by whoever wins `claim_message_id`. Kept per UTC day in kv
`widget:faq_counts:YYYY-MM-DD`; the last WINDOW_DAYS days are summed, older days are deleted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

from bot import tasks
from bot.stores import Stores, Subscription

log = logging.getLogger(__name__)
KEY = "widget:faq_counts:"
WINDOW_DAYS = 7
CAS_ATTEMPTS = 8
CACHE_S = 30.0
POLL_S = 30.0


class FaqPopularity:
    def __init__(self, stores: Stores) -> None:
        self.stores = stores
        self._cache: tuple[float, dict[str, int]] | None = None

    @contextlib.asynccontextmanager
    async def counting(self) -> AsyncIterator[None]:
        """Count FAQ answers from the bus while the app runs (subscribed before this returns)."""
        async with self.stores.bus.subscribe() as subscription:
            task = asyncio.get_running_loop().create_task(self._count(subscription), name="kefu-faq-counts")
            try:
                yield
            finally:
                await subscription.aclose()  # ends the loop even if the cancellation is lost in a store call
                await tasks.stop(task)

    async def _count(self, subscription: Subscription) -> None:
        while not subscription.closed:
            item = await subscription.get(POLL_S)
            if item is None:
                continue
            conversation_id, event = item
            faq_id = (event.get("data") or {}).get("faq_id") if event.get("event") == "bot" else None
            if isinstance(faq_id, str) and event.get("seq") is not None:
                await self._count_once(conversation_id, event["seq"], faq_id)

    async def _count_once(self, conversation_id: str, seq: int, faq_id: str) -> None:
        try:
            if await self.stores.trackers.claim_message_id(f"faqcount:{conversation_id}:{seq}", ttl_s=3600):
                await self.add(faq_id)
        except Exception:
            log.exception("could not count an FAQ answer")

    async def add(self, faq_id: str, n: int = 1, now: float | None = None) -> None:
        kv = self.stores.kv
        now = time.time() if now is None else now
        key = KEY + _day(now)
        for _ in range(CAS_ATTEMPTS):
            current = await kv.get(key)
            counts = dict(current or {})
            counts[faq_id] = int(counts.get(faq_id, 0)) + n
            if await kv.cas(key, current, counts):
                self._cache = None
                if current is None:  # a new day: forget the days that left the window
                    await self._forget_before(now)
                return
        log.warning("FAQ count for %s not recorded: too many concurrent updates", faq_id)

    async def _forget_before(self, now: float) -> None:
        oldest = KEY + _day(now - (WINDOW_DAYS - 1) * 86400)
        for key, _ in await self.stores.kv.scan(KEY):
            if key < oldest:
                await self.stores.kv.delete(key)

    async def counts(self, now: float | None = None) -> dict[str, int]:
        """Answers per entry over the last WINDOW_DAYS days (today included); `now`: another day's view."""
        clock = time.monotonic()
        if now is None and self._cache is not None and clock - self._cache[0] <= CACHE_S:
            return self._cache[1]
        day = time.time() if now is None else now
        total: dict[str, int] = {}
        for days_ago in range(WINDOW_DAYS):
            doc = await self.stores.kv.get(KEY + _day(day - days_ago * 86400)) or {}
            for faq_id, n in doc.items():
                if isinstance(n, int | float):
                    total[faq_id] = total.get(faq_id, 0) + int(n)
        if now is None:
            self._cache = (clock, total)
        return total


def _day(at: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(at))
