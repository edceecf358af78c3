"""Shopper messages acknowledged to the platform but not yet answered, kept in the key/value store.

Meta never resends an event we answered 200, and WeChat never resends a push we answered `success`; so a
message is kept (`<channel>:inbox:<id>`) from the acknowledgement until its answer is sent, and any worker's
sweep (`PushChannel.recover`) finishes what a stopped worker left: entries older than `RECOVER_AFTER_S`. At
least once: a worker that stopped between sending and `done` gets its message answered twice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot.stores import KeyValue

RECOVER_AFTER_S = 60.0  # an inbox entry this old was left by a worker that stopped (turns take seconds)


class Inbox:
    def __init__(self, prefix: str, clock: Callable[[], float]) -> None:
        self.prefix = prefix
        self.clock = clock
        self.kv: KeyValue | None = None  # the app's, once it runs

    async def keep(self, key: str, item: dict[str, Any]) -> None:
        assert self.kv
        await self.kv.set(self.prefix + key, {"item": item, "at": self.clock()})

    async def done(self, key: str) -> None:
        assert self.kv
        await self.kv.delete(self.prefix + key)

    async def left_behind(self) -> list[tuple[str, dict[str, Any]]]:
        """(key, item) of the entries a stopped worker left, re-stamped so the next sweep does not take them too."""
        assert self.kv
        found = []
        for full_key, entry in await self.kv.scan(self.prefix):
            if self.clock() - float(entry.get("at") or 0) >= RECOVER_AFTER_S:
                await self.kv.set(full_key, {**entry, "at": self.clock()})
                found.append((full_key.removeprefix(self.prefix), entry["item"]))
        return found
