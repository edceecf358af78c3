"""The HTTP half of a page load: open (or resume) a session, then read the conversation so far.

`POST /api/widget/session {token?}` → `{token, conversation_id, last_seq, new, limits, …}`: the stored token's
session if it is still valid, else a brand-new one (S1, S2). `GET /api/widget/history?after_seq=N` with
`Authorization: Bearer <token>` → the latest frames after N (the same frames the socket sends), so a reload or
another page of the shop shows the conversation at once; the socket then resumes from `last_seq`.
"""

from __future__ import annotations

from aiohttp import web

from bot.app_keys import RATE_LIMITS, STORES
from bot.channels.widget import protocol
from bot.channels.widget.keys import WIDGET
from bot.channels.widget.origins import preflight, with_cors
from bot.channels.widget.sessions import Session, bearer
from bot.channels.widget.settings import WidgetSettings
from bot.http import HTTPError, json_dumps, read_json
from bot.ratelimit import Rate

routes = web.RouteTableDef()
NEW_SESSIONS = Rate(per_minute=30, burst=10)  # per client address


def settings_of(request: web.Request) -> WidgetSettings:
    return request.app[WIDGET].settings


async def session_of(request: web.Request) -> Session:
    """The session named by the `Authorization: Bearer` token; 401 if there is none (get a new one)."""
    session = await request.app[WIDGET].open.sessions.resolve(bearer(request.headers.get("Authorization")))
    if session is None:
        raise HTTPError(401, "unknown or expired session: POST /api/widget/session for a new one")
    return session


@routes.post("/api/widget/session")
@with_cors(settings_of)
async def open_session(request: web.Request) -> web.Response:
    widget = request.app[WIDGET]
    body = await read_json(request, max_bytes=1024) if request.can_read_body else {}
    token = body.get("token") if isinstance(body, dict) else None
    session = await widget.open.sessions.resolve(token)
    if session is None:
        await request.app[RATE_LIMITS].check(request.remote, f"widget:sessions:{request.remote}", NEW_SESSIONS,
                                             "too many new conversations from this address; try again in a minute")
        session = await widget.open.sessions.issue()
        await request.app[STORES].trackers.set_meta(session.conversation_id, channel="widget",
                                                    sender=session.conversation_id)
    events = await request.app[STORES].trackers.events(session.conversation_id)
    settings = widget.settings
    return web.json_response({
        "token": session.token,
        "conversation_id": session.conversation_id,
        "new": session.new,
        "last_seq": events[-1]["seq"] if events else 0,
        "state": protocol.conversation_state(events),
        "limits": {"max_text_chars": settings.max_text_chars, "max_upload_bytes": settings.max_upload_bytes,
                   "upload_types": settings.upload_types, "max_attachments": protocol.MAX_ATTACHMENTS},
    }, headers={"Cache-Control": "no-store"}, dumps=json_dumps)


@routes.get("/api/widget/history")
@with_cors(settings_of)
async def history(request: web.Request) -> web.Response:
    session = await session_of(request)
    settings = settings_of(request)
    try:
        after_seq = max(0, int(request.query.get("after_seq", "0")))
        limit = min(settings.history_limit, max(1, int(request.query.get("limit", settings.history_limit))))
    except ValueError:
        raise HTTPError(400, "after_seq and limit must be integers") from None
    events = await request.app[STORES].trackers.events(session.conversation_id)
    frames = protocol.frames(events, after_seq)
    return web.json_response({
        "conversation_id": session.conversation_id,
        "last_seq": events[-1]["seq"] if events else 0,
        "state": protocol.conversation_state(events),
        "frames": frames[-limit:],
        "has_more": len(frames) > limit,
    }, headers={"Cache-Control": "no-store"}, dumps=json_dumps)


routes.route("OPTIONS", "/api/widget/session")(preflight(settings_of))
routes.route("OPTIONS", "/api/widget/history")(preflight(settings_of))
