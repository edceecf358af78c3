"""`POST /api/widget/upload` (multipart, Bearer token) and `GET /api/widget/files/{id}` (download).

The panel uploads first (with progress), then sends a `message` frame naming the returned attachment id; only
the conversation that uploaded a file can attach it. Files are fetched by their unguessable id (so an `<img>` or
a download link works without headers), always as an attachment.
"""

from __future__ import annotations

from aiohttp import web

from bot.app_keys import RATE_LIMITS
from bot.channels.widget.history import session_of, settings_of
from bot.channels.widget.keys import WIDGET
from bot.channels.widget.origins import preflight, with_cors
from bot.channels.widget.uploads import download_response
from bot.http import HTTPError
from bot.ratelimit import Rate, conversation_bucket

routes = web.RouteTableDef()
UPLOADS = Rate(per_minute=6, burst=5)  # per conversation


@routes.post("/api/widget/upload")
@with_cors(settings_of)
async def upload(request: web.Request) -> web.Response:
    widget = request.app[WIDGET]
    session = await session_of(request)
    await request.app[RATE_LIMITS].check(request.remote, conversation_bucket("widget uploads", session.conversation_id),
                                         UPLOADS, "too many files; wait a moment")
    attachment = await widget.open.uploads.receive(request, session.conversation_id)
    return web.json_response({"attachment_id": attachment.id, **attachment.public()}, status=201)


@routes.get("/api/widget/files/{attachment_id}")
async def download(request: web.Request) -> web.StreamResponse:
    uploads = request.app[WIDGET].open.uploads
    attachment = await uploads.get(request.match_info["attachment_id"])
    if attachment is None or not uploads.path(attachment.id).is_file():
        raise HTTPError(404, "no such file")
    return download_response(uploads, attachment)


routes.route("OPTIONS", "/api/widget/upload")(preflight(settings_of))
