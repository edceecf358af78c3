"""The human side, assembled: one small service per responsibility, sharing the app's stores.

    records       a conversation's handoff record (compare-and-set)           handoff/records.py
    queue         the line and its assignments: enqueue, claim, transfer, close handoff/queue.py
    housekeeper   the background loop: assign, time out, tell new places      handoff/housekeeping.py
    roster        agent presence: who is on duty, status changes              handoff/roster.py
    permissions   may this agent read / write this conversation               handoff/permissions.py
    chat          an agent's messages, notes and typing                       handoff/chat.py
    tickets       messages left when nobody could take the chat               handoff/tickets.py
    shopper       the handoff's part of a shopper's turn (HandoffPort)        handoff/shopper_turn.py
    promises      reply-by promises per channel: when, and how they stand     handoff/promise.py
    views         what the console reads                                      handoff/views.py
    agents        accounts and login sessions                                 handoff/agents.py

`HandoffService` implements the engine's HandoffPort by handing both calls to `shopper`; the console calls the
services directly. The event flow is in docs/design.md ("Handoff, as built").
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from bot.dialogue import events as ev
from bot.dialogue.tracker import Tracker
from bot.stores import Stores
from handoff.agents import AgentDirectory
from handoff.chat import AgentChat
from handoff.handling import HandlingTimes
from handoff.hours import BusinessHours
from handoff.housekeeping import Housekeeper
from handoff.loads import AgentLoads
from handoff.permissions import Permissions
from handoff.promise import ReplyPromises
from handoff.queue import HandoffQueue
from handoff.records import HandoffRecords
from handoff.roster import Roster
from handoff.settings import HandoffSettings
from handoff.shopper_turn import ShopperTurn
from handoff.tickets import Tickets
from handoff.views import ConsoleViews


class HandoffService:
    def __init__(self, stores: Stores, settings: HandoffSettings, now: Callable[[], float] = time.time) -> None:
        trackers, kv = stores.trackers, stores.kv
        wake = asyncio.Event()  # set when something changed: the background loop looks again at once
        self.settings = settings
        self.hours = BusinessHours(settings)
        self.records = HandoffRecords(kv)
        self.agents = AgentDirectory(kv, settings.session_ttl_s, settings.default_capacity)
        self.loads = loads = AgentLoads(kv)
        self.roster = Roster(self.agents, loads, settings.presence_ttl_s, now, wake.set)
        self.permissions = Permissions(self.records, trackers)
        self.tickets = Tickets(kv, trackers)
        handling = HandlingTimes(kv, settings.recent_handling, settings.default_handling_s)
        self.queue = HandoffQueue(trackers, self.records, loads, self.roster, handling,
                                  self.permissions, self.hours, settings, now, wake.set)
        self.housekeeper = Housekeeper(trackers, self.records, self.roster, self.queue, settings, wake, now)
        self.promises = ReplyPromises(settings, self.hours)
        self.chat = AgentChat(trackers, stores.bus, self.permissions, self.records)
        self.shopper = ShopperTurn(trackers, self.records, self.queue, self.tickets, self.hours, self.promises,
                                   settings, now)
        self.views = ConsoleViews(trackers, self.records, self.roster, self.tickets, self.permissions, self.hours,
                                  self.promises, settings, now)

    # -- the engine's HandoffPort ---------------------------------------------------------------------------

    async def request(self, tracker: Tracker, event: ev.Event) -> list[ev.Event]:
        return await self.shopper.request(tracker, event)

    async def shopper_message(self, tracker: Tracker, user_event: ev.Event) -> list[ev.Event] | None:
        return await self.shopper.shopper_message(tracker, user_event)

    # -- erasure (bot/erasure.py, under the conversation's lock) ------------------------------------------------

    async def forget(self, conversation_id: str) -> dict[str, int]:
        """Remove what the human side keeps about the conversation: out of the queue and agents' loads, its
        tickets gone; the others waiting are told their new places."""
        record = await self.records.forget(conversation_id)
        removed = {"handoff_records": int(record is not None), "agent_loads": await self.loads.forget(conversation_id),
                   "tickets": await self.tickets.forget(conversation_id)}
        self.queue.wake()
        return removed

    # -- the background loop --------------------------------------------------------------------------------

    def start(self) -> None:
        self.housekeeper.start()

    async def stop(self) -> None:
        await self.housekeeper.stop()
