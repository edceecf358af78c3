"""How often each FAQ entry is asked: the help centre puts the most asked on top, suggestions rank by it.

Counted from the events themselves -- every bot answer that came from the FAQ (`bot` with `data.faq_id`), on any
channel -- from this worker's own bus subscription. With several workers every worker sees every event, so
each answer is counted once, by whoever wins `claim_message_id`. Kept in kv `widget:faq_counts`.
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
KEY = "widget:faq_counts"
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

    async def add(self, faq_id: str, n: int = 1) -> None:
        kv = self.stores.kv
        for _ in range(CAS_ATTEMPTS):
            current = await kv.get(KEY)
            counts = dict(current or {})
            counts[faq_id] = int(counts.get(faq_id, 0)) + n
            if await kv.cas(KEY, current, counts):
                self._cache = None
                return
        log.warning("FAQ count for %s not recorded: too many concurrent updates", faq_id)

    async def counts(self) -> dict[str, int]:
        now = time.monotonic()
        if self._cache is None or now - self._cache[0] > CACHE_S:
            doc = await self.stores.kv.get(KEY) or {}
            self._cache = (now, {k: int(v) for k, v in doc.items() if isinstance(v, int | float)})
        return self._cache[1]
