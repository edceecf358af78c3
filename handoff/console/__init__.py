"""The agent console: its pages (`/console`), the agent API (`/api/agent/*`) and the live WebSocket.

    web.py            shared: the logged-in agent, JSON errors (refusal → status), security headers
    auth.py           login and logout, pages and assets, the agent's own status
    conversations.py  the queue, conversations and what agents do with them
    desk.py           canned replies, tickets, statistics
    live.py           the WebSocket
"""

from __future__ import annotations

from aiohttp.web import RouteDef

from handoff.console import auth, conversations, desk, live

routes: list[RouteDef] = [*auth.routes, *conversations.routes, *desk.routes, *live.routes]
