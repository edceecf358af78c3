"""Agent presence as routing sees it: who is on duty right now, with their languages, groups, capacity and load.

An agent's status is the one they chose (online, away, offline), except that a console not seen for
presence_ttl_s counts as offline. A status change wakes the queue: a new online agent may take someone at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from handoff.agents import STATUSES, AgentAccount, AgentDirectory
from handoff.errors import Invalid, NotFound
from handoff.loads import AgentLoads
from handoff.routing import OnDuty


class Roster:
    def __init__(self, agents: AgentDirectory, loads: AgentLoads, presence_ttl_s: float,
                 now: Callable[[], float] = time.time, on_change: Callable[[], None] = lambda: None) -> None:
        self.agents = agents
        self.loads = loads
        self.presence_ttl_s = presence_ttl_s
        self.now = now
        self.on_change = on_change

    async def on_duty(self, now: float | None = None) -> list[OnDuty]:
        """Every agent with their effective status (offline ones included) and how many chats they hold."""
        now = self.now() if now is None else now
        presences = await self.agents.presences()
        loads = await self.loads.all()
        return [OnDuty(a.username, a.name, presences[a.username].effective(now, self.presence_ttl_s)
                       if a.username in presences else "offline", a.languages, a.groups, a.capacity,
                       len(loads.get(a.username, [])))
                for a in await self.agents.all()]

    async def chosen_status(self, username: str) -> str:
        """The status the agent picked (what their console shows)."""
        return (await self.agents.presence(username)).status

    async def effective_status(self, username: str) -> str:
        """The status routing believes: offline once the agent's console has gone quiet."""
        return (await self.agents.presence(username)).effective(self.now(), self.presence_ttl_s)

    async def set_status(self, account: AgentAccount, status: str) -> None:
        if status not in STATUSES:
            raise Invalid(f"status must be one of {', '.join(STATUSES)}")
        await self.agents.set_status(account.username, status, self.now())
        self.on_change()

    async def account(self, username: str) -> AgentAccount:
        account = await self.agents.get(username)
        if account is None:
            raise NotFound(f"unknown agent {username!r}")
        return account
