"""Small documents several workers change (WeChat's allowance book, Messenger's thread state): read, change,
compare-and-set, again if another worker changed it first; one per shopper, shown to the console."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable
from typing import Any, ClassVar, Generic, TypeVar

from bot.stores import KeyValue, TrackerStore

Doc = dict[str, Any]
S = TypeVar("S")


async def update_document(kv: KeyValue, key: str, change: Callable[[Doc | None], Doc | None],
                          attempts: int = 50) -> Doc | None:
    """Apply `change` to the stored document atomically; returns what is stored afterwards."""
    for _ in range(attempts):
        current = await kv.get(key)
        new = change(copy.deepcopy(current))
        if new == current or await kv.cas(key, current, new):
            return new
        await asyncio.sleep(0)
    raise RuntimeError(f"could not update {key!r}: too much contention")


class ShopperBook(Generic[S]):
    """One document per shopper of a push channel, kv `<channel>:<kind>:<user id>`, mirrored into the
    conversation's meta under the channel's name so the console shows it (`view`)."""

    channel: ClassVar[str]
    kind: ClassVar[str]

    def __init__(self, kv: KeyValue, trackers: TrackerStore, settings: S, clock: Callable[[], float]) -> None:
        self.kv = kv
        self.trackers = trackers
        self.settings = settings
        self.clock = clock

    def key(self, user: str) -> str:
        return f"{self.channel}:{self.kind}:{user}"

    async def get(self, user: str) -> Doc:
        return await self.kv.get(self.key(user)) or {}

    async def update(self, user: str, change: Callable[[Doc | None], Doc | None]) -> Doc:
        """Change the shopper's document (None: there is none yet) and show the console the result."""
        doc = await update_document(self.kv, self.key(user), change) or {}
        await self.trackers.set_meta(f"{self.channel}:{user}", **{self.channel: self.view(doc)})
        return doc

    def view(self, doc: Doc) -> Doc:
        """What the console shows of a document."""
        raise NotImplementedError
