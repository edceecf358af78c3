"""What an agent may do with a conversation, said once.

Write (reply, type, transfer, close): the handoff is open and assigned to the agent, or the agent is an admin.
Read: admins read everything; agents read the queue, their own conversations (now or before) and conversations
with a ticket (tickets are everyone's work).
"""

from __future__ import annotations

from bot.dialogue import events as ev
from bot.stores import TrackerStore
from handoff.agents import AgentAccount
from handoff.errors import Conflict, Forbidden, HandoffError, NotFound
from handoff.records import HandoffRecord, HandoffRecords


def write_refusal(record: HandoffRecord, account: AgentAccount) -> HandoffError | None:
    """Why the agent may not write into this open conversation, or None if they may."""
    if record.state != "assigned":
        return Conflict("the conversation is waiting in the queue: claim it first")
    if record.agent != account.username and not account.is_admin:
        return Forbidden(f"the conversation is assigned to {record.agent_name or record.agent}")
    return None


class Permissions:
    def __init__(self, records: HandoffRecords, trackers: TrackerStore) -> None:
        self.records = records
        self.trackers = trackers

    async def open_record(self, conversation_id: str) -> HandoffRecord:
        """The conversation's open handoff; NotFound for an unknown conversation, Conflict for a closed one."""
        record = await self.records.get(conversation_id)
        if record is None:
            if not await self.trackers.exists(conversation_id):
                raise NotFound("unknown conversation")
            raise Conflict("the conversation is closed")
        return record

    async def writable(self, conversation_id: str, account: AgentAccount) -> HandoffRecord:
        """The open handoff the agent may write into, or the reason they may not (raised)."""
        record = await self.open_record(conversation_id)
        if refusal := write_refusal(record, account):
            raise refusal
        return record

    @staticmethod
    def may_write(record: HandoffRecord | None, account: AgentAccount) -> bool:
        return record is not None and write_refusal(record, account) is None

    async def may_read(self, conversation_id: str, account: AgentAccount,
                       events: list[ev.Event] | None = None) -> bool:
        if account.is_admin:
            return True
        record = await self.records.get(conversation_id)
        if record is not None and (record.state == "queued" or record.agent == account.username):
            return True
        events = events if events is not None else await self.trackers.events(conversation_id)
        return any((e.get("event") == ev.AGENT_ASSIGNED and e.get("agent") == account.username)
                   or e.get("event") == ev.TICKET_CREATED for e in events)

    async def readable(self, conversation_id: str, account: AgentAccount,
                       events: list[ev.Event] | None = None) -> None:
        """Raise NotFound / Forbidden unless the agent may read the conversation."""
        if events is None and not await self.trackers.exists(conversation_id):
            raise NotFound("unknown conversation")
        if not await self.may_read(conversation_id, account, events):
            raise Forbidden("not your conversation")
