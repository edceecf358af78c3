"""How each FAQ entry did lately, from the conversations themselves (the tracker store, as handoff/stats.py):

- answered: the bot's answers from the entry (`bot` events with `data.faq_id`) in the last 7 and 30 days;
- then a person: those answers after which the shopper still asked for a person (a handoff request later in the
  conversation, before the bot's next FAQ answer) — an answer that did not help.

Counted over at most MAX_CONVERSATIONS recent conversations and kept for CACHE_S per worker: the page is read
often, the figures move slowly.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from bot.dialogue import events as ev
from bot.stores import TrackerStore

MAX_CONVERSATIONS = 5000
CACHE_S = 30.0
PERIODS = (7, 30)


def _add(conversation: list[ev.Event], counts: dict[str, Counter[str]], since: dict[int, float]) -> None:
    open_answer: tuple[str, float] | None = None  # the latest FAQ answer not yet followed by another
    for event in conversation:
        kind = event.get("event")
        if kind == "bot" and isinstance(faq_id := (event.get("data") or {}).get("faq_id"), str):
            at = float(event.get("timestamp") or 0)
            open_answer = (faq_id, at)
            for days in PERIODS:
                if at >= since[days]:
                    counts[f"answered_{days}d"][faq_id] += 1
        elif kind == ev.HANDOFF_REQUESTED and open_answer is not None:
            faq_id, at = open_answer
            for days in PERIODS:
                if at >= since[days]:
                    counts[f"then_person_{days}d"][faq_id] += 1
            open_answer = None


async def compute(trackers: TrackerStore, now: float | None = None) -> dict[str, dict[str, int]]:
    """{entry id: {"answered_7d", "answered_30d", "then_person_7d", "then_person_30d"}} (entries never
    answered are absent)."""
    now = time.time() if now is None else now
    since = {days: now - days * 86400 for days in PERIODS}
    counts: dict[str, Counter[str]] = {f"{k}_{d}d": Counter() for k in ("answered", "then_person") for d in PERIODS}
    offset, page = 0, 200
    while offset < MAX_CONVERSATIONS:
        rows = await trackers.conversations(limit=page, offset=offset)
        recent = [r for r in rows if float(r["updated_at"]) >= since[max(PERIODS)]]
        for row in recent:
            _add(await trackers.events(row["conversation_id"]), counts, since)
        if len(rows) < page or len(recent) < len(rows):
            break
        offset += page
    ids = {i for counter in counts.values() for i in counter}
    return {i: {name: counter[i] for name, counter in counts.items()} for i in ids}


class Usage:
    """`compute`, remembered for CACHE_S."""

    def __init__(self, trackers: TrackerStore) -> None:
        self.trackers = trackers
        self._cache: tuple[float, dict[str, dict[str, int]]] | None = None

    async def figures(self) -> dict[str, dict[str, int]]:
        now = time.monotonic()
        if self._cache is None or now - self._cache[0] > CACHE_S:
            self._cache = (now, await compute(self.trackers))
        return self._cache[1]

    def forget(self) -> None:
        self._cache = None


def empty() -> dict[str, Any]:
    return {f"{k}_{d}d": 0 for k in ("answered", "then_person") for d in PERIODS}
