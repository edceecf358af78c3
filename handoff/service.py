"""The handoff state machine. Every transition is an event appended through the tracker store:

    handoff_requested → queued{position, eta_s} … → agent_assigned → agent_message / agent_note …
        → handoff_ended{resolution} → (bot) rating request → csat{score}
    also: handoff_cancelled (shopper stops waiting), handoff_unavailable{closed | offline | timeout}
        → the shopper's next message → ticket_created; transfer = agent_assigned (to an agent) or queued (to a group)

Agent-side changes take the conversation's lock, re-read the handoff record and change it by compare-and-set
before appending, so they can't interleave with a shopper's turn or with each other, on one worker or several.
The shopper side (`request`, `shopper_message`) runs inside the shopper's turn, which already holds the lock.
A background loop per worker assigns waiting shoppers, times them out and tells them their new place in line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from bot.dialogue import events as ev
from bot.dialogue.escalation import is_explicit_human_request
from bot.dialogue.tracker import Tracker
from bot.language import conversation_language
from bot.notices import text
from bot.stores import LockTimeout, Stores
from handoff import routing, shopper
from handoff.agents import AgentAccount, AgentDirectory
from handoff.hours import BusinessHours
from handoff.queue import HandoffRecord, HandoffRecords
from handoff.routing import OnDuty
from handoff.settings import HandoffSettings
from handoff.tickets import Tickets

log = logging.getLogger(__name__)

MAX_AGENT_TEXT = 5000
LOCK_TIMEOUT_S = 10.0
BACKGROUND_LOCK_TIMEOUT_S = 3.0
STOP_TIMEOUT_S = 5.0


class HandoffError(Exception):
    """A refused agent action; `status` is the HTTP status that says why (403, 404, 409…)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _event(kind: str, **fields: Any) -> ev.Event:
    return {"event": kind, "timestamp": time.time(), **fields}


class HandoffService:
    """The human side of kefu: implements the engine's HandoffPort and everything agents do."""

    def __init__(self, stores: Stores, settings: HandoffSettings, now: Callable[[], float] = time.time) -> None:
        self.stores = stores
        self.settings = settings
        self.now = now
        self.records = HandoffRecords(stores.kv)
        self.agents = AgentDirectory(stores.kv, settings.session_ttl_s, settings.default_capacity)
        self.tickets = Tickets(stores.kv)
        self.hours = BusinessHours(settings)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    # -- the shopper's side (inside the shopper's turn: the conversation is locked) --------------------------

    async def request(self, tracker: Tracker, event: ev.Event) -> list[ev.Event]:
        """After `handoff_requested`: unavailable (closed / nobody on duty), straight to a free agent, or queued."""
        now = self.now()
        cid = tracker.sender_id
        language = event.get("language") or self._language(tracker)
        if not self.hours.is_open(now):
            return [self._unavailable("closed", now, language)]
        roster = await self.roster(now)
        if not any(a.status in ("online", "away") for a in roster):
            return [self._unavailable("offline", now, language)]
        record = await self._new_record(tracker, event, now)
        waiting = [r for r in await self.records.waiting() if r.conversation_id != cid]
        if self.settings.auto_assign:
            for planned, agent in routing.plan(sorted([*waiting, record], key=lambda r: r.order), roster, now,
                                               self.settings.overflow_after_s):
                if planned.conversation_id == cid:
                    assigned = await self._assign_new(record, agent, now)
                    if assigned is not None:
                        return [assigned]
        position = 1 + sum(1 for r in waiting if r.order < record.order)
        eta = routing.eta_s(position, roster, await self._handling_s())
        record = record.but(told_position=position, told_eta_s=eta)
        await self.stores.kv.set(f"open:{cid}", record.as_dict())
        self.kick()
        return [_event(ev.QUEUED, position=position, eta_s=eta, priority=record.priority, group=record.group,
                       language=language)]

    async def shopper_message(self, tracker: Tracker, user_event: ev.Event) -> list[ev.Event] | None:
        """Events for a shopper message that is not the bot's to answer, or None to let the bot answer.

        While a person holds the chat the message is kept for the agent (or cancels the wait); after a handoff
        it may be a rating, the message a ticket is made of, or a question about tickets."""
        message = user_event.get("text") or ""
        language = self._language(tracker)
        state = tracker.handoff_state
        if state == "requested" and await self.records.get(tracker.sender_id) is None:
            # the request never got an answer (the queue failed during it): say so rather than wait forever
            log.warning("conversation %s was %s without a handoff record; back to the bot", tracker.sender_id, state)
            return [_event(ev.HANDOFF_CANCELLED, by="system"), user_event,
                    ev.bot(text("handoff_lost", language), {}, "utter_handoff_lost")]
        if state in ("requested", "queued"):
            if shopper.is_cancel(message):
                await self._cancel(tracker.sender_id)
                return [user_event, _event(ev.HANDOFF_CANCELLED, by="shopper"),
                        ev.bot(text("utter_handoff_cancelled", language), {}, "utter_handoff_cancelled")]
            return [user_event]
        if state == "assigned":
            return [user_event]
        if shopper.rating_pending(tracker) and (score := shopper.rating_score(message)) is not None:
            return [user_event, _event(ev.CSAT, score=score),
                    ev.bot(text("utter_thanks_for_rating", language), {}, "utter_thanks_for_rating")]
        unavailable = shopper.unavailable_pending(tracker)
        if unavailable is not None:
            if shopper.is_cancel(message):
                return [user_event, _event(ev.HANDOFF_CANCELLED, by="shopper"),
                        ev.bot(text("utter_ticket_cancelled", language), {}, "utter_ticket_cancelled")]
            if not shopper.is_payload(message) and not is_explicit_human_request(message):
                meta = await self.stores.trackers.get_meta(tracker.sender_id)
                ticket = await self.tickets.create(tracker.sender_id, message, language,
                                                   str(meta.get("channel") or tracker.latest_input_channel or ""),
                                                   str(unavailable.get("reason") or "offline"))
                return [user_event, _event(ev.TICKET_CREATED, ticket_id=ticket.ticket_id, text=message,
                                           language=language)]
        if shopper.asks_ticket_status(message):
            # only messages left here; other tickets (the shop's own, by number) are the bot's `ticket_status`
            tickets = await self.tickets.of_conversation(tracker.sender_id)
            if tickets:
                return [user_event, ev.bot(self._ticket_status(tickets, language), {}, "utter_ticket_status")]
        return None

    def _ticket_status(self, tickets: list, language: str) -> str:
        return "\n".join(text("ticket_status", language, ticket_id=t.ticket_id,
                              status=text(f"ticket_{t.status}", language)) for t in tickets[-3:])

    def _language(self, tracker: Tracker) -> str:
        return conversation_language(tracker.events, "en")

    def _unavailable(self, reason: str, now: float, language: str) -> ev.Event:
        opening = self.hours.next_open(now)
        return _event(ev.HANDOFF_UNAVAILABLE, reason=reason, next_open=opening.isoformat() if opening else None,
                      timezone=self.settings.timezone, language=language)

    async def _new_record(self, tracker: Tracker, event: ev.Event, now: float) -> HandoffRecord:
        cid = tracker.sender_id
        meta = await self.stores.trackers.get_meta(cid)
        reason = str(event.get("reason") or "explicit_request")
        priority, rank = routing.priority_of(self.settings, reason, meta.get("tier"), tracker.slots)
        categories = {hit["id"]: hit.get("category") for e in tracker.events if e.get("event") == "user"
                      for hit in ((e.get("parse_data") or {}).get("faq") or []) if hit.get("category")}
        group = routing.group_of(self.settings, reason, event.get("candidates") or [], categories)
        channel = meta.get("channel") or tracker.latest_input_channel or "rest"
        return HandoffRecord(conversation_id=cid, state="queued", priority=priority, rank=rank, reason=reason,
                             language=event.get("language") or self._language(tracker), channel=str(channel),
                             group=group, requested_at=now, enqueued_at=now, queued_at=now)

    async def _assign_new(self, record: HandoffRecord, agent: OnDuty, now: float) -> ev.Event | None:
        cid = record.conversation_id
        if not await self.records.reserve(agent.username, cid, agent.capacity):
            return None
        assigned = record.but(state="assigned", agent=agent.username, agent_name=agent.name, assigned_at=now)
        await self.stores.kv.set(f"open:{cid}", assigned.as_dict())
        return _event(ev.AGENT_ASSIGNED, agent=agent.username, agent_name=agent.name, language=record.language)

    async def _cancel(self, cid: str) -> None:
        record = await self.records.get(cid)
        if record is not None and record.state == "queued" and await self.records.remove(record):
            self.kick()

    # -- who is on duty -------------------------------------------------------------------------------------

    async def roster(self, now: float | None = None) -> list[OnDuty]:
        now = self.now() if now is None else now
        accounts = await self.agents.all()
        presences = await self.agents.presences()
        loads = await self.records.loads()
        ttl = self.settings.presence_ttl_s
        return [OnDuty(a.username, a.name, presences[a.username].effective(now, ttl) if a.username in presences
                       else "offline", a.languages, a.groups, a.capacity, len(loads.get(a.username, [])))
                for a in accounts]

    async def _handling_s(self) -> float:
        return routing.average_handling(await self.records.handling_times(), self.settings.default_handling_s)

    async def set_status(self, account: AgentAccount, status: str) -> None:
        await self.agents.set_status(account.username, status, self.now())
        self.kick()

    # -- agents' actions --------------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _locked(self, cid: str, timeout_s: float = LOCK_TIMEOUT_S) -> AsyncIterator[None]:
        try:
            async with self.stores.trackers.lock(cid, timeout_s):
                yield
        except LockTimeout:
            raise HandoffError(503, "the conversation is busy; try again") from None

    async def _open_record(self, cid: str) -> HandoffRecord:
        record = await self.records.get(cid)
        if record is None:
            if not await self.stores.trackers.exists(cid):
                raise HandoffError(404, "unknown conversation")
            raise HandoffError(409, "the conversation is closed")
        return record

    async def _writable(self, cid: str, account: AgentAccount) -> HandoffRecord:
        record = await self._open_record(cid)
        if record.state != "assigned":
            raise HandoffError(409, "the conversation is waiting in the queue: claim it first")
        if record.agent != account.username and not account.is_admin:
            raise HandoffError(403, f"the conversation is assigned to {record.agent_name or record.agent}")
        return record

    async def can_read(self, cid: str, account: AgentAccount, events: list[ev.Event] | None = None) -> bool:
        """Admins read everything; agents read the queue, their own conversations (now or before) and
        conversations with a ticket."""
        if account.is_admin:
            return True
        record = await self.records.get(cid)
        if record is not None and (record.state == "queued" or record.agent == account.username):
            return True
        events = events if events is not None else await self.stores.trackers.events(cid)
        return any((e.get("event") == ev.AGENT_ASSIGNED and e.get("agent") == account.username)
                   or e.get("event") == ev.TICKET_CREATED for e in events)

    async def claim(self, cid: str, account: AgentAccount) -> list[ev.Event]:
        async with self._locked(cid):
            record = await self._open_record(cid)
            if record.state != "queued":
                raise HandoffError(409, f"already claimed by {record.agent_name or record.agent}")
            stored = await self._assign(record, account.username, account.name, capacity=None)
        if stored is None:
            raise HandoffError(409, "already claimed")
        return stored

    async def _assign(self, record: HandoffRecord, username: str, name: str, capacity: int | None,
                      transferred_from: str | None = None) -> list[ev.Event] | None:
        """queued (or assigned to someone else, for a transfer) → assigned to `username`. Call with the lock."""
        cid = record.conversation_id
        if not await self.records.reserve(username, cid, capacity):
            return None
        new = record.but(state="assigned", agent=username, agent_name=name, assigned_at=self.now(),
                         transferred_from=[*record.transferred_from, transferred_from] if transferred_from
                         else record.transferred_from)
        if not await self.records.replace(record, new):
            await self.records.release(username, cid)
            return None
        if record.agent and record.agent != username:
            await self.records.release(record.agent, cid)
        extra = {"transferred_from": transferred_from} if transferred_from else {}
        stored = await self.stores.trackers.append(cid, [_event(ev.AGENT_ASSIGNED, agent=username, agent_name=name,
                                                                language=record.language, **extra)])
        self.kick()
        return stored

    async def send(self, cid: str, account: AgentAccount, message: str) -> ev.Event:
        message = _check_text(message)
        async with self._locked(cid):
            await self._writable(cid, account)
            stored = await self.stores.trackers.append(cid, [_event(ev.AGENT_MESSAGE, text=message,
                                                                    agent=account.username,
                                                                    agent_name=account.name)])
        return stored[0]

    async def note(self, cid: str, account: AgentAccount, message: str) -> ev.Event:
        message = _check_text(message)
        if not await self.stores.trackers.exists(cid):
            raise HandoffError(404, "unknown conversation")
        if not await self.can_read(cid, account):
            raise HandoffError(403, "not your conversation")
        stored = await self.stores.trackers.append(cid, [_event(ev.AGENT_NOTE, text=message,
                                                                agent=account.username)])
        return stored[0]

    async def transfer(self, cid: str, account: AgentAccount, to_agent: str | None = None,
                       to_group: str | None = None) -> list[ev.Event]:
        if bool(to_agent) == bool(to_group):
            raise HandoffError(400, 'give either "agent" or "group"')
        if to_group is not None and to_group not in self.settings.groups:
            raise HandoffError(404, f"unknown group {to_group!r}")
        target = await self.agents.get(to_agent) if to_agent else None
        if to_agent and target is None:
            raise HandoffError(404, f"unknown agent {to_agent!r}")
        async with self._locked(cid):
            record = await self._writable(cid, account)
            if target is not None:
                if target.username == record.agent:
                    raise HandoffError(409, "the conversation is already with that agent")
                presence = await self.agents.presence(target.username)
                if presence.effective(self.now(), self.settings.presence_ttl_s) == "offline":
                    raise HandoffError(409, f"{target.name} is offline")
                stored = await self._assign(record, target.username, target.name, None, record.agent)
                if stored is None:
                    raise HandoffError(409, "the conversation changed meanwhile; try again")
                return stored
            return await self._requeue(record, to_group)

    async def _requeue(self, record: HandoffRecord, group: str | None) -> list[ev.Event]:
        cid = record.conversation_id
        now = self.now()
        queued = record.but(state="queued", group=group, agent=None, agent_name=None, assigned_at=None,
                            queued_at=now, transferred_from=[*record.transferred_from, record.agent or ""])
        waiting = await self.records.waiting()
        position = 1 + sum(1 for r in waiting if r.order < queued.order)
        eta = routing.eta_s(position, await self.roster(now), await self._handling_s())
        queued = queued.but(told_position=position, told_eta_s=eta)
        if not await self.records.replace(record, queued):
            raise HandoffError(409, "the conversation changed meanwhile; try again")
        if record.agent:
            await self.records.release(record.agent, cid)
        stored = await self.stores.trackers.append(cid, [_event(ev.QUEUED, position=position, eta_s=eta,
                                                                priority=record.priority, group=group,
                                                                transferred_from=record.agent,
                                                                language=record.language)])
        self.kick()
        return stored

    async def close(self, cid: str, account: AgentAccount, resolution: str | None = None) -> list[ev.Event]:
        resolution = resolution or self.settings.resolutions[0]
        if resolution not in self.settings.resolutions:
            raise HandoffError(400, f"resolution must be one of {', '.join(self.settings.resolutions)}")
        async with self._locked(cid):
            record = await self._writable(cid, account)
            if not await self.records.remove(record):
                raise HandoffError(409, "the conversation changed meanwhile; try again")
            if record.agent:
                await self.records.release(record.agent, cid)
            ended = [_event(ev.HANDOFF_ENDED, resolution=resolution, agent=record.agent, language=record.language)]
            if self.settings.ask_rating:
                ended.append(shopper.rating_request(record.language))
            stored = await self.stores.trackers.append(cid, ended)
        if record.assigned_at:
            await self.records.add_handling_time(self.now() - record.assigned_at, self.settings.recent_handling)
        self.kick()
        return stored

    # -- the background loop: assign, time out, tell shoppers their place ----------------------------------

    def kick(self) -> None:
        """Something changed (a shopper queued, an agent freed a slot or came online): look again now."""
        self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="kefu-handoff")

    async def stop(self) -> None:
        """Stop the loop. Also by flag: a store client that swallows a cancellation must not hang shutdown."""
        if self._task is not None:
            self._stopping = True
            self._wake.set()
            self._task.cancel()
            await asyncio.wait({self._task}, timeout=STOP_TIMEOUT_S)
            self._task = None

    async def _run(self) -> None:
        while not self._stopping:
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow the cancellation that stops this loop
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.tick_s):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self.housekeeping()
            except Exception:  # a bad moment of the store must not end the loop
                log.exception("handoff housekeeping failed")

    async def housekeeping(self) -> None:
        now = self.now()
        for record in await self.records.waiting():
            if now - record.queued_at >= self.settings.no_answer_timeout_s:
                await self._background(record.conversation_id, self._time_out)
        if self.settings.auto_assign:
            roster = await self.roster(now)
            for record, agent in routing.plan(await self.records.waiting(), roster, now,
                                              self.settings.overflow_after_s):
                await self._background(record.conversation_id, self._auto_assign, agent)
        await self.reposition()

    async def _background(self, cid: str, action: Callable[..., Any], *args: Any) -> None:
        """Run an action under the conversation's lock, re-reading its record; skip it if the lock is busy."""
        try:
            async with self.stores.trackers.lock(cid, BACKGROUND_LOCK_TIMEOUT_S):
                record = await self.records.get(cid)
                if record is not None and record.state == "queued":
                    await action(record, *args)
        except LockTimeout:
            log.info("conversation %s busy; retrying on the next round", cid)

    async def _time_out(self, record: HandoffRecord) -> None:
        if self.now() - record.queued_at < self.settings.no_answer_timeout_s:
            return
        if await self.records.remove(record):
            await self.stores.trackers.append(record.conversation_id,
                                              [self._unavailable("timeout", self.now(), record.language)])

    async def _auto_assign(self, record: HandoffRecord, agent: OnDuty) -> None:
        await self._assign(record, agent.username, agent.name, agent.capacity)

    async def reposition(self) -> None:
        """Tell every waiting shopper whose place in line or estimated wait changed (a new `queued` event)."""
        waiting = await self.records.waiting()
        if not waiting:
            return
        roster = await self.roster()
        handling = await self._handling_s()
        for position, record in enumerate(waiting, start=1):
            eta = routing.eta_s(position, roster, handling)
            if (record.told_position, record.told_eta_s) != (position, eta):
                await self._background(record.conversation_id, self._tell, position, eta)

    async def _tell(self, record: HandoffRecord, position: int, eta: int) -> None:
        if (record.told_position, record.told_eta_s) == (position, eta):
            return
        if await self.records.replace(record, record.but(told_position=position, told_eta_s=eta)):
            await self.stores.trackers.append(record.conversation_id, [
                _event(ev.QUEUED, position=position, eta_s=eta, priority=record.priority, group=record.group,
                       language=record.language)])


def _check_text(message: Any) -> str:
    if not isinstance(message, str) or not message.strip():
        raise HandoffError(400, "text must be a non-empty string")
    if len(message) > MAX_AGENT_TEXT:
        raise HandoffError(400, f"text is longer than {MAX_AGENT_TEXT} characters")
    return message
