"""The agent console: its pages (`/console`), the agent API (`/api/agent/*`) and the live WebSocket.

Everything here needs a logged-in agent — a session cookie (HttpOnly, SameSite=Strict) set by the login page or
`POST /api/agent/login`, or the same token as `Authorization: Bearer …` — except the login page and the login
call. Shopper sessions (chat bubble, channels) are different credentials and never open these routes.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import html
import json
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import WSMsgType, web

from bot.dialogue import events as ev
from bot.http import HTTPError, read_json
from bot.language import conversation_language
from handoff import stats
from handoff.agents import STATUSES, AgentAccount, LockedOut
from handoff.app_keys import CANNED, HANDOFF, HUB
from handoff.service import HandoffError, HandoffService
from handoff.tickets import TicketError

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

STATIC = Path(__file__).parent / "static" / "console"
COOKIE = "kefu_console"
ASSETS = {"app.js": "application/javascript", "console.css": "text/css"}
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _service(request: web.Request) -> HandoffService:
    return request.app[HANDOFF]


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda v: json.dumps(v, ensure_ascii=False))


def _secure_headers(response: web.StreamResponse, csp: str = CSP) -> web.StreamResponse:
    response.headers["Content-Security-Policy"] = csp
    response.headers["X-Content-Type-Options"] = "nosniff"
    # same-origin, not no-referrer: with no-referrer Chromium sends `Origin: null` on the login form's POST
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"
    return response


# -- authentication ------------------------------------------------------------------------------------------


def _token(request: web.Request) -> tuple[str | None, bool]:
    """The session token, and whether it came from the cookie (a browser: check the origin of changes)."""
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header.removeprefix("Bearer ").strip(), False
    cookie = request.cookies.get(COOKIE)
    return (cookie, True) if cookie else (None, False)


def _same_origin(request: web.Request) -> bool:
    """Browsers name the page's origin on every cross-site request (and same-site POSTs): it must be ours."""
    origin = request.headers.get("Origin")
    return origin is None or urlsplit(origin).netloc == request.host


async def current_agent(request: web.Request) -> AgentAccount:
    """The logged-in agent, or 401. A cookie-authenticated change must come from the console's own origin."""
    token, from_cookie = _token(request)
    account = await _service(request).agents.session_user(token) if token else None
    if account is None:
        raise HTTPError(401, "log in to the agent console first")
    if from_cookie and (request.method != "GET" or request.path.endswith("/ws")) and not _same_origin(request):
        raise HTTPError(403, "request from another site refused")
    await _service(request).agents.seen(account.username)
    return account


def agent_api(handler: Callable[[web.Request, AgentAccount], Awaitable[web.StreamResponse]]) -> Handler:
    """An /api/agent handler: authenticated, and a refused action becomes its JSON error."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        account = await current_agent(request)
        try:
            return await handler(request, account)
        except HandoffError as exc:
            raise HTTPError(exc.status, exc.message) from None

    wrapped.__name__ = handler.__name__
    wrapped.__doc__ = handler.__doc__
    return wrapped


async def _authenticate(request: web.Request, username: str, password: str) -> AgentAccount | None:
    try:
        return await _service(request).agents.authenticate(username, password)
    except LockedOut as exc:
        raise HTTPError(429, str(exc)) from None


def _set_cookie(request: web.Request, response: web.StreamResponse, token: str) -> None:
    response.set_cookie(COOKIE, token, max_age=int(_service(request).settings.session_ttl_s), path="/",
                        httponly=True, samesite="Strict", secure=request.secure)


# -- pages ---------------------------------------------------------------------------------------------------

_LOGIN_TEXT = {
    "en": {"title": "kefu — agent console", "heading": "Agent console", "username": "Username",
           "password": "Password", "submit": "Log in", "error": "Wrong username or password.",
           "other": "中文", "other_lang": "zh", "hint": "Accounts are made with: kefu agents add NAME"},
    "zh": {"title": "kefu 客服工作台", "heading": "客服工作台", "username": "用户名", "password": "密码",
           "submit": "登录", "error": "用户名或密码错误。", "other": "English", "other_lang": "en",
           "hint": "用 kefu agents add 用户名 创建账号"},
}


def _page_language(request: web.Request) -> str:
    chosen = request.query.get("lang") or request.cookies.get("kefu_lang")
    if chosen in ("zh", "en"):
        return chosen
    return "zh" if request.headers.get("Accept-Language", "").lower().startswith("zh") else "en"


def _login_page(request: web.Request, error: bool = False, status: int = 200) -> web.Response:
    language = _page_language(request)
    words = {k: html.escape(v) for k, v in _LOGIN_TEXT[language].items()}
    page = (STATIC / "login.html").read_text(encoding="utf-8")
    style = (STATIC / "login.css").read_text(encoding="utf-8")
    page = page.replace("{{style}}", style).replace("{{lang}}", language)
    page = page.replace("{{error}}", f'<p class="error" role="alert">{words["error"]}</p>' if error else "")
    for key, value in words.items():
        page = page.replace("{{" + key + "}}", value)
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    response = web.Response(text=page, content_type="text/html", status=status)
    return _secure_headers(response, CSP.replace("style-src 'self'", f"style-src 'sha256-{digest}'"))


@routes.get("/console/login")
async def login_page(request: web.Request) -> web.StreamResponse:
    return _login_page(request)


@routes.post("/console/login")
async def login_form(request: web.Request) -> web.StreamResponse:
    """The login page's form (works without JavaScript): cookie and back to the console, or the page again."""
    if not _same_origin(request):
        raise HTTPError(403, "request from another site refused")
    form = await request.post()
    account = await _authenticate(request, str(form.get("username", "")), str(form.get("password", "")))
    if account is None:
        return _login_page(request, error=True, status=401)
    response = web.HTTPSeeOther("/console")
    _set_cookie(request, response, await _service(request).agents.open_session(account.username))
    raise response


@routes.get("/console")
async def console_page(request: web.Request) -> web.StreamResponse:
    token, _ = _token(request)
    if not token or await _service(request).agents.session_user(token) is None:
        raise web.HTTPFound("/console/login")
    return _secure_headers(web.FileResponse(STATIC / "index.html"))


@routes.get("/console/{asset}")
async def console_asset(request: web.Request) -> web.StreamResponse:
    name = request.match_info["asset"]
    await current_agent(request)
    if name not in ASSETS:
        raise HTTPError(404, "not found")
    response = web.Response(body=(STATIC / name).read_bytes(), content_type=ASSETS[name], charset="utf-8")
    return _secure_headers(response)


# -- the agent API -------------------------------------------------------------------------------------------


@routes.post("/api/agent/login")
async def api_login(request: web.Request) -> web.Response:
    body = await read_json(request)
    if not isinstance(body, dict) or not isinstance(body.get("username"), str) \
            or not isinstance(body.get("password"), str):
        raise HTTPError(400, 'body must be {"username": "…", "password": "…"}')
    service = _service(request)
    account = await _authenticate(request, body["username"], body["password"])
    if account is None:
        raise HTTPError(401, "wrong username or password")
    token = await service.agents.open_session(account.username)
    response = _json({"token": token, "agent": account.public()})
    _set_cookie(request, response, token)
    return response


@routes.post("/api/agent/logout")
@agent_api
async def api_logout(request: web.Request, account: AgentAccount) -> web.Response:
    service = _service(request)
    token, _ = _token(request)
    if token:
        await service.agents.close_session(token)
    await service.set_status(account, "offline")
    response = _json({"ok": True})
    response.del_cookie(COOKIE, path="/")
    return response


@routes.get("/api/agent/me")
@agent_api
async def api_me(request: web.Request, account: AgentAccount) -> web.Response:
    service = _service(request)
    presence = await service.agents.presence(account.username)
    return _json({"agent": account.public(), "status": presence.status,
                  "groups": sorted(service.settings.groups), "resolutions": service.settings.resolutions,
                  "timezone": service.settings.timezone, "hours": service.hours.describe_week(),
                  "open_now": service.hours.is_open(service.now())})


@routes.put("/api/agent/status")
@agent_api
async def api_status(request: web.Request, account: AgentAccount) -> web.Response:
    body = await read_json(request)
    status = body.get("status") if isinstance(body, dict) else None
    if status not in STATUSES:
        raise HTTPError(400, f"status must be one of {', '.join(STATUSES)}")
    await _service(request).set_status(account, status)
    return _json({"status": status})


@routes.get("/api/agent/agents")
@agent_api
async def api_agents(request: web.Request, account: AgentAccount) -> web.Response:
    """Colleagues (for transfers): status, load, capacity, languages, groups."""
    return _json([{"username": a.username, "name": a.name, "status": a.status, "load": a.load,
                   "capacity": a.capacity, "languages": a.languages, "groups": a.groups}
                  for a in await _service(request).roster()])


@routes.get("/api/agent/queue")
@agent_api
async def api_queue(request: web.Request, account: AgentAccount) -> web.Response:
    service = _service(request)
    now = service.now()
    return _json([{"conversation_id": r.conversation_id, "position": i, "priority": r.priority,
                   "reason": r.reason, "language": r.language, "channel": r.channel,
                   "waiting_s": round(now - r.queued_at, 1), "group": r.group, "eta_s": r.told_eta_s}
                  for i, r in enumerate(await service.records.waiting(), start=1)])


@routes.get("/api/agent/conversations")
@agent_api
async def api_conversations(request: web.Request, account: AgentAccount) -> web.Response:
    service = _service(request)
    now = service.now()
    mine = request.query.get("mine") in ("1", "true", "yes")
    records = sorted(await service.records.open(), key=lambda r: (r.state != "queued", r.order))
    return _json([{"conversation_id": r.conversation_id, "state": r.state, "agent": r.agent,
                   "agent_name": r.agent_name, "channel": r.channel, "language": r.language,
                   "priority": r.priority, "reason": r.reason, "group": r.group,
                   "waiting_s": round(now - r.queued_at, 1), "requested_at": r.requested_at,
                   "assigned_at": r.assigned_at}
                  for r in records if not mine or r.agent == account.username])


def _order_numbers(events: list[ev.Event]) -> list[str]:
    found: list[str] = []
    for event in events:
        values = []
        if event.get("event") == "user":
            values = [e.get("value") for e in (event.get("parse_data") or {}).get("entities") or []
                      if e.get("entity") == "order_id"]
        elif event.get("event") == "slot" and event.get("name") == "order_id":
            values = [event.get("value")]
        found += [str(v) for v in values if v and str(v) not in found]
    return found


@routes.get("/api/agent/conversations/{cid}")
@agent_api
async def api_conversation(request: web.Request, account: AgentAccount) -> web.Response:
    """Everything an agent needs to take over: transcript, why the bot gave up and its best guesses, and what
    the shop knows about the shopper."""
    service = _service(request)
    cid = request.match_info["cid"]
    events = await service.stores.trackers.events(cid)
    if not events:
        raise HTTPError(404, "unknown conversation")
    if not await service.can_read(cid, account, events):
        raise HTTPError(403, "not your conversation")
    record = await service.records.get(cid)
    meta = await service.stores.trackers.get_meta(cid)
    requested = next((e for e in reversed(events) if e.get("event") == ev.HANDOFF_REQUESTED), None)
    language = conversation_language(events, "en")
    slots = {e["name"]: e.get("value") for e in events if e.get("event") == "slot" and e.get("name")}
    tickets = await service.tickets.of_conversation(cid)
    return _json({
        "conversation_id": cid,
        "state": record.state if record else "closed" if requested else "bot",
        "agent": record.agent if record else None,
        "agent_name": record.agent_name if record else None,
        "priority": record.priority if record else None,
        "group": record.group if record else None,
        "waiting_s": round(service.now() - record.queued_at, 1) if record else None,
        "reason": (requested or {}).get("reason"),
        "candidates": ((requested or {}).get("candidates") or [])[:3],
        "channel": meta.get("channel") or (record.channel if record else None),
        "language": language,
        "can_write": bool(record and record.state == "assigned"
                          and (record.agent == account.username or account.is_admin)),
        "details": {"channel": meta.get("channel"), "language": language, "sender": meta.get("sender"),
                    "tier": meta.get("tier"), "order_numbers": _order_numbers(events),
                    "wechat": meta.get("wechat"), "messenger": meta.get("messenger"),
                    "slots": {k: v for k, v in slots.items() if v is not None and k != "requested_slot"}},
        "tickets": [t.as_dict() for t in tickets],
        "events": events,
    })


@routes.post("/api/agent/conversations/{cid}/claim")
@agent_api
async def api_claim(request: web.Request, account: AgentAccount) -> web.Response:
    stored = await _service(request).claim(request.match_info["cid"], account)
    return _json({"conversation_id": request.match_info["cid"], "state": "assigned", "events": stored})


async def _text_body(request: web.Request) -> str:
    body = await read_json(request)
    if not isinstance(body, dict) or not isinstance(body.get("text"), str):
        raise HTTPError(400, 'body must be {"text": "…"}')
    return body["text"]


@routes.post("/api/agent/conversations/{cid}/messages")
@agent_api
async def api_message(request: web.Request, account: AgentAccount) -> web.Response:
    event = await _service(request).send(request.match_info["cid"], account, await _text_body(request))
    return _json(event, status=201)


@routes.post("/api/agent/conversations/{cid}/notes")
@agent_api
async def api_note(request: web.Request, account: AgentAccount) -> web.Response:
    event = await _service(request).note(request.match_info["cid"], account, await _text_body(request))
    return _json(event, status=201)


@routes.post("/api/agent/conversations/{cid}/transfer")
@agent_api
async def api_transfer(request: web.Request, account: AgentAccount) -> web.Response:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise HTTPError(400, 'body must be {"agent": "name"} or {"group": "name"}')
    to_agent, to_group = body.get("agent"), body.get("group")
    if not all(v is None or isinstance(v, str) for v in (to_agent, to_group)):
        raise HTTPError(400, "agent and group are names (strings)")
    stored = await _service(request).transfer(request.match_info["cid"], account, to_agent, to_group)
    return _json({"conversation_id": request.match_info["cid"], "events": stored})


@routes.post("/api/agent/conversations/{cid}/close")
@agent_api
async def api_close(request: web.Request, account: AgentAccount) -> web.Response:
    body = await read_json(request) if request.can_read_body else {}
    resolution = body.get("resolution") if isinstance(body, dict) else None
    if resolution is not None and not isinstance(resolution, str):
        raise HTTPError(400, "resolution is a string")
    stored = await _service(request).close(request.match_info["cid"], account, resolution)
    return _json({"conversation_id": request.match_info["cid"], "state": "closed", "events": stored})


@routes.post("/api/agent/conversations/{cid}/typing")
@agent_api
async def api_typing(request: web.Request, account: AgentAccount) -> web.Response:
    body = await read_json(request)
    await _publish_typing(request, account, request.match_info["cid"], bool(isinstance(body, dict)
                                                                             and body.get("on")))
    return _json({"ok": True})


async def _publish_typing(request: web.Request, account: AgentAccount, cid: str, on: bool) -> None:
    """Ephemeral (published, never stored): only the agent who holds the conversation types into it."""
    service = _service(request)
    record = await service.records.get(cid)
    if record is None or record.state != "assigned" or (record.agent != account.username and not account.is_admin):
        raise HandoffError(409 if record is None or record.state != "assigned" else 403,
                           "you are not in this conversation")
    await service.stores.bus.publish(cid, {"event": ev.TYPING, "role": "agent", "on": on,
                                           "agent": account.username, "agent_name": account.name,
                                           "timestamp": time.time()})


@routes.get("/api/agent/canned")
@agent_api
async def api_canned(request: web.Request, account: AgentAccount) -> web.Response:
    language = request.query.get("language", "en")
    matches = request.app[CANNED].search(request.query.get("q", ""), language)
    return _json([m.as_dict() for m in matches])


@routes.get("/api/agent/tickets")
@agent_api
async def api_tickets(request: web.Request, account: AgentAccount) -> web.Response:
    status = request.query.get("status") or None
    return _json([t.as_dict() for t in await _service(request).tickets.all(status)])


@routes.patch("/api/agent/tickets/{ticket_id}")
@agent_api
async def api_ticket_update(request: web.Request, account: AgentAccount) -> web.Response:
    """Change a ticket's status and/or answer it; the answer goes to the shopper's conversation."""
    body = await read_json(request)
    if not isinstance(body, dict):
        raise HTTPError(400, 'body must be {"status": "…"} and/or {"reply": "…"}')
    status, reply = body.get("status"), body.get("reply")
    if not all(v is None or isinstance(v, str) for v in (status, reply)) or (status is None and not reply):
        raise HTTPError(400, 'give "status" (pending, in_progress, resolved) and/or a "reply" text')
    service = _service(request)
    ticket = await service.tickets.get(request.match_info["ticket_id"])
    if ticket is None:
        raise HTTPError(404, "unknown ticket")
    try:
        ticket = await service.tickets.update(ticket.ticket_id, account.username, status, reply)
    except TicketError as exc:
        raise HTTPError(400, str(exc)) from None
    if reply:
        await service.stores.trackers.append(ticket.conversation_id, [
            {"event": ev.AGENT_MESSAGE, "timestamp": time.time(), "text": reply, "agent": account.username,
             "agent_name": account.name, "ticket_id": ticket.ticket_id}])
    return _json(ticket.as_dict())


@routes.get("/api/agent/stats")
@agent_api
async def api_stats(request: web.Request, account: AgentAccount) -> web.Response:
    service = _service(request)
    try:
        days = min(max(float(request.query.get("days", "30")), 0.01), 365)
    except ValueError:
        raise HTTPError(400, "days must be a number") from None
    tickets = await service.tickets.all()
    counts = {s: sum(t.status == s for t in tickets) for s in ("pending", "in_progress", "resolved")}
    figures = await stats.compute(service.stores.trackers, service.settings.timezone, days, service.now(), counts)
    figures["queue_length"] = len(await service.records.waiting())
    figures["agents_online"] = sum(a.status == "online" for a in await service.roster())
    return _json(figures)


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
            if message.type != WSMsgType.TEXT:
                continue
            await _from_console(request, account, message.data)
    finally:
        hub.leave(client)
        if sender is not None:
            sender.cancel()
    return socket


async def _pump(socket: web.WebSocketResponse, outbox: Any) -> None:
    while not socket.closed:
        message = await outbox.get()
        try:
            await socket.send_str(json.dumps(message, ensure_ascii=False))
        except (ConnectionError, RuntimeError):
            return


async def _from_console(request: web.Request, account: AgentAccount, data: str) -> None:
    try:
        message = json.loads(data)
    except ValueError:
        return
    if not isinstance(message, dict):
        return
    await _service(request).agents.seen(account.username)
    if message.get("type") == "typing" and isinstance(message.get("conversation_id"), str):
        with contextlib.suppress(HandoffError):  # typing into someone else's chat: just not shown
            await _publish_typing(request, account, message["conversation_id"], bool(message.get("on")))
