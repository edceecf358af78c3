"""The bus forwarder: agent replies and handoff notices of one push channel's conversations, sent from the event
bus once across workers and in seq order, with a catch-up for what Redis pub/sub dropped.

Bot answers are not forwarded here: the request that ran the bot turn sends them (passive reply or API). A
notice waits `notice_grace_s` first, so the turn that made it can claim it (`claims.turn_output`); whoever
claims first sends, so it is never twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from bot import tasks
from bot.channels.push.claims import claim, is_forwarded
from bot.channels.push.serial import KeyedSerial
from bot.dialogue import events as ev
from bot.notices import is_notice
from bot.stores import LockTimeout, Stores

log = logging.getLogger(__name__)

Deliver = Callable[[str, ev.Event], Awaitable[None]]

OUTBOX_LOCK_S = 60.0
CATCH_UP_WINDOW_S = 900.0  # catch_up looks at conversations active this recently...
CATCH_UP_AFTER_S = 10.0  # ...at events at least this old (the bus delivers in milliseconds)
CATCH_UP_CONVERSATIONS = 500
CATCH_UP_EVENTS = 100  # per conversation, at most the latest this many (the first sweep after start-up)


@dataclass
class BusForwarder:
    stores: Stores
    prefix: str  # the channel's conversations: "wechat:", "messenger:"
    deliver: Deliver
    serial: KeyedSerial
    notice_grace_s: float = 2.0
    on_typing: Deliver | None = None
    _checked: dict[str, int] = field(default_factory=dict)  # conversation -> the seq catch_up has looked up to

    async def catch_up(self, now: float | None = None) -> None:
        """Forward what the bus did not bring: Redis pub/sub drops what is published while a worker reconnects.

        Looks at this channel's conversations active in the last CATCH_UP_WINDOW_S, at their events older than
        CATCH_UP_AFTER_S (the bus had its chance), and forwards those nobody claimed; the claim makes it once.
        """
        now = time.time() if now is None else now
        checked, self._checked = self._checked, {}  # only conversations still in the window are remembered
        for conversation in await self.stores.trackers.conversations(limit=CATCH_UP_CONVERSATIONS):
            if float(conversation.get("updated_at") or 0) < now - CATCH_UP_WINDOW_S:
                break  # newest activity first: the rest is older
            cid, last_seq = conversation["conversation_id"], int(conversation.get("last_seq") or 0)
            if not cid.startswith(self.prefix):
                continue
            after = self._checked[cid] = max(checked.get(cid, 0), last_seq - CATCH_UP_EVENTS)
            if last_seq <= after:
                continue
            for event in await self.stores.trackers.events(cid, after_seq=after):
                if float(event.get("timestamp") or 0) > now - CATCH_UP_AFTER_S:
                    break  # too recent: the bus may still bring it; the next sweep looks again
                self._checked[cid] = event["seq"]
                if is_forwarded(event):
                    self.serial.submit(cid, lambda cid=cid, event=event: self._forward(cid, event, 0.0))

    async def run(self, ready: asyncio.Event) -> None:
        async with self.stores.bus.subscribe() as subscription:
            ready.set()
            while not subscription.closed:
                item = await subscription.get(timeout=30)
                if item is not None:
                    self._route(*item)

    def _route(self, conversation_id: str, event: ev.Event) -> None:
        if not conversation_id.startswith(self.prefix):
            return
        kind = event.get("event")
        if kind == ev.TYPING and event.get("role") == "agent" and self.on_typing is not None:
            self.serial.submit(conversation_id, lambda: self._typing(conversation_id, event))
        elif is_forwarded(event) and isinstance(event.get("seq"), int):
            arrived = asyncio.get_running_loop().time()
            self.serial.submit(conversation_id, lambda: self._forward(conversation_id, event, arrived))

    async def _forward(self, conversation_id: str, event: ev.Event, arrived: float) -> None:
        if is_notice(event):  # the turn that made it may be sending it (claims.turn_output)
            await asyncio.sleep(max(0.0, arrived + self.notice_grace_s - asyncio.get_running_loop().time()))
        # Claim and send under one lock per conversation's outbox: every worker walks the events in seq order,
        # so whoever claims seq N+1 does so after seq N went out -- order holds across workers too.
        trackers = self.stores.trackers
        try:
            async with trackers.lock(f"outbox:{conversation_id}", OUTBOX_LOCK_S):
                if await claim(self.stores, conversation_id, event["seq"]):
                    await self.deliver(conversation_id, event)
        except LockTimeout:
            log.warning("outbox of a %s conversation busy for %.0f s; another worker delivers event %s",
                        self.prefix.rstrip(":"), OUTBOX_LOCK_S, event["seq"])

    async def _typing(self, conversation_id: str, event: ev.Event) -> None:
        # not stored, so no seq: one worker per conversation, state and second sends it
        second = int(float(event.get("timestamp") or 0))
        key = f"out:{conversation_id}:typing:{bool(event.get('on'))}:{second}"
        if self.on_typing is not None and await self.stores.trackers.claim_message_id(key, 60):
            await self.on_typing(conversation_id, event)


@contextlib.asynccontextmanager
async def forwarding(forwarder: BusForwarder, ready_timeout_s: float = 10.0) -> AsyncIterator[None]:
    """Run a forwarder for the app's lifetime; startup waits until its subscription is live (nothing missed)."""
    ready = asyncio.Event()
    task = asyncio.get_running_loop().create_task(forwarder.run(ready), name=f"forward:{forwarder.prefix}")
    try:
        waiter = asyncio.ensure_future(ready.wait())
        await asyncio.wait({waiter, task}, timeout=ready_timeout_s, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if task.done():
            task.result()  # raises what stopped it
        elif not ready.is_set():
            log.warning("%s forwarder: event bus not ready after %.0f s", forwarder.prefix, ready_timeout_s)
        yield
    finally:
        await tasks.stop(task)
