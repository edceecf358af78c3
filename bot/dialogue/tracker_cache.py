"""Recently active conversations' trackers kept in memory, so a turn reads only the events it has not seen.

Without it every turn read and replayed the whole conversation: a turn at the 6,000th event cost ten times one
at the 100th, and the replay held the event loop. The tracker store stays the single source of truth: on every
use the cache asks the store for the events after the last one it holds -- starting *with* that last one, which
must come back unchanged -- so what another worker appended (Redis, several workers) is applied, and a
conversation that was deleted or rewritten is read again from the start.

Bounded: at most `max_events` events in all (least recently used conversations go first; a conversation larger
than the bound is not kept at all), and a conversation idle for `idle_s` is dropped. Callers hold the
conversation's lock around `load` ... `stored`, as the message path does.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from bot.dialogue import events as ev
from bot.dialogue.tracker import Tracker
from bot.formats.domain import Domain
from bot.stores import TrackerStore

# About 50 MB a worker: an event of the demo shop takes 2.5 KB as Python objects (a shopper's message 8.5 KB, its
# parse holding the intent ranking and the FAQ hits with their answers; 2026-12-07, 4,480 events of the benchmark's
# conversations). 20,000 events are ~4,000 turns of the conversations active lately; an older one is read again.
MAX_EVENTS = 20_000
OFF_LOOP_EVENTS = 500  # a longer conversation read whole is replayed on a worker thread
IDLE_S = 15 * 60.0


@dataclass
class _Entry:
    tracker: Tracker
    message_ids: dict[str, int] = field(default_factory=dict)  # user message id -> position in tracker.events
    used: float = 0.0

    def add(self, events: list[ev.Event]) -> None:
        for event in events:
            if event.get("event") == "user" and event.get("message_id"):
                self.message_ids.setdefault(event["message_id"], len(self.tracker.events))
            self.tracker.apply(event)


@dataclass
class Loaded:
    """A conversation as a turn needs it: a tracker of its own to change, and where a message id was seen."""

    tracker: Tracker
    message_ids: dict[str, int]

    @property
    def events(self) -> list[ev.Event]:
        return self.tracker.events


class TrackerCache:
    def __init__(self, store: TrackerStore, domain: Domain, max_events: int = MAX_EVENTS, idle_s: float = IDLE_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.domain = domain
        self.max_events = max_events
        self.idle_s = idle_s
        self._clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()  # least recently used first
        self._events = 0
        self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def cached_events(self) -> int:
        return self._events

    async def load(self, conversation_id: str) -> Loaded:
        """The conversation as stored now (an empty tracker for a new one), as a copy the caller may change."""
        self._drop_idle()
        entry = self._entries.get(conversation_id)
        if entry is not None and not await self._catch_up(conversation_id, entry):
            self.forget(conversation_id)
            entry = None
        if entry is None:
            self.misses += 1
            entry = await self._read(conversation_id)
            self._keep(conversation_id, entry)
        else:
            self.hits += 1
        entry.used = self._clock()
        return Loaded(entry.tracker.copy(), entry.message_ids)

    async def _read(self, conversation_id: str) -> _Entry:
        """The whole conversation from the store; a long one is replayed on a worker thread, off the event loop."""
        events = await self.store.events(conversation_id)
        entry = _Entry(Tracker.from_events(conversation_id, [], self.domain))
        if len(events) > OFF_LOOP_EVENTS:
            await asyncio.to_thread(entry.add, events)
        else:
            entry.add(events)
        return entry

    def stored(self, conversation_id: str, events: list[ev.Event]) -> None:
        """The caller appended `events` (as the store returned them, with seq) after what `load` gave it."""
        entry = self._entries.get(conversation_id)
        if not events:
            return
        if entry is None:
            if int(events[0].get("seq", 0)) == 1:  # a new conversation: nothing to read back next time
                entry = _Entry(Tracker.from_events(conversation_id, [], self.domain), used=self._clock())
                entry.add(events)
                self._keep(conversation_id, entry)
            return
        if int(events[0].get("seq", 0)) != entry.tracker.last_seq + 1:
            self.forget(conversation_id)  # someone else wrote in between: read again next time
            return
        entry.add(events)
        self._events += len(events)
        self._entries.move_to_end(conversation_id)
        self._shrink()

    def forget(self, conversation_id: str) -> None:
        """Drop a conversation (its data was erased, or it changed in a way the cache cannot follow)."""
        entry = self._entries.pop(conversation_id, None)
        if entry is not None:
            self._events -= len(entry.tracker.events)

    async def _catch_up(self, conversation_id: str, entry: _Entry) -> bool:
        """Apply what the store has after the cached events; False when the store no longer continues them."""
        last = entry.tracker.events[-1] if entry.tracker.events else None
        if last is None:
            return False
        tail = await self.store.events(conversation_id, after_seq=int(last["seq"]) - 1)
        if self._entries.get(conversation_id) is not entry:
            return False  # evicted while the store answered (other conversations' turns went on meanwhile)
        if not tail or tail[0] != last or len(tail) > OFF_LOOP_EVENTS:
            return False  # changed, or much was written elsewhere: read whole, off the event loop
        if len(tail) > 1:
            entry.add(tail[1:])
            self._events += len(tail) - 1
        self._entries.move_to_end(conversation_id)
        self._shrink()
        return self._entries.get(conversation_id) is entry

    def _keep(self, conversation_id: str, entry: _Entry) -> None:
        if not entry.tracker.events or len(entry.tracker.events) > self.max_events:
            return
        self._entries[conversation_id] = entry
        self._events += len(entry.tracker.events)
        self._shrink()

    def _shrink(self) -> None:
        """Least recently used out first (the conversation just used is last, so it goes only if it alone is
        over the bound)."""
        while self._events > self.max_events and self._entries:
            self.forget(next(iter(self._entries)))

    def _drop_idle(self) -> None:
        cutoff = self._clock() - self.idle_s
        while self._entries:
            oldest = next(iter(self._entries.values()))
            if oldest.used >= cutoff:
                return
            self.forget(next(iter(self._entries)))
