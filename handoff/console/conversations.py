"""The conversation API: the queue, open conversations, one conversation, and what agents do with it (claim,
reply, note, transfer, close, typing; an admin may erase it), plus the colleagues a conversation can be transferred
to."""

from __future__ import annotations

from aiohttp import web

from bot.http import HTTPError, read_json
from handoff.agents import AgentAccount
from handoff.app_keys import ERASE_CONVERSATION
from handoff.console.web import agent_api, handoff, json_response, string_fields
from handoff.errors import Busy, Forbidden, NotFound

routes = web.RouteTableDef()


async def _text_body(request: web.Request) -> str:
    [text] = await string_fields(request, ("text",), 'body must be {"text": "…"}')
    if text is None:
        raise HTTPError(400, 'body must be {"text": "…"}')
    return text


@routes.get("/api/agent/agents")
@agent_api
async def api_agents(request: web.Request, account: AgentAccount) -> web.Response:
    """Colleagues (for transfers): status, load, capacity, languages, groups."""
    return json_response(await handoff(request).views.colleagues())


@routes.get("/api/agent/queue")
@agent_api
async def api_queue(request: web.Request, account: AgentAccount) -> web.Response:
    return json_response(await handoff(request).views.queue())


@routes.get("/api/agent/conversations")
@agent_api
async def api_conversations(request: web.Request, account: AgentAccount) -> web.Response:
    mine = request.query.get("mine") in ("1", "true", "yes")
    return json_response(await handoff(request).views.open_conversations(account, mine))


@routes.get("/api/agent/conversations/{cid}")
@agent_api
async def api_conversation(request: web.Request, account: AgentAccount) -> web.Response:
    return json_response(await handoff(request).views.conversation(request.match_info["cid"], account))


@routes.delete("/api/agent/conversations/{cid}")
@agent_api
async def api_erase(request: web.Request, account: AgentAccount) -> web.Response:
    """Delete everything kept about the conversation (the shopper asked); admins only, and audited."""
    if not account.is_admin:
        raise Forbidden("only an admin may delete a conversation's data")
    erase = request.app.get(ERASE_CONVERSATION)
    if erase is None:
        raise Busy("erasure is not available on this server")
    cid = request.match_info["cid"]
    removed = await erase(cid, f"agent:{account.username}")
    if removed is None:
        raise NotFound("unknown conversation")
    return json_response({"conversation_id": cid, "erased": True, "removed": removed})


@routes.post("/api/agent/conversations/{cid}/claim")
@agent_api
async def api_claim(request: web.Request, account: AgentAccount) -> web.Response:
    cid = request.match_info["cid"]
    stored = await handoff(request).queue.claim(cid, account)
    return json_response({"conversation_id": cid, "state": "assigned", "events": stored})


@routes.post("/api/agent/conversations/{cid}/messages")
@agent_api
async def api_message(request: web.Request, account: AgentAccount) -> web.Response:
    event = await handoff(request).chat.send(request.match_info["cid"], account, await _text_body(request))
    return json_response(event, status=201)


@routes.post("/api/agent/conversations/{cid}/notes")
@agent_api
async def api_note(request: web.Request, account: AgentAccount) -> web.Response:
    event = await handoff(request).chat.note(request.match_info["cid"], account, await _text_body(request))
    return json_response(event, status=201)


@routes.post("/api/agent/conversations/{cid}/transfer")
@agent_api
async def api_transfer(request: web.Request, account: AgentAccount) -> web.Response:
    to_agent, to_group = await string_fields(request, ("agent", "group"),
                                             'body must be {"agent": "name"} or {"group": "name"}')
    cid = request.match_info["cid"]
    stored = await handoff(request).queue.transfer(cid, account, to_agent, to_group)
    return json_response({"conversation_id": cid, "events": stored})


@routes.post("/api/agent/conversations/{cid}/close")
@agent_api
async def api_close(request: web.Request, account: AgentAccount) -> web.Response:
    [resolution] = await string_fields(request, ("resolution",), 'body must be {"resolution": "…"} or empty')
    cid = request.match_info["cid"]
    stored = await handoff(request).queue.close(cid, account, resolution)
    return json_response({"conversation_id": cid, "state": "closed", "events": stored})


@routes.post("/api/agent/conversations/{cid}/typing")
@agent_api
async def api_typing(request: web.Request, account: AgentAccount) -> web.Response:
    body = await read_json(request)
    await handoff(request).chat.typing(request.match_info["cid"], account,
                                       bool(isinstance(body, dict) and body.get("on")))
    return json_response({"ok": True})
