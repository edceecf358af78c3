"""The queue and its assignments: how a handoff record moves.

    new request → assigned to a free online agent, or queued (told the place in line and the wait)
    queued → assigned (auto-assignment or an agent's claim) → assigned to another agent (transfer)
           → queued again (transfer to a group) → gone (closed, cancelled, timed out)

Every move is a compare-and-set on the record (handoff/records.py) and on the agents' loads, made under the
conversation's lock: the shopper's turn holds it for `enqueue` and `leave`; agents' actions take it here; the
background loop (handoff/housekeeping.py) takes it and passes the record it re-read. Each move ends in the event
that tells it (appended here, or returned to the shopper's turn to store).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from bot.dialogue import events as ev
from bot.stores import TrackerStore
from handoff import events, routing, shopper
from handoff.agents import AgentAccount
from handoff.errors import Conflict, Invalid, NotFound
from handoff.handling import HandlingTimes
from handoff.hours import BusinessHours
from handoff.loads import AgentLoads
from handoff.locks import locked
from handoff.permissions import Permissions
from handoff.records import HandoffRecord, HandoffRecords
from handoff.roster import Roster
from handoff.routing import OnDuty
from handoff.settings import HandoffSettings

log = logging.getLogger(__name__)


class HandoffQueue:
    def __init__(self, trackers: TrackerStore, records: HandoffRecords, loads: AgentLoads, roster: Roster,
                 handling: HandlingTimes, permissions: Permissions, hours: BusinessHours,
                 settings: HandoffSettings, now: Callable[[], float] = time.time,
                 wake: Callable[[], None] = lambda: None) -> None:
        self.trackers = trackers
        self.records = records
        self.loads = loads
        self.roster = roster
        self.handling = handling
        self.permissions = permissions
        self.hours = hours
        self.settings = settings
        self.now = now
        self.wake = wake  # something changed: the background loop should look again now

    # -- inside the shopper's turn (the caller holds the lock and stores the event) -----------------------------

    async def enqueue(self, record: HandoffRecord) -> ev.Event:
        """A new handoff: straight to a free online agent who fits, else into the line (`queued`)."""
        now = record.requested_at
        roster = await self.roster.on_duty(now)
        waiting = [r for r in await self.records.waiting() if r.conversation_id != record.conversation_id]
        position = 1 + sum(1 for r in waiting if r.order < record.order)
        eta = routing.eta_s(position, roster, await self.handling.average())
        told = record.but(told_position=position, told_eta_s=eta)
        await self._create(told)
        if self.settings.auto_assign:
            line = sorted([*waiting, told], key=lambda r: r.order)
            for planned, agent in routing.plan(line, roster, now, self.settings.overflow_after_s):
                if planned.conversation_id == told.conversation_id:
                    assigned = await self._take(told, agent.username, agent.name, agent.capacity)
                    if assigned is not None:
                        self.wake()
                        return events.agent_assigned(assigned)
        self.wake()
        return events.queued(told, position, eta)

    async def leave(self, conversation_id: str) -> bool:
        """The shopper stops waiting (to go back to the bot, or to leave a message instead)."""
        record = await self.records.get(conversation_id)
        if record is not None and record.state == "queued" and await self.records.remove(record):
            self.wake()
            return True
        return False

    async def _create(self, record: HandoffRecord) -> None:
        if await self.records.create(record):
            return
        # the tracker says the bot has the chat, so a record still here was left by a handoff that ended without
        # removing it (a worker stopped half-way): this request replaces it
        stale = await self.records.get(record.conversation_id)
        if stale is None or not await self.records.replace(stale, record):
            raise Conflict("the conversation's handoff changed meanwhile")
        log.warning("replaced a stale handoff record of %s", record.conversation_id)
        if stale.agent:
            await self.loads.release(stale.agent, record.conversation_id)

    # -- agents' actions (they take the conversation's lock) ----------------------------------------------------

    async def claim(self, conversation_id: str, account: AgentAccount) -> list[ev.Event]:
        async with locked(self.trackers, conversation_id):
            record = await self.permissions.open_record(conversation_id)
            if record.state != "queued":
                raise Conflict(f"already claimed by {record.agent_name or record.agent}")
            stored = await self._assign(record, account.username, account.name, capacity=None)
        if stored is None:
            raise Conflict("already claimed")
        return stored

    async def transfer(self, conversation_id: str, account: AgentAccount, to_agent: str | None = None,
                       to_group: str | None = None) -> list[ev.Event]:
        """To a colleague who is online or away, or back into the queue for a skill group."""
        if bool(to_agent) == bool(to_group):
            raise Invalid('give either "agent" or "group"')
        if to_group is not None and to_group not in self.settings.groups:
            raise NotFound(f"unknown group {to_group!r}")
        target = await self.roster.account(to_agent) if to_agent else None
        async with locked(self.trackers, conversation_id):
            record = await self.permissions.writable(conversation_id, account)
            if target is None:
                return await self._requeue(record, to_group)
            if target.username == record.agent:
                raise Conflict("the conversation is already with that agent")
            if await self.roster.effective_status(target.username) == "offline":
                raise Conflict(f"{target.name} is offline")
            stored = await self._assign(record, target.username, target.name, None, record.agent)
            if stored is None:
                raise Conflict("the conversation changed meanwhile; try again")
            return stored

    async def close(self, conversation_id: str, account: AgentAccount, resolution: str | None = None
                    ) -> list[ev.Event]:
        """End the handoff: the bot takes the chat back and asks for a rating."""
        resolution = resolution or self.settings.resolutions[0]
        if resolution not in self.settings.resolutions:
            raise Invalid(f"resolution must be one of {', '.join(self.settings.resolutions)}")
        async with locked(self.trackers, conversation_id):
            record = await self.permissions.writable(conversation_id, account)
            if not await self.records.remove(record):
                raise Conflict("the conversation changed meanwhile; try again")
            if record.agent:
                await self.loads.release(record.agent, conversation_id)
            ended = [events.event(ev.HANDOFF_ENDED, resolution=resolution, agent=record.agent,
                                  **events.spoken(record.language, record.traditional))]
            if self.settings.ask_rating:
                ended.append(shopper.rating_request(record.language, record.traditional))
            stored = await self.trackers.append(conversation_id, ended)
        if record.assigned_at:
            await self.handling.add(self.now() - record.assigned_at)
        self.wake()
        return stored

    # -- the background loop's moves (it holds the lock and passes the queued record it re-read) -----------------

    async def assign(self, record: HandoffRecord, agent: OnDuty) -> None:
        await self._assign(record, agent.username, agent.name, agent.capacity)

    async def time_out(self, record: HandoffRecord) -> None:
        """Nobody took the chat within no_answer_timeout_s: out of the line, offered to leave a message."""
        if self.now() - record.queued_at < self.settings.no_answer_timeout_s:
            return
        if await self.records.remove(record):
            await self.trackers.append(record.conversation_id,
                                       [events.unavailable("timeout", self.hours, self.now(), record.language,
                                                          record.reply_by, record.traditional)])

    async def tell(self, record: HandoffRecord, position: int, eta_s: int | None) -> None:
        """A new `queued` for a shopper whose place in line or wait changed."""
        if (record.told_position, record.told_eta_s) == (position, eta_s):
            return
        told = record.but(told_position=position, told_eta_s=eta_s)
        if await self.records.replace(record, told):
            await self.trackers.append(record.conversation_id, [events.queued(told, position, eta_s)])

    async def places(self) -> list[tuple[HandoffRecord, int, int | None]]:
        """Everyone waiting, in service order, with their place in line and estimated wait now."""
        waiting = await self.records.waiting()
        if not waiting:
            return []
        roster = await self.roster.on_duty()
        handling = await self.handling.average()
        return [(record, position, routing.eta_s(position, roster, handling))
                for position, record in enumerate(waiting, start=1)]

    # -- moves shared by the above ----------------------------------------------------------------------------

    async def _take(self, record: HandoffRecord, username: str, name: str, capacity: int | None,
                    transferred_from: str | None = None) -> HandoffRecord | None:
        """queued (or assigned to someone else, for a transfer) → assigned to `username`; None if the agent is
        full or the record changed meanwhile."""
        cid = record.conversation_id
        if not await self.loads.reserve(username, cid, capacity):
            return None
        assigned = record.but(state="assigned", agent=username, agent_name=name, assigned_at=self.now(),
                              transferred_from=[*record.transferred_from, transferred_from] if transferred_from
                              else record.transferred_from)
        if not await self.records.replace(record, assigned):
            await self.loads.release(username, cid)
            return None
        if record.agent and record.agent != username:
            await self.loads.release(record.agent, cid)
        return assigned

    async def _assign(self, record: HandoffRecord, username: str, name: str, capacity: int | None,
                      transferred_from: str | None = None) -> list[ev.Event] | None:
        assigned = await self._take(record, username, name, capacity, transferred_from)
        if assigned is None:
            return None
        stored = await self.trackers.append(record.conversation_id,
                                            [events.agent_assigned(assigned, transferred_from)])
        self.wake()
        return stored

    async def _requeue(self, record: HandoffRecord, group: str | None) -> list[ev.Event]:
        """Back into the line for a skill group, keeping its place (enqueued_at); not given straight back."""
        now = self.now()
        queued = record.but(state="queued", group=group, agent=None, agent_name=None, assigned_at=None,
                            queued_at=now, transferred_from=[*record.transferred_from, record.agent or ""])
        position = 1 + sum(1 for r in await self.records.waiting() if r.order < queued.order)
        eta = routing.eta_s(position, await self.roster.on_duty(now), await self.handling.average())
        queued = queued.but(told_position=position, told_eta_s=eta)
        if not await self.records.replace(record, queued):
            raise Conflict("the conversation changed meanwhile; try again")
        if record.agent:
            await self.loads.release(record.agent, record.conversation_id)
        stored = await self.trackers.append(record.conversation_id,
                                            [events.queued(queued, position, eta, transferred_from=record.agent)])
        self.wake()
        return stored
