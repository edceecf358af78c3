"""The agent's desk beside the conversations: canned replies, tickets and statistics."""

from __future__ import annotations

from aiohttp import web

from bot.http import HTTPError
from handoff.agents import AgentAccount
from handoff.app_keys import CANNED
from handoff.console.web import agent_api, handoff, json_response, string_fields

routes = web.RouteTableDef()


@routes.get("/api/agent/canned")
@agent_api
async def api_canned(request: web.Request, account: AgentAccount) -> web.Response:
    language = request.query.get("language", "en")
    matches = request.app[CANNED].search(request.query.get("q", ""), language)
    return json_response([m.as_dict() for m in matches])


@routes.get("/api/agent/tickets")
@agent_api
async def api_tickets(request: web.Request, account: AgentAccount) -> web.Response:
    status = request.query.get("status") or None
    return json_response(await handoff(request).views.tickets_list(status))


@routes.patch("/api/agent/tickets/{ticket_id}")
@agent_api
async def api_ticket_update(request: web.Request, account: AgentAccount) -> web.Response:
    """Change a ticket's status and/or answer it; the answer goes to the shopper's conversation."""
    usage = 'give "status" (pending, in_progress, resolved) and/or a "reply" text'
    status, reply = await string_fields(request, ("status", "reply"), usage)
    if status is None and not reply:
        raise HTTPError(400, usage)
    ticket = await handoff(request).tickets.answer(request.match_info["ticket_id"], account, status, reply)
    return json_response(ticket.as_dict())


@routes.get("/api/agent/stats")
@agent_api
async def api_stats(request: web.Request, account: AgentAccount) -> web.Response:
    try:
        days = min(max(float(request.query.get("days", "30")), 0.01), 365)
    except ValueError:
        raise HTTPError(400, "days must be a number") from None
    return json_response(await handoff(request).views.statistics(days))
