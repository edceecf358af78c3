"""A conversation's handoff record: one small document per open handoff (`open:<conversation id>`) in the
key/value store.

A record exists from `handoff_requested` until the handoff ends (closed, cancelled, timed out); its `state` is
"queued" or "assigned". The tracker's events stay the history; the record is the index the queue, the routing
and the console read, and the thing agents compete for: every write is a compare-and-set (create from nothing,
replace the value read, remove the value read), so of two agents claiming one conversation (on one worker or
two) exactly one wins.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from bot.stores import KeyValue

OPEN = "open:"


@dataclass(frozen=True)
class HandoffRecord:
    conversation_id: str
    state: str  # "queued" | "assigned"
    priority: str
    rank: int  # index of the priority class: lower is served first
    reason: str
    language: str
    channel: str
    group: str | None
    requested_at: float
    enqueued_at: float  # the queue order inside a priority class (kept on transfer to a group)
    queued_at: float  # when it last joined the queue: the no-answer timeout and group overflow count from here
    agent: str | None = None
    agent_name: str | None = None
    assigned_at: float | None = None
    told_position: int | None = None  # what the shopper was last told, so only changes are announced
    told_eta_s: int | None = None  # None: nobody on duty, no wait to estimate
    transferred_from: list[str] = field(default_factory=list)
    reply_by: float | None = None  # the channel's reply-by promise (handoff/promise.py), set once at the request
    replied_at: float | None = None  # a person's first message since the request: the promise is kept or broken
    traditional: bool = False  # the shopper writes Chinese in traditional characters: so are the notices worded

    @property
    def order(self) -> tuple[int, float, str]:
        return self.rank, self.enqueued_at, self.conversation_id

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def but(self, **changes: Any) -> HandoffRecord:
        return replace(self, **changes)


def _record(data: dict[str, Any]) -> HandoffRecord:
    return HandoffRecord(**data)


class HandoffRecords:
    def __init__(self, kv: KeyValue) -> None:
        self.kv = kv

    async def get(self, conversation_id: str) -> HandoffRecord | None:
        data = await self.kv.get(OPEN + conversation_id)
        return _record(data) if data else None

    async def open(self) -> list[HandoffRecord]:
        return [_record(data) for _, data in await self.kv.scan(OPEN)]

    async def waiting(self) -> list[HandoffRecord]:
        """The queue, in service order: priority class, then first come first served."""
        return sorted((r for r in await self.open() if r.state == "queued"), key=lambda r: r.order)

    async def create(self, record: HandoffRecord) -> bool:
        """Store a new record; False if the conversation has one already."""
        return await self.kv.cas(OPEN + record.conversation_id, None, record.as_dict())

    async def replace(self, old: HandoffRecord, new: HandoffRecord) -> bool:
        """Swap `old` for `new`; False if the record is no longer `old` (someone else changed it first)."""
        return await self.kv.cas(OPEN + old.conversation_id, old.as_dict(), new.as_dict())

    async def remove(self, old: HandoffRecord) -> bool:
        """Delete the record if it is still `old`."""
        return await self.kv.cas(OPEN + old.conversation_id, old.as_dict(), None)

    async def forget(self, conversation_id: str) -> HandoffRecord | None:
        """Delete the conversation's record whatever it holds (an erasure request, under the conversation's lock);
        returns the record it was."""
        record = await self.get(conversation_id)
        if record is not None:
            await self.kv.delete(OPEN + conversation_id)
        return record
