"""One room per conversation: every open tab (socket) of a conversation gets its events (S11).

A worker holds one event-bus subscription and routes each event to the sockets of its conversation, instead of
every socket filtering every conversation's events. With Redis every worker sees every event, so tabs of one
shopper on different workers are all served. When the bus says it lost events (Redis pub/sub reconnected,
`Subscription.resumes`), every socket is told to catch up from the store at once.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from bot import tasks
from bot.dialogue import events as ev
from bot.stores import EventBus

log = logging.getLogger(__name__)
POLL_S = 30.0


class Listener(Protocol):
    def deliver(self, event: ev.Event) -> None:
        """Take one event without waiting (queue it); called from the room's loop."""

    def resync(self) -> None:
        """Events may have been lost: catch up from the store (without waiting)."""


class Rooms:
    def __init__(self, bus: EventBus) -> None:
        self.bus = bus
        self._rooms: dict[str, set[Listener]] = {}
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    def join(self, conversation_id: str, listener: Listener) -> None:
        self._rooms.setdefault(conversation_id, set()).add(listener)

    def leave(self, conversation_id: str, listener: Listener) -> None:
        members = self._rooms.get(conversation_id)
        if members is not None:
            members.discard(listener)
            if not members:
                del self._rooms[conversation_id]

    def members(self, conversation_id: str) -> int:
        return len(self._rooms.get(conversation_id, ()))

    async def start(self) -> None:
        """Subscribe, and return once the subscription is live (nothing published afterwards is missed)."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name="kefu-widget-rooms")
        waiter = asyncio.ensure_future(self._ready.wait())
        await asyncio.wait([waiter, self._task], return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()

    async def stop(self) -> None:
        await tasks.stop(self._task)
        self._task = None

    async def _run(self) -> None:
        async with self.bus.subscribe() as subscription:
            self._ready.set()
            resumes = subscription.resumes
            while not subscription.closed:
                item = await subscription.get(POLL_S)  # get(timeout) keeps the subscription (see its docstring)
                if item is not None:
                    for listener in list(self._rooms.get(item[0], ())):
                        listener.deliver(item[1])
                if subscription.resumes != resumes:
                    resumes = subscription.resumes
                    self._resync()

    def _resync(self) -> None:
        listeners = [listener for members in self._rooms.values() for listener in members]
        log.info("event bus resumed: %d open chat sockets catch up from the store", len(listeners))
        for listener in listeners:
            listener.resync()
