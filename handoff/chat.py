"""What an agent writes into a conversation: messages the shopper reads, private notes, and "typing…"."""

from __future__ import annotations

import logging
import time
from typing import Any

from bot.dialogue import events as ev
from bot.stores import EventBus, TrackerStore
from handoff.agents import AgentAccount
from handoff.errors import Invalid
from handoff.events import event
from handoff.locks import locked
from handoff.permissions import Permissions
from handoff.records import HandoffRecords

log = logging.getLogger(__name__)
MAX_AGENT_TEXT = 5000


def _checked(text: Any) -> str:
    if not isinstance(text, str) or not text.strip():
        raise Invalid("text must be a non-empty string")
    if len(text) > MAX_AGENT_TEXT:
        raise Invalid(f"text is longer than {MAX_AGENT_TEXT} characters")
    return text


class AgentChat:
    def __init__(self, trackers: TrackerStore, bus: EventBus, permissions: Permissions,
                 records: HandoffRecords) -> None:
        self.trackers = trackers
        self.bus = bus
        self.permissions = permissions
        self.records = records

    async def send(self, conversation_id: str, account: AgentAccount, text: str) -> ev.Event:
        """A message to the shopper, from the agent who holds the conversation (or an admin)."""
        text = _checked(text)
        async with locked(self.trackers, conversation_id):
            record = await self.permissions.writable(conversation_id, account)
            stored = await self.trackers.append(conversation_id, [
                event(ev.AGENT_MESSAGE, text=text, agent=account.username, agent_name=account.name)])
            if record.replied_at is None:  # the first reply keeps (or breaks) the reply-by promise
                replied = record.but(replied_at=float(stored[0].get("timestamp") or time.time()))
                if not await self.records.replace(record, replied):
                    log.warning("the handoff record of %s changed meanwhile; its first reply is not marked",
                                conversation_id)
        return stored[0]

    async def note(self, conversation_id: str, account: AgentAccount, text: str) -> ev.Event:
        """A private note (never shown to the shopper), by anyone who may read the conversation."""
        text = _checked(text)
        await self.permissions.readable(conversation_id, account)
        stored = await self.trackers.append(conversation_id, [event(ev.AGENT_NOTE, text=text, agent=account.username)])
        return stored[0]

    async def typing(self, conversation_id: str, account: AgentAccount, on: bool) -> None:
        """Published, never stored: only someone who may write into the conversation types into it."""
        await self.permissions.writable(conversation_id, account)
        await self.bus.publish(conversation_id, {"event": ev.TYPING, "role": "agent", "on": on,
                                                 "agent": account.username, "agent_name": account.name,
                                                 "timestamp": time.time()})
