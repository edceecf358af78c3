"""How often each FAQ entry was asked this week: the help centre's "most asked" and the bubble's suggestions rank
by it, so they follow what shoppers really ask now, not a fixed list or last year's favourites.

Counted where the answers are given: each worker counts the FAQ answers of its own turns (`bot` events with
`data.faq_id`, handed over by `Agent.turn_listeners`) in memory, and adds them to the shared count every FLUSH_S
seconds — one read and one compare-and-set per worker and interval. (Counting from the event bus meant every
worker claiming every answer and the winner rewriting the count: the demo shop served 274–295 messages/s with two
workers on Redis that way, 319–336 this way; `benchmarks/vs_rasa.py`, 2026-12-07.) A worker's answers not yet
added count in its own view at once; a worker that dies loses at most FLUSH_S seconds of them (a ranking, not a
ledger). Kept per UTC day in kv `widget:faq_counts:YYYY-MM-DD`; the last WINDOW_DAYS days are summed, older days
are deleted.
"""

from __future__ import annotations

import asyncio
import calendar
import contextlib
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator

from bot import tasks
from bot.dialogue.events import Event
from bot.stores import Stores

log = logging.getLogger(__name__)
KEY = "widget:faq_counts:"
WINDOW_DAYS = 7
CAS_ATTEMPTS = 8
CACHE_S = 30.0
FLUSH_S = 5.0


class FaqPopularity:
    def __init__(self, stores: Stores) -> None:
        self.stores = stores
        self._cache: tuple[float, dict[str, int]] | None = None
        self._pending: dict[str, Counter[str]] = {}  # day → entry → answers not yet added to the shared count

    def saw(self, conversation_id: str, events: list[Event]) -> None:
        """Count the FAQ answers among a turn's events (an `Agent.turn_listeners` callback)."""
        for event in events:
            faq_id = (event.get("data") or {}).get("faq_id") if event.get("event") == "bot" else None
            if isinstance(faq_id, str):
                day = _day(float(event.get("timestamp") or time.time()))
                self._pending.setdefault(day, Counter())[faq_id] += 1

    @contextlib.asynccontextmanager
    async def counting(self) -> AsyncIterator[None]:
        """Add the answers counted to the shared count every FLUSH_S while the app runs, and once more at the end."""
        task = asyncio.get_running_loop().create_task(self._flush_every(FLUSH_S), name="kefu-faq-counts")
        try:
            yield
        finally:
            await tasks.stop(task)
            await self.flush()

    async def _flush_every(self, seconds: float) -> None:
        while True:
            await asyncio.sleep(seconds)
            await self.flush()

    async def flush(self) -> None:
        """Add what was counted since the last time; what cannot be added now is kept for the next."""
        pending, self._pending = self._pending, {}
        for day, counts in pending.items():
            try:
                added = await self._add(day, counts)
            except Exception:
                log.exception("could not add up the FAQ counts")
                added = False
            if not added:
                self._pending.setdefault(day, Counter()).update(counts)

    async def add(self, faq_id: str, n: int = 1, now: float | None = None) -> None:
        """Add `n` answers from one entry to the shared count of `now`'s day at once."""
        if not await self._add(_day(time.time() if now is None else now), Counter({faq_id: n})):
            log.warning("FAQ count for %s not recorded: too many concurrent updates", faq_id)

    async def _add(self, day: str, counts: Counter[str]) -> bool:
        kv = self.stores.kv
        key = KEY + day
        for _ in range(CAS_ATTEMPTS):
            current = await kv.get(key)
            merged = dict(current or {})
            for faq_id, n in counts.items():
                merged[faq_id] = int(merged.get(faq_id, 0)) + n
            if await kv.cas(key, current, merged):
                self._cache = None
                if current is None:  # a new day: forget the days that left the window
                    await self._forget_before(day)
                return True
        return False

    async def _forget_before(self, day: str) -> None:
        oldest = KEY + _day(calendar.timegm(time.strptime(day, "%Y-%m-%d")) - (WINDOW_DAYS - 1) * 86400)
        for key, _ in await self.stores.kv.scan(KEY):
            if key < oldest:
                await self.stores.kv.delete(key)

    async def counts(self, now: float | None = None) -> dict[str, int]:
        """Answers per entry over the last WINDOW_DAYS days (today included), this worker's not yet added among
        them; `now`: another day's view."""
        clock = time.monotonic()
        day = time.time() if now is None else now
        days = [_day(day - days_ago * 86400) for days_ago in range(WINDOW_DAYS)]
        if now is None and self._cache is not None and clock - self._cache[0] <= CACHE_S:
            stored = self._cache[1]
        else:
            stored = {}
            for name in days:
                for faq_id, n in (await self.stores.kv.get(KEY + name) or {}).items():
                    if isinstance(n, int | float):
                        stored[faq_id] = stored.get(faq_id, 0) + int(n)
            if now is None:
                self._cache = (clock, stored)
        total = dict(stored)
        for name in days:
            for faq_id, n in self._pending.get(name, {}).items():
                total[faq_id] = total.get(faq_id, 0) + n
        return total


def _day(at: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(at))
