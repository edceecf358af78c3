"""Live updates for agent consoles: one bus subscription per worker, fanned out to each console's WebSocket.

The bus carries every conversation's events from every worker (Redis pub/sub with REDIS_URL), so a console on
worker B sees a shopper writing to worker A. A console gets what its agent may read: the queue's comings and
goings (handoff events, which carry no shopper text) go to everyone; messages, notes and typing of an open
conversation go to its agent, to admins, and to everyone while it waits in the queue.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from bot import tasks
from bot.dialogue import events as ev
from bot.stores import EventBus
from handoff.agents import AgentAccount
from handoff.records import HandoffRecords

log = logging.getLogger(__name__)

CONVERSATION_EVENTS = {"user", "bot", ev.AGENT_MESSAGE, ev.AGENT_NOTE, ev.CSAT, ev.TYPING}
OUTBOX_SIZE = 1000


@dataclass(eq=False)
class ConsoleClient:
    account: AgentAccount
    outbox: asyncio.Queue[dict[str, Any]] = field(default_factory=lambda: asyncio.Queue(OUTBOX_SIZE))

    def send(self, message: dict[str, Any]) -> None:
        if self.outbox.full():  # a stalled console reloads what it missed; never block the hub
            self.outbox.get_nowait()
        self.outbox.put_nowait(message)


class ConsoleHub:
    def __init__(self, bus: EventBus, records: HandoffRecords) -> None:
        self.bus = bus
        self.records = records
        self.clients: set[ConsoleClient] = set()
        self.holders: dict[str, str | None] = {}  # open conversation → its agent (None while queued)
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="kefu-console-hub")
            async with asyncio.timeout(10):
                await self._ready.wait()

    async def stop(self) -> None:
        await tasks.stop(self._task)
        self._task = None

    def join(self, account: AgentAccount) -> ConsoleClient:
        client = ConsoleClient(account)
        self.clients.add(client)
        return client

    def leave(self, client: ConsoleClient) -> None:
        self.clients.discard(client)

    async def _run(self) -> None:
        while True:
            try:
                async with self.bus.subscribe() as subscription:
                    # subscribed first, then read the open conversations: nothing can fall in between
                    self.holders = {r.conversation_id: r.agent for r in await self.records.open()}
                    self._ready.set()
                    while not subscription.closed:
                        item = await subscription.get(30)
                        if item is not None:
                            self.dispatch(*item)
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("console hub lost the event bus; reconnecting")
                await asyncio.sleep(1)

    def dispatch(self, cid: str, event: ev.Event) -> None:
        kind = event.get("event")
        if kind in (ev.HANDOFF_REQUESTED, ev.QUEUED):
            self.holders[cid] = None
        elif kind == ev.AGENT_ASSIGNED:
            self.holders[cid] = event.get("agent")
        elif kind in (ev.HANDOFF_ENDED, ev.HANDOFF_CANCELLED, ev.HANDOFF_UNAVAILABLE):
            self.holders.pop(cid, None)
        if kind in ev.HANDOFF_EVENTS and kind not in (ev.AGENT_MESSAGE, ev.AGENT_NOTE, ev.CSAT):
            self._send_all({"type": "event", "conversation_id": cid, "event": event})
        elif kind in CONVERSATION_EVENTS and cid in self.holders:
            holder = self.holders[cid]
            message = {"type": "typing" if kind == ev.TYPING else "event", "conversation_id": cid, "event": event}
            for client in list(self.clients):
                if holder is None or holder == client.account.username or client.account.is_admin:
                    client.send(message)
        elif kind in CONVERSATION_EVENTS:  # a closed conversation: only people who have it open care
            message = {"type": "event", "conversation_id": cid, "event": event}
            for client in list(self.clients):
                if client.account.is_admin:
                    client.send(message)

    def _send_all(self, message: dict[str, Any]) -> None:
        for client in list(self.clients):
            client.send(message)
