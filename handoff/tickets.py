"""Tickets: messages shoppers leave when nobody can take the chat, worked by agents in the console.

A ticket is a document `ticket:<id>` with a short, human-friendly id (T1001, T1002… from the store's atomic
counter `tickets`: unique and gap-free across workers however many shoppers leave a message at once), and
`conv-tickets:<conversation>` lists a conversation's tickets so the bot can answer "where is my ticket" without
scanning them all. An agent's answer to a ticket is also an `agent_message` in the shopper's conversation, which
is how the shopper reads it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from bot.dialogue import events as ev
from bot.stores import KeyValue, TrackerStore
from handoff.agents import AgentAccount
from handoff.errors import Invalid, NotFound

log = logging.getLogger(__name__)

STATUSES = ("pending", "in_progress", "resolved")
COUNTER = "tickets"
FIRST_NUMBER = 1001
CAS_RETRIES = 100


@dataclass
class Ticket:
    ticket_id: str
    conversation_id: str
    text: str
    language: str
    channel: str
    reason: str  # why no person took the chat: closed | offline | timeout | waiting (left the queue)
    status: str = "pending"
    created_at: float = 0.0
    updated_at: float = 0.0
    agent: str | None = None  # who worked on it last
    replies: list[dict[str, Any]] = field(default_factory=list)
    reply_by: float | None = None  # the channel's reply-by promise (handoff/promise.py)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Tickets:
    def __init__(self, kv: KeyValue, trackers: TrackerStore) -> None:
        self.kv = kv
        self.trackers = trackers

    async def create(self, conversation_id: str, text: str, language: str, channel: str, reason: str,
                     reply_by: float | None = None) -> Ticket:
        """A new ticket, stored and listed under its conversation; raises (never returns a ticket that is not
        stored) if the store fails."""
        now = time.time()
        while True:
            ticket_id = f"T{FIRST_NUMBER - 1 + await self.kv.incr(COUNTER)}"
            ticket = Ticket(ticket_id, conversation_id, text, language, channel, reason, created_at=now,
                            updated_at=now, reply_by=reply_by)
            # Written only if absent: a number is never reused, even over tickets a store kept from before
            # this counter (their numbers are skipped).
            if await self.kv.cas(f"ticket:{ticket_id}", None, ticket.as_dict()):
                break
            log.warning("ticket number %s is taken already; trying the next one", ticket_id)
        for _ in range(CAS_RETRIES):
            current = await self.kv.get(f"conv-tickets:{conversation_id}")
            ids = [*(current or {}).get("ids", []), ticket.ticket_id]
            if await self.kv.cas(f"conv-tickets:{conversation_id}", current, {"ids": ids}):
                return ticket
        raise RuntimeError(f"could not list ticket {ticket.ticket_id} under conversation {conversation_id}")

    async def get(self, ticket_id: str) -> Ticket | None:
        data = await self.kv.get(f"ticket:{ticket_id}")
        return Ticket(**data) if data else None

    async def of_conversation(self, conversation_id: str) -> list[Ticket]:
        ids = (await self.kv.get(f"conv-tickets:{conversation_id}") or {}).get("ids", [])
        found = [await self.get(i) for i in ids]
        return [t for t in found if t is not None]

    async def all(self, status: str | None = None) -> list[Ticket]:
        tickets = [Ticket(**data) for _, data in await self.kv.scan("ticket:")]
        return sorted((t for t in tickets if status in (None, t.status)), key=lambda t: -t.created_at)

    async def forget(self, conversation_id: str) -> int:
        """Delete the conversation's tickets (an erasure request): those listed under it, and any that is not (a
        worker stopped between writing a ticket and listing it); returns how many."""
        ids = {t.ticket_id for t in await self.of_conversation(conversation_id)}
        ids |= {t.ticket_id for t in await self.all() if t.conversation_id == conversation_id}
        for ticket_id in ids:
            await self.kv.delete(f"ticket:{ticket_id}")
        await self.kv.delete(f"conv-tickets:{conversation_id}")
        return len(ids)

    async def answer(self, ticket_id: str, account: AgentAccount, status: str | None = None,
                     reply: str | None = None) -> Ticket:
        """Change a ticket's status and/or answer it; the answer goes to the shopper's conversation."""
        ticket = await self._update(ticket_id, account.username, status, reply)
        if reply:
            await self.trackers.append(ticket.conversation_id, [
                {"event": ev.AGENT_MESSAGE, "timestamp": time.time(), "text": reply, "agent": account.username,
                 "agent_name": account.name, "ticket_id": ticket.ticket_id}])
        return ticket

    async def _update(self, ticket_id: str, agent: str, status: str | None, reply: str | None) -> Ticket:
        if status is not None and status not in STATUSES:
            raise Invalid(f"status must be one of {', '.join(STATUSES)}")
        for _ in range(CAS_RETRIES):
            data = await self.kv.get(f"ticket:{ticket_id}")
            if data is None:
                raise NotFound("unknown ticket")
            ticket = Ticket(**{**data, "replies": list(data.get("replies", []))})  # data stays the expected value
            ticket.agent = agent
            ticket.updated_at = time.time()
            if reply:
                ticket.replies.append({"agent": agent, "text": reply, "at": ticket.updated_at})
                if status is None and ticket.status == "pending":
                    ticket.status = "in_progress"
            if status is not None:
                ticket.status = status
            if await self.kv.cas(f"ticket:{ticket_id}", data, ticket.as_dict()):
                return ticket
        raise RuntimeError(f"could not update ticket {ticket_id} (too much contention)")
