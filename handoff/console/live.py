"""The console's live WebSocket: events from the hub (handoff/hub.py) out, typing and keep-alive pings in."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from aiohttp import WSMsgType, web

from bot import strict_json, tasks
from handoff.agents import AgentAccount
from handoff.app_keys import HUB
from handoff.console.web import current_agent, handoff
from handoff.errors import HandoffError

routes = web.RouteTableDef()


@routes.get("/api/agent/ws")
async def api_ws(request: web.Request) -> web.StreamResponse:
    """Live events: {"type": "event" | "typing", "conversation_id", "event"}. Send {"type": "typing",
    "conversation_id", "on"} to show the shopper that the agent is typing, {"type": "ping"} to stay present."""
    account = await current_agent(request)
    hub = request.app[HUB]
    socket = web.WebSocketResponse(heartbeat=30, max_msg_size=64 * 1024)
    await socket.prepare(request)
    client = hub.join(account)  # before hello: a console that got hello misses no event after it
    sender: asyncio.Task[None] | None = None
    try:  # a console gone before or during hello must leave the hub too
        await socket.send_json({"type": "hello", "agent": account.username})
        sender = asyncio.get_running_loop().create_task(_pump(socket, client.outbox))
        async for message in socket:
            if message.type == WSMsgType.TEXT:
                await _from_console(request, account, message.data)
    finally:
        hub.leave(client)
        await tasks.stop(sender)
    return socket


async def _pump(socket: web.WebSocketResponse, outbox: asyncio.Queue[dict[str, Any]]) -> None:
    while not socket.closed:
        message = await outbox.get()
        try:
            await socket.send_str(json.dumps(message, ensure_ascii=False))
        except (ConnectionError, RuntimeError):
            return


async def _from_console(request: web.Request, account: AgentAccount, data: str) -> None:
    try:
        message = strict_json.loads(data)
    except strict_json.JSONInputError:
        return
    if not isinstance(message, dict):
        return
    service = handoff(request)
    await service.agents.seen(account.username)
    if message.get("type") == "typing" and isinstance(message.get("conversation_id"), str):
        with contextlib.suppress(HandoffError):  # typing into someone else's chat: just not shown
            await service.chat.typing(message["conversation_id"], account, bool(message.get("on")))
