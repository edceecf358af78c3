"""How often each FAQ entry is asked: the help centre puts the most asked on top, suggestions rank by it.

Counted from the events themselves -- every bot answer that came from the FAQ (`bot` with `data.faq_id`), on any
channel -- plus help-centre article views. With several workers every worker sees every event on the bus,
so each answer is counted once by whoever wins `claim_message_id`.
"""

from __future__ import annotations

import asyncio
import logging
import time

from bot.dialogue import events as ev
from bot.stores import KeyValue, TrackerStore

log = logging.getLogger(__name__)
KEY = "widget:faq_counts"
CAS_ATTEMPTS = 8
CACHE_S = 30.0


class FaqPopularity:
    def __init__(self, kv: KeyValue, trackers: TrackerStore) -> None:
        self.kv = kv
        self.trackers = trackers
        self._cache: tuple[float, dict[str, int]] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def observe(self, conversation_id: str, event: ev.Event) -> None:
        """Rooms observer: count FAQ answers as they are stored (runs in the background)."""
        data = event.get("data") or {}
        faq_id = data.get("faq_id") if event.get("event") == "bot" else None
        if not isinstance(faq_id, str) or event.get("seq") is None:
            return
        task = asyncio.get_running_loop().create_task(self._count_once(conversation_id, event["seq"], faq_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _count_once(self, conversation_id: str, seq: int, faq_id: str) -> None:
        try:
            if await self.trackers.claim_message_id(f"faqcount:{conversation_id}:{seq}", ttl_s=3600):
                await self.add(faq_id)
        except Exception:
            log.exception("could not count an FAQ answer")

    async def add(self, faq_id: str, n: int = 1) -> None:
        for _ in range(CAS_ATTEMPTS):
            current = await self.kv.get(KEY)
            counts = dict(current or {})
            counts[faq_id] = int(counts.get(faq_id, 0)) + n
            if await self.kv.cas(KEY, current, counts):
                self._cache = None
                return
        log.warning("FAQ count for %s not recorded: too many concurrent updates", faq_id)

    async def counts(self) -> dict[str, int]:
        now = time.monotonic()
        if self._cache is None or now - self._cache[0] > CACHE_S:
            doc = await self.kv.get(KEY) or {}
            self._cache = (now, {k: int(v) for k, v in doc.items() if isinstance(v, int | float)})
        return self._cache[1]

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
