"""Small documents several workers change (WeChat's allowance book, Messenger's thread state): read, change,
compare-and-set, again if another worker changed it first."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable
from typing import Any

from bot.stores import KeyValue

Doc = dict[str, Any]


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
