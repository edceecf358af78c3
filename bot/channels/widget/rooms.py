"""One room per conversation: every open tab (socket) of a conversation gets its events (S11).

A worker holds one event-bus subscription and routes each event to the sockets of its conversation, instead of
every socket filtering every conversation's events. With Redis every worker sees every event, so tabs of one
shopper on different workers are all served.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Protocol

from bot.dialogue import events as ev
from bot.stores import EventBus

log = logging.getLogger(__name__)
POLL_S = 30.0


class Listener(Protocol):
    def deliver(self, event: ev.Event) -> None:
        """Take one event without waiting (queue it); called from the room's loop."""


class Rooms:
    def __init__(self, bus: EventBus, observers: list[Callable[[str, ev.Event], None]] | None = None) -> None:
        self.bus = bus
        self.observers = observers or []
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
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        async with self.bus.subscribe() as subscription:
            self._ready.set()
            while not subscription.closed:
                item = await subscription.get(POLL_S)  # get(timeout) keeps the subscription (see its docstring)
                if item is not None:
                    self._dispatch(*item)

    def _dispatch(self, conversation_id: str, event: ev.Event) -> None:
        for observer in self.observers:
            try:
                observer(conversation_id, event)
            except Exception:
                log.exception("widget event observer failed")
        for listener in list(self._rooms.get(conversation_id, ())):
            listener.deliver(event)
