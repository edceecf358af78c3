"""Agents' loads: which open conversations each agent holds (`load:<agent>`), so capacity holds across workers.

Changed only by compare-and-set, retried when another worker wrote in between.
"""

from __future__ import annotations

from bot.stores import KeyValue

LOAD = "load:"
CAS_RETRIES = 50


class AgentLoads:
    def __init__(self, kv: KeyValue) -> None:
        self.kv = kv

    async def all(self) -> dict[str, list[str]]:
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

    async def forget(self, conversation_id: str) -> int:
        """Take the conversation off every agent's load (an erasure request); returns from how many."""
        holders = [agent for agent, held in (await self.all()).items() if conversation_id in held]
        for agent in holders:
            await self.release(agent, conversation_id)
        return len(holders)
