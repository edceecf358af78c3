"""Shopper messages acknowledged to the platform but not yet answered, kept in the key/value store.

Meta never resends an event we answered 200, and WeChat never resends a push we answered `success`; so a
message is kept (`<channel>:inbox:<conversation id>/<message id>`) from the acknowledgement until its answer is
sent, and any worker's sweep (`PushChannel.recover`) finishes what a stopped worker left: conversations with an
entry older than `RECOVER_AFTER_S`.

One owner per conversation: whoever works through a conversation's entries holds `owning(conversation)`, a store
lock (on Redis it expires with a worker that dies), and takes them in the order they were acknowledged. So two
workers sweeping at once never answer one message twice, and a conversation's messages are stored in the order
the shopper sent them. At least once: a worker that stopped between sending and `done` gets its message answered
twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from bot.stores import Stores
from bot.stores.errors import UNAVAILABLE

RECOVER_AFTER_S = 60.0  # an inbox entry this old was left by a worker that stopped (turns take seconds)
OWN_WAIT_S = 30.0  # a worker waits this long for another to finish a conversation's entries
DONE_WAIT_S = 30.0  # clearing an answered entry rides out a store outage this long (a Redis restart)


class Inbox:
    def __init__(self, prefix: str, clock: Callable[[], float]) -> None:
        self.prefix = prefix
        self.clock = clock
        self.stores: Stores | None = None  # the app's, once it runs
        self._order = itertools.count()  # ties of `at` within this worker keep their order

    def _key(self, conversation_id: str, key: str) -> str:
        return f"{self.prefix}{conversation_id}/{key}"

    async def keep(self, conversation_id: str, key: str, item: dict[str, Any]) -> bool:
        """Keep a message unless it is kept already (a redelivery of one still unanswered): True if kept now."""
        assert self.stores
        entry = {"conversation": conversation_id, "item": item, "at": self.clock(), "n": next(self._order)}
        return await self.stores.kv.cas(self._key(conversation_id, key), None, entry)

    async def holds(self, conversation_id: str, key: str) -> bool:
        assert self.stores
        return await self.stores.kv.get(self._key(conversation_id, key)) is not None

    async def done(self, conversation_id: str, key: str) -> None:
        """Clear an answered entry. Its answer has gone, and an entry left would be answered again by a sweep, so
        a short store outage (Redis restarting or loading its data) is waited out rather than given up."""
        assert self.stores
        deadline, delay = time.monotonic() + DONE_WAIT_S, 0.05
        while True:
            try:
                await self.stores.kv.delete(self._key(conversation_id, key))
                return
            except UNAVAILABLE:
                if time.monotonic() + delay > deadline:
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def pending(self, conversation_id: str) -> list[tuple[str, dict[str, Any]]]:
        """(message id, item) of the conversation's entries, in the order they were acknowledged."""
        assert self.stores
        start = self._key(conversation_id, "")
        entries = [(full.removeprefix(start), entry) for full, entry in await self.stores.kv.scan(start)
                   if entry.get("conversation") == conversation_id]
        entries.sort(key=lambda pair: (float(pair[1].get("at") or 0), int(pair[1].get("n") or 0)))
        return [(key, entry["item"]) for key, entry in entries]

    async def left_behind(self) -> list[str]:
        """Conversations with an entry a stopped worker left (older than RECOVER_AFTER_S), oldest first."""
        assert self.stores
        oldest: dict[str, float] = {}
        for _, entry in await self.stores.kv.scan(self.prefix):
            at, conversation = float(entry.get("at") or 0), entry.get("conversation")
            if isinstance(conversation, str) and self.clock() - at >= RECOVER_AFTER_S:
                oldest[conversation] = min(at, oldest.get(conversation, at))
        return sorted(oldest, key=oldest.__getitem__)

    @contextlib.asynccontextmanager
    async def owning(self, conversation_id: str, timeout_s: float = OWN_WAIT_S) -> AsyncIterator[None]:
        """Be the one worker working through the conversation's entries; raises LockTimeout after timeout_s."""
        assert self.stores
        async with self.stores.trackers.lock(f"{self.prefix}{conversation_id}", timeout_s):
            yield
