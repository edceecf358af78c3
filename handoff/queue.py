"""The handoff queue. The simple default: one first-in first-out line, position and estimated wait."""

from __future__ import annotations

import time

from bot.dialogue import events as ev
from bot.dialogue.tracker import Tracker

QUEUE = "handoff:queue"
DEFAULT_HANDLING_S = 180


class SimpleQueue:
    """Puts the conversation in line and tells the shopper where they stand."""

    def __init__(self, kv) -> None:
        self.kv = kv

    async def request(self, tracker: Tracker, event: ev.Event) -> list[ev.Event]:
        await self.kv.zadd(QUEUE, tracker.sender_id, time.time())
        line = [member for member, _ in await self.kv.zrange(QUEUE)]
        position = line.index(tracker.sender_id) + 1
        return [{"event": ev.QUEUED, "timestamp": time.time(), "position": position,
                 "eta_s": position * DEFAULT_HANDLING_S}]
