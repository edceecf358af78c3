"""The handoff records: one small document per open handoff (`open:<conversation id>`) in the key/value store.

A record exists from `handoff_requested` until the handoff ends (closed, cancelled, timed out); its `state` is
"queued" or "assigned". The tracker's events stay the history; the record is the index the queue, the routing
and the console read, and the thing agents compete for: every change is a compare-and-set, so of two agents
claiming one conversation (on one worker or two) exactly one wins. Agents' open conversations are counted in
`load:<agent>`, also changed only by compare-and-set, so capacity holds across workers.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from bot.stores import KeyValue

OPEN = "open:"
LOAD = "load:"
HANDLING = "handoff-stats:handling"
CAS_RETRIES = 50


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
    told_eta_s: int | None = None
    transferred_from: list[str] = field(default_factory=list)

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
        return await self.kv.cas(OPEN + record.conversation_id, None, record.as_dict())

    async def replace(self, old: HandoffRecord, new: HandoffRecord) -> bool:
        return await self.kv.cas(OPEN + old.conversation_id, old.as_dict(), new.as_dict())

    async def remove(self, old: HandoffRecord) -> bool:
        return await self.kv.cas(OPEN + old.conversation_id, old.as_dict(), None)

    # -- agent load: which open conversations each agent holds ----------------------------------------------

    async def load(self, agent: str) -> list[str]:
        return list((await self.kv.get(LOAD + agent) or {}).get("conversations", []))

    async def loads(self) -> dict[str, list[str]]:
        return {key.removeprefix(LOAD): data.get("conversations", []) for key, data in await self.kv.scan(LOAD)}

    async def reserve(self, agent: str, conversation_id: str, capacity: int | None) -> bool:
        """Count the conversation against the agent, if under capacity (None: no limit, a manual claim)."""
        for _ in range(CAS_RETRIES):
            current = await self.kv.get(LOAD + agent)
            held = list((current or {}).get("conversations", []))
            if conversation_id in held:
                return True
            if capacity is not None and len(held) >= capacity:
                return False
            if await self.kv.cas(LOAD + agent, current, {"conversations": [*held, conversation_id]}):
                return True
        return False

    async def release(self, agent: str, conversation_id: str) -> None:
        for _ in range(CAS_RETRIES):
            current = await self.kv.get(LOAD + agent)
            held = list((current or {}).get("conversations", []))
            if conversation_id not in held:
                return
            held.remove(conversation_id)
            if await self.kv.cas(LOAD + agent, current, {"conversations": held} if held else None):
                return

    # -- recent handling times, for the wait estimate ---------------------------------------------------------

    async def handling_times(self) -> list[float]:
        return list((await self.kv.get(HANDLING) or {}).get("recent", []))

    async def add_handling_time(self, seconds: float, keep: int) -> None:
        for _ in range(CAS_RETRIES):
            current = await self.kv.get(HANDLING)
            recent = [*(current or {}).get("recent", []), round(seconds, 3)][-keep:]
            if await self.kv.cas(HANDLING, current, {"recent": recent, "updated_at": time.time()}):
                return
